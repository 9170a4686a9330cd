"""Learning Loss (Yoo & Kweon 2019) and the paper's Learning Loss v2: highest predicted loss.

Selection runs :mod:`tavaal.scoring.methods` "lloss"."""
from __future__ import annotations

from .base import Strategy


class LearningLossStrategy(Strategy):
    """The Ranker trained with the margin loss (margin 1); picks the highest predicted loss."""

    name = "lloss"
    ranker_loss = "margin"
    needs_ranker = True


class LearningLossV2Strategy(LearningLossStrategy):
    """Learning Loss with the Ranker trained by the ranking loss of eq. (1) ("learning loss_v2")."""

    name = "lloss2"
    ranker_loss = "ranking"
    selection_method = "lloss"
