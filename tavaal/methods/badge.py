"""BADGE (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings.

The gradient embedding of a row is the gradient of the cross-entropy loss, at the predicted
label ``argmax p``, with respect to the last linear layer's weights: ``g = a (x) f`` with
``a = p - onehot(argmax p)`` (K numbers) and ``f`` the penultimate feature (F numbers). It is
never materialised: :func:`tavaal.ops.kmeanspp` takes the two factors and computes
``||a (x) f - c (x) h||^2 = |a|^2 |f|^2 + |c|^2 |h|^2 - 2 (a.c)(f.h)``. The first pick is the
row of largest gradient norm (as in the authors' code), every further one is drawn with
probability proportional to its squared distance to the nearest earlier pick.

On the selection path BADGE is an embedding method on the ``classifier`` graph:
:func:`badge_embedding` stores ``[a | f]`` (K + F floats a row, not K * F) and
:func:`badge_select` seeds from it with uniforms drawn from the selection's numpy Generator.
It has no per-image form for segmentation.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .. import ops
from .base import EmbeddingRule, Method, as_probabilities

__all__ = ["badge_factors", "badge_embedding", "badge_select", "METHOD"]


def badge_factors(probs: torch.Tensor, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The two factors of the gradient embeddings ``g_i = a_i (x) f_i``.

    Args:
        probs: (N, K) softmax probabilities, K >= 2 (argmax ties -> lower class).
        features: (N, F) penultimate features of the same rows.

    Returns:
        ``(a, f)``: ``a = p - onehot(argmax p)`` (float32, (N, K)) and ``f`` = features as
        float32 (N, F), both contiguous.
    Raises:
        TypeError / ValueError for non-tensors, non-floating or non-2-D tensors, mismatched rows,
        fewer than 2 classes.
    """
    p = as_probabilities(probs, min_classes=2)
    if not (isinstance(features, torch.Tensor) and features.dtype.is_floating_point):
        raise TypeError(f"features must be a floating torch.Tensor, got {getattr(features, 'dtype', type(features))}")
    if features.dim() != 2 or features.shape[0] != p.shape[0]:
        raise ValueError(f"probs has {p.shape[0]} rows but features has shape {tuple(features.shape)}, "
                         f"not ({p.shape[0]}, F)")
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


METHOD = Method("badge", "BADGE",
                "BADGE: k-means++ seeding (ops.kmeanspp) on gradient embeddings (p - onehot) x feature",
                rule=EmbeddingRule("classifier", badge_embedding, badge_select, uses_labeled=False), dense=False,
                color="goldenrod")
