"""The paper's "learning loss_v2": Learning Loss with the Ranker trained by the ranking loss of
eq. (1); selects as Learning Loss (highest predicted loss)."""
from .base import Method
from .lloss import METHOD as LEARNING_LOSS

METHOD = Method("lloss2", "Learning loss v2", "Learning Loss with the Ranker trained by the ranking loss (eq. 1)",
                rule=LEARNING_LOSS.rule, ranker_loss="ranking", selects_as=LEARNING_LOSS.name, compare=False,
                color="tab:blue")
