"""Least-confidence sampling (Lewis & Gale 1994): ``1 - max_k p_k``; the LARGEST are picked
first (ties -> the lower row)."""
from __future__ import annotations

import torch

from .base import Method, ScoreRule, as_probabilities, per_image

__all__ = ["least_confidence_scores", "METHOD"]


def least_confidence_scores(probs: torch.Tensor) -> torch.Tensor:
    """``1 - max_k p_k`` per row (float32, (B,)); larger = more uncertain.

    Args: probs (B, K) softmax probabilities, K >= 1. Raises TypeError / ValueError otherwise.
    """
    return 1.0 - as_probabilities(probs).max(dim=1).values


_least_confidence = per_image(least_confidence_scores)

METHOD = Method("leastconf", "Least confidence", "least confidence: largest 1 - max_k p_k",
                rule=ScoreRule("classifier", lambda out: _least_confidence(out["probs"]), largest=True),
                color="tab:olive")
