"""Strategies that need no auxiliary model: random and entropy."""
from __future__ import annotations

import torch

from .. import ops
from ..training import predict
from .base import Strategy


class RandomStrategy(Strategy):
    """Uniform sampling without replacement from the whole unlabeled pool (the official code
    samples with replacement, bug B4; we do not)."""

    name = "random"
    uses_subset = False

    def pick(self, pool, candidates, budget):
        return self.context.rng.choice(candidates, size=budget, replace=False)


class EntropyStrategy(Strategy):
    """Highest predictive entropy of the softmax output."""

    name = "entropy"

    def pick(self, pool, candidates, budget):
        task = self._require_task()
        task.eval()
        logits = predict(self.context.dataset, candidates, backbone=task.backbone, outputs=("logits",),
                         batch_size=self.config.score_batch_size, device=self.context.device)["logits"]
        log_p = torch.log_softmax(logits, dim=1)
        entropy = -(log_p.exp() * log_p).sum(1)
        _, order = ops.topb(entropy, budget, largest=True)
        return candidates[order.numpy()]
