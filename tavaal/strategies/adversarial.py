"""VAAL (Sinha et al. 2019) and TA-VAAL (eq. 7): the lowest discriminator scores.

Selection runs :mod:`tavaal.scoring.methods` "vaal" / "tavaal" (fused ``ops.score_topb``)."""
from __future__ import annotations

from .base import Strategy


class VAALStrategy(Strategy):
    """Lowest D(mu): the samples the discriminator finds least "labeled"-like."""

    name = "vaal"
    adversarial = "plain"


class TAVAALStrategy(VAALStrategy):
    """Eq. (7): argmin over candidates of D(r, mu) with r from the Ranker, mu from the WAE encoder."""

    name = "tavaal"
    ranker_loss = "ranking"
    adversarial = "rank"
    needs_ranker = True
