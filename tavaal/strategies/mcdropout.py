"""Monte-Carlo dropout (Gal et al. 2017) with the BALD acquisition.

Selection runs :mod:`tavaal.scoring.methods` "mcdropout": per batch, ``config.mc_samples``
stochastic passes of the live classifier with only its Dropout layers in train mode
(BatchNorm in eval), highest BALD first (``Scorer.mc_probs_batch``; eager models only)."""
from __future__ import annotations

from ..scoring.methods import bald_scores
from .base import Strategy

__all__ = ["MCDropoutStrategy", "bald_scores"]


class MCDropoutStrategy(Strategy):
    """``config.mc_samples`` stochastic passes with dropout on (BatchNorm in eval), highest BALD."""

    name = "mcdropout"
    dropout = True
