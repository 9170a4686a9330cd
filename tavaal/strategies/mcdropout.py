"""Monte-Carlo dropout (Gal et al. 2017) with the BALD acquisition."""
from __future__ import annotations

import torch

from .. import ops
from ..training import predict
from ..training.inference import set_dropout_train
from .base import Strategy


def bald_scores(probabilities: torch.Tensor) -> torch.Tensor:
    """Mutual information H[mean_t p_t] - mean_t H[p_t] for probabilities of shape (T, N, K)."""
    eps = 1e-12
    mean = probabilities.mean(0)
    entropy_of_mean = -(mean * (mean + eps).log()).sum(1)
    mean_entropy = -(probabilities * (probabilities + eps).log()).sum(2).mean(0)
    return entropy_of_mean - mean_entropy


class MCDropoutStrategy(Strategy):
    """``config.mc_samples`` stochastic passes with dropout on (BatchNorm in eval), highest BALD."""

    name = "mcdropout"
    dropout = True

    def pick(self, pool, candidates, budget):
        task = self._require_task()
        backbone = task.backbone
        backbone.eval()
        set_dropout_train(backbone, True)
        try:
            samples = []
            for _ in range(self.config.mc_samples):
                logits = predict(self.context.dataset, candidates, backbone=backbone, outputs=("logits",),
                                 batch_size=self.config.score_batch_size, device=self.context.device)["logits"]
                samples.append(torch.softmax(logits, dim=1))
        finally:
            backbone.eval()
        scores = bald_scores(torch.stack(samples))
        _, order = ops.topb(scores, budget, largest=True)
        return candidates[order.numpy()]
