"""Core-set (Sener & Savarese 2018): greedy k-center on the penultimate features.

Selection runs :mod:`tavaal.scoring.methods` "coreset": exact greedy k-center over candidates
+ labeled rows, the labeled rows as initial centers, on the task learner's feature (raw,
``config.coreset_metric``), through ``tavaal.ops.kcenter_greedy``."""
from __future__ import annotations

from .base import Strategy


class CoreSetStrategy(Strategy):
    """Greedy k-center on the feature layer (see the module docstring)."""

    name = "coreset"
