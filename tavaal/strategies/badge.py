"""BADGE (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings.

The gradient embedding of a row is the gradient of the cross-entropy loss, at the predicted
label ``argmax p``, with respect to the last linear layer's weights: ``g = a (x) f`` with
``a = p - onehot(argmax p)`` (K numbers) and ``f`` the penultimate feature (F numbers). It is
never materialised: :func:`tavaal.ops.kmeanspp` takes the two factors and computes
``||a (x) f - c (x) h||^2 = |a|^2 |f|^2 + |c|^2 |h|^2 - 2 (a.c)(f.h)``. The first pick is the
row of largest gradient norm (as in the authors' code), every further one is drawn with
probability proportional to its squared distance to the nearest earlier pick.

On the single selection path (:func:`tavaal.scoring.select_from_pool`) BADGE is an
embedding method on the ``classifier`` graph: :func:`badge_embedding` stores ``[a | f]``
(K + F floats a row, not K * F) and :func:`badge_select` seeds from it with uniforms drawn from
the selection's numpy Generator.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .. import ops
from .base import Strategy

__all__ = ["badge_factors", "badge_embedding", "badge_select", "select_badge", "BadgeStrategy"]


def badge_factors(probs: torch.Tensor, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The two factors of the gradient embeddings ``g_i = a_i (x) f_i``.

    Args:
        probs: (N, K) softmax probabilities, K >= 2 (argmax ties -> lower class).
        features: (N, F) penultimate features of the same rows.

    Returns:
        ``(a, f)``: ``a = p - onehot(argmax p)`` (float32, (N, K)) and ``f`` = features as
        float32 (N, F), both contiguous.
    Raises:
        TypeError / ValueError for non-tensors, wrong shapes, mismatched rows, non-finite values.
    """
    for name, t in (("probs", probs), ("features", features)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be floating, got {t.dtype}")
    if probs.shape[0] != features.shape[0]:
        raise ValueError(f"probs has {probs.shape[0]} rows but features has {features.shape[0]}")
    if probs.shape[1] < 2:
        raise ValueError(f"probs needs at least 2 classes, got {probs.shape[1]}")
    p = probs.to(torch.float32)
    a = p.clone()
    a[torch.arange(p.shape[0]), p.argmax(dim=1)] -= 1.0
    return a.contiguous(), features.to(torch.float32).contiguous()


def badge_embedding(out: Dict[str, torch.Tensor]) -> torch.Tensor:
    """``[a | f]`` (float32, (B, K + F)) from the classifier graph's outputs ``probs`` (B, K)
    and ``feature`` (B, F) -- the row the selection path stores for :func:`badge_select`."""
    a, f = badge_factors(out["probs"], out["feature"].reshape(out["feature"].shape[0], -1))
    return torch.cat([a, f], dim=1)


def badge_select(features: torch.Tensor, budget: int, *, centers: Optional[torch.Tensor] = None,
                 rng: np.random.Generator, metric: Optional[str] = None,
                 num_classes: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """k-means++ seeding over stored ``[a | f]`` rows (see :func:`badge_embedding`).

    Args:
        features: (N, K + F) float, rows ``[a | f]``; the K columns are split off without a copy.
        budget: number of picks, 1 <= budget <= N.
        centers: must be None (BADGE seeds among the candidates only).
        rng: the selection's numpy Generator: the ``budget`` uniforms are ``rng.random(budget)``.
        metric: ignored (the gradient-embedding distance is Euclidean by definition).
        num_classes: K, required.

    Returns:
        ``(picks, values)``: int64 positions in pick order and the k-means potential after each
        pick (float32).
    """
    if centers is not None and centers.numel():
        raise ValueError("badge seeds among the candidates only; it takes no labeled centers")
    if num_classes is None:
        raise ValueError("badge needs num_classes (K) to split the stored [a | f] rows")
    k = int(num_classes)
    if not 2 <= k < features.shape[1]:
        raise ValueError(f"num_classes={k} does not split rows of {features.shape[1]} columns into [a (K) | f (F >= 1)]")
    uniforms = torch.from_numpy(rng.random(int(budget)))
    picks, potential = ops.kmeanspp(features[:, :k], budget, y=features[:, k:], init="norm", uniforms=uniforms)
    return picks, potential.to(torch.float32)


def select_badge(probs: torch.Tensor, features: torch.Tensor, b: int, seed: int = 0,
                 uniforms: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Positions (int64, (b,)) of BADGE's picks among the rows of ``probs``/``features``, in
    pick order; the random stream is ``uniforms`` or :func:`tavaal.ops.kmeanspp.draw_uniforms`
    (b, seed)."""
    a, f = badge_factors(probs, features)
    return ops.kmeanspp(a, b, y=f, init="norm", seed=seed, uniforms=uniforms)[0]


class BadgeStrategy(Strategy):
    """k-means++ seeding on gradient embeddings (method ``badge``)."""

    name = "badge"
