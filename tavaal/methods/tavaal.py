"""TA-VAAL (eq. 7): argmin over the candidates of D(r, mu), r from the Ranker (trained with the
ranking loss of eq. 1), mu from the rank-conditioned WAE encoder (fused selection through
``tavaal.ops.score_topb``)."""
from .base import Method, ScoreRule

METHOD = Method("tavaal", "TA-VAAL", "TA-VAAL (eq. 7): lowest D(r, mu), r from the Ranker, mu from the WAE encoder",
                rule=ScoreRule("scorer", None, largest=False, fused=True, rank_conditioned=True),
                ranker_loss="ranking", adversarial="rank", color="tab:red")
