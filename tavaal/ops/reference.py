"""Pure-torch reference versions of the selection ops.

They are the test oracle of the C++/CUDA extension and the fallback when ``tavaal._C`` is not
built. They follow exactly the same contracts (see ``docs/ops.md``), are written for clarity
rather than speed, but still never build an N x N or N x L matrix: distances to many centers
are computed in blocks of ``_CENTER_BLOCK`` centers.

Inputs are assumed to be validated by :mod:`tavaal.ops.api` (the public entry points).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

Tensor = torch.Tensor

_CENTER_BLOCK = 64
_SCORE_CHUNK = 8192


# ----------------------------------------------------------------------------------------- topb
def topb(scores: Tensor, b: int, largest: bool = False, mask: Optional[Tensor] = None,
         nan_worst: bool = False) -> Tuple[Tensor, Tensor]:
    """The contract of :func:`tavaal.ops.topb` (``mask``: bool mask or int64 indices); NaNs
    raise unless ``nan_worst``."""
    n = scores.shape[0]
    if mask is None:
        cand = torch.arange(n, device=scores.device)
    elif mask.dtype == torch.bool:
        cand = torch.nonzero(mask, as_tuple=False).flatten()
    else:
        cand = torch.unique(mask.to(torch.long))  # sorted, duplicates merged
    vals = scores[cand]
    nan = torch.isnan(vals)
    n_nan = int(nan.sum())
    if n_nan and not nan_worst:
        raise ValueError(f"scores contain {n_nan} NaN value(s) among the candidates; clean them or pass "
                         "nan_policy='worst' to rank NaNs last")
    if b > cand.numel():
        raise ValueError(f"b={b} exceeds the number of candidates ({cand.numel()})")
    key = vals.to(torch.float64)
    if largest:
        key = -key
    key = torch.where(nan, torch.zeros_like(key), key)
    # stable sorts: by value, then by NaN flag -> order (is_nan, value, index)
    order = torch.sort(key, stable=True).indices
    order = order[torch.sort(nan[order].to(torch.int8), stable=True).indices]
    sel = order[:b]
    return vals[sel], cand[sel]


# -------------------------------------------------------------------------------------- kcenter
def sq_dists(x: Tensor, c: Tensor) -> Tensor:
    """Squared Euclidean distances (fp32) from rows of x (n, D) to rows of c (k, D): (n, k).

    Computed from differences (not the norm expansion) so there is no cancellation.
    """
    d = torch.cdist(x.to(torch.float32), c.to(torch.float32), compute_mode="donot_use_mm_for_euclid_dist")
    return d * d


def kcenter_greedy(features: Tensor, b: int, centers: Tensor, first: int = 0,
                   metric: str = "euclidean") -> Tuple[Tensor, Tensor]:
    """Plain exact greedy k-center: the contract of :func:`tavaal.ops.kcenter_greedy`, with
    ``centers`` sorted, unique int64 indices (may be empty: then ``first`` is the first pick).
    For ``metric="cosine"`` the distance is ``1 - cos = ||u - v||^2 / 2`` on fp32-normalised rows.
    """
    n = features.shape[0]
    x = features.to(torch.float32)
    if metric == "cosine":
        x = x / x.norm(dim=1, keepdim=True)
    dev = features.device
    min_d2 = torch.full((n,), float("inf"), dtype=torch.float32, device=dev)
    is_center = torch.zeros(n, dtype=torch.bool, device=dev)

    def add(idx: Tensor) -> None:
        for s in range(0, idx.numel(), _CENTER_BLOCK):
            blk = idx[s : s + _CENTER_BLOCK]
            for r0 in range(0, n, 1 << 16):  # rows in blocks: no N x block matrix either
                d2 = sq_dists(x[r0 : r0 + (1 << 16)], x[blk]).min(dim=1).values
                torch.minimum(min_d2[r0 : r0 + (1 << 16)], d2, out=min_d2[r0 : r0 + (1 << 16)])
        is_center[idx] = True

    def radius() -> float:
        rest = min_d2[~is_center]
        if rest.numel() == 0:
            return 0.0
        m = float(rest.max())
        return m / 2.0 if metric == "cosine" else m**0.5

    add(centers if centers.numel() else torch.tensor([int(first)], device=dev))
    picks: List[int] = [] if centers.numel() else [int(first)]
    radii: List[float] = [] if centers.numel() else [radius()]
    while len(picks) < b:
        cand = torch.where(is_center, torch.full_like(min_d2, -1.0), min_d2)
        p = int(torch.argmax(cand))  # torch.argmax returns the first maximal index
        add(torch.tensor([p], device=dev))
        picks.append(p)
        radii.append(radius())
    return torch.tensor(picks, dtype=torch.long, device=dev), torch.tensor(radii, dtype=torch.float32, device=dev)


# ---------------------------------------------------------------------------------- score_topb
def mlp_logits(mu: Tensor, r: Optional[Tensor], weights: List[Tensor], biases: List[Tensor],
               dtype: torch.dtype = torch.float32) -> Tensor:
    """Discriminator logits (pre-sigmoid) of one chunk: Linear -> ReLU ... -> Linear."""
    h = mu.to(dtype)
    if r is not None and r.numel():
        h = torch.cat([h, r.reshape(-1, 1).to(dtype)], dim=1)
    last = len(weights) - 1
    for i, (w, bias) in enumerate(zip(weights, biases)):
        h = torch.nn.functional.linear(h, w.to(dtype), bias.to(dtype))
        if i < last:
            h = torch.relu(h)
    return h.reshape(-1).to(torch.float32)


def score_topb(mu: Tensor, r: Optional[Tensor], weights: List[Tensor], biases: List[Tensor], b: int,
               largest: bool = False, precision: str = "fp32", chunk_size: int = _SCORE_CHUNK,
               return_scores: bool = False) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Chunked eager discriminator scoring, then :func:`topb` on the sigmoid probabilities."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = mu.shape[0]
    chunk_size = chunk_size if chunk_size > 0 else _SCORE_CHUNK
    scores = torch.empty(n, dtype=torch.float32, device=mu.device)
    with torch.no_grad():
        for s in range(0, n, chunk_size):
            rr = None if r is None or r.numel() == 0 else r[s : s + chunk_size]
            scores[s : s + chunk_size] = torch.sigmoid(mlp_logits(mu[s : s + chunk_size], rr, weights, biases, dtype))
    values, indices = topb(scores, b, largest=largest, nan_worst=False)
    return values, indices, (scores if return_scores else None)
