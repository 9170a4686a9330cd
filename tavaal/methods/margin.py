"""Margin sampling (Scheffer et al. 2001): ``p_(1) - p_(2)``, the gap between the two most
probable classes; the SMALLEST margins are picked first (ties -> the lower row)."""
from __future__ import annotations

import torch

from .base import Method, ScoreRule, as_probabilities, per_image

__all__ = ["margin_scores", "METHOD"]


def margin_scores(probs: torch.Tensor) -> torch.Tensor:
    """``p_(1) - p_(2)`` per row (float32, (B,)); smaller = more uncertain.

    Args: probs (B, K) softmax probabilities, K >= 2. Raises TypeError / ValueError otherwise.
    """
    top2 = torch.topk(as_probabilities(probs, min_classes=2), 2, dim=1).values
    return top2[:, 0] - top2[:, 1]


_margin = per_image(margin_scores)

METHOD = Method("margin", "Margin", "margin: smallest gap p_(1) - p_(2) between the two most probable classes",
                rule=ScoreRule("classifier", lambda out: _margin(out["probs"]), largest=False), color="tab:green")
