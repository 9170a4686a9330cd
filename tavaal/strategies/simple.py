"""Strategies that need no auxiliary model: random and entropy."""
from __future__ import annotations

from .base import Strategy


class RandomStrategy(Strategy):
    """Uniform sampling without replacement from the whole unlabeled pool (the official code
    samples with replacement, bug B4; we do not)."""

    name = "random"
    uses_subset = False
    needs_task = False


class EntropyStrategy(Strategy):
    """Highest predictive entropy of the softmax output (:mod:`tavaal.scoring.methods` "entropy")."""

    name = "entropy"
