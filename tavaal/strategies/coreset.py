"""Core-set (Sener & Savarese 2018): greedy k-center on the penultimate features."""
from __future__ import annotations

import numpy as np
import torch

from .. import ops
from ..training import predict
from .base import Strategy


class CoreSetStrategy(Strategy):
    """Exact greedy k-center over candidates + labeled points, the labeled points as initial
    centers, on the task learner's pooled feature (raw, Euclidean by default), through
    ``tavaal.ops.kcenter_greedy``."""

    name = "coreset"

    def pick(self, pool, candidates, budget):
        task = self._require_task()
        task.eval()
        labeled = np.asarray(pool.labeled, dtype=np.int64)
        everything = np.concatenate([candidates, labeled])
        features = predict(self.context.dataset, everything, backbone=task.backbone, outputs=("feature",),
                           batch_size=self.config.score_batch_size, device=self.context.device)["feature"]
        centers = torch.zeros(len(everything), dtype=torch.bool)
        centers[len(candidates):] = True
        first = None
        if len(labeled) == 0:
            first = int(self.context.rng.integers(len(candidates)))
            centers = None
        picks, _ = ops.kcenter_greedy(features.contiguous(), budget, centers=centers, first=first,
                                      metric=self.config.coreset_metric)
        return candidates[picks.numpy()]
