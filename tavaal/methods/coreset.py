"""Core-set (Sener & Savarese 2018): exact greedy k-center on the task learner's penultimate
features over candidates + labeled rows, the labeled rows as initial centers
(``config.coreset_metric``), through ``tavaal.ops.kcenter_greedy``."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .. import ops
from .base import EmbeddingRule, Method

__all__ = ["kcenter_select", "METHOD"]


def kcenter_select(features: torch.Tensor, budget: int, *, centers: Optional[torch.Tensor],
                   rng: np.random.Generator, metric: str = "euclidean", num_classes: Optional[int] = None):
    """Exact greedy k-center (see :class:`~tavaal.methods.EmbeddingRule` for the arguments);
    without labeled centers the first pick is ``rng.integers(n_candidates)``."""
    n_cand = features.shape[0] - (0 if centers is None else int(centers.numel()))
    first = None if centers is not None else int(rng.integers(n_cand))
    return ops.kcenter_greedy(features, budget, centers=centers, first=first, metric=metric)


METHOD = Method("coreset", "Core-set", "core-set: exact greedy k-center on the feature layer, labeled rows as centers",
                rule=EmbeddingRule("features", lambda out: out["feature"], kcenter_select), color="tab:purple")
