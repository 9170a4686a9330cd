"""Margin and least-confidence sampling: per-row uncertainty of the softmax output.

* margin (Scheffer et al. 2001): ``p_(1) - p_(2)``, the gap between the two most probable
  classes; the SMALLEST margins are picked first;
* least confidence (Lewis & Gale 1994): ``1 - max_k p_k``; the LARGEST are picked first.

Ties go to the lower row (the order of ``tavaal.ops.topb`` and of the streamed selection of
:func:`tavaal.scoring.select_from_pool`, where both run as score methods on the ``classifier``
graph's ``probs``). The strategies below only name the method: selection is inherited.
"""
from __future__ import annotations

import torch

from .. import ops
from .base import Strategy

__all__ = ["margin_scores", "least_confidence_scores", "select_margin", "select_least_confidence",
           "MarginStrategy", "LeastConfidenceStrategy"]


def _check_probs(probs, min_classes: int = 1) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor):
        raise TypeError(f"probs must be a torch.Tensor, got {type(probs).__name__}")
    if probs.dim() != 2:
        raise ValueError(f"probs must be 2-D (rows, classes), got shape {tuple(probs.shape)}")
    if not probs.dtype.is_floating_point:
        raise TypeError(f"probs must be floating (softmax probabilities), got {probs.dtype}")
    if probs.shape[1] < min_classes:
        raise ValueError(f"probs needs at least {min_classes} classes (columns), got {probs.shape[1]}")
    return probs.to(torch.float32)


def margin_scores(probs: torch.Tensor) -> torch.Tensor:
    """``p_(1) - p_(2)`` per row (float32, (B,)); smaller = more uncertain.

    Args: probs (B, K) softmax probabilities, K >= 2. Raises TypeError / ValueError otherwise.
    """
    p = _check_probs(probs, min_classes=2)
    top2 = torch.topk(p, 2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def least_confidence_scores(probs: torch.Tensor) -> torch.Tensor:
    """``1 - max_k p_k`` per row (float32, (B,)); larger = more uncertain.

    Args: probs (B, K) softmax probabilities, K >= 1.
    """
    p = _check_probs(probs)
    return 1.0 - p.max(dim=1).values


def select_margin(probs: torch.Tensor, b: int) -> torch.Tensor:
    """Positions (int64, (b,)) of the ``b`` smallest margins, smallest first, ties -> lower row."""
    return ops.topb(margin_scores(probs), b, largest=False)[1]


def select_least_confidence(probs: torch.Tensor, b: int) -> torch.Tensor:
    """Positions (int64, (b,)) of the ``b`` least confident rows, least first, ties -> lower row."""
    return ops.topb(least_confidence_scores(probs), b, largest=True)[1]


class MarginStrategy(Strategy):
    """Smallest gap between the two most probable classes (method ``margin``)."""

    name = "margin"


class LeastConfidenceStrategy(Strategy):
    """Lowest top-class probability (method ``leastconf``)."""

    name = "leastconf"
