"""Entropy sampling: the highest predictive entropy of the softmax output (segmentation: the
mean pixel entropy of each image)."""
from __future__ import annotations

import torch

from .base import Method, ScoreRule, per_image

__all__ = ["entropy_scores", "METHOD"]


def entropy_scores(logits: torch.Tensor) -> torch.Tensor:
    """Predictive entropy of softmax(logits) (B, K) -> (B,), computed from log-softmax."""
    log_p = torch.log_softmax(logits.to(torch.float32), dim=1)
    return -(log_p.exp() * log_p).sum(1)


_entropy = per_image(entropy_scores)  # lifted once, not per scored batch

METHOD = Method("entropy", "Entropy",
                "highest predictive entropy of the softmax output (segmentation: mean pixel entropy)",
                rule=ScoreRule("classifier", lambda out: _entropy(out["logits"]), largest=True), color="tab:orange")
