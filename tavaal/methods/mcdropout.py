"""Monte-Carlo dropout (Gal et al. 2017) with the BALD acquisition: ``config.mc_samples``
stochastic passes of the live classifier with only its Dropout layers in train mode
(BatchNorm in eval), highest BALD first (``Scorer.mc_probs_batch``; eager models only)."""
from __future__ import annotations

import torch

from .base import Method, ScoreRule

__all__ = ["bald_scores", "METHOD"]


def bald_scores(probabilities: torch.Tensor) -> torch.Tensor:
    """Mutual information H[mean_t p_t] - mean_t H[p_t] for probabilities of shape (T, N, K);
    dense probabilities (T, N, K, H, W) (segmentation) give each image's mean pixel BALD."""
    eps = 1e-12
    mean = probabilities.mean(0)
    entropy_of_mean = -(mean * (mean + eps).log()).sum(1)
    mean_entropy = -(probabilities * (probabilities + eps).log()).sum(2).mean(0)
    bald = entropy_of_mean - mean_entropy
    return bald.flatten(1).mean(1) if bald.dim() > 1 else bald


METHOD = Method("mcdropout", "MC-dropout", "MC-dropout BALD over mc_samples passes with dropout on",
                rule=ScoreRule("classifier", lambda out: bald_scores(out["probs_samples"]), largest=True,
                               stochastic=True),
                dropout=True, compare=False, color="tab:brown")
