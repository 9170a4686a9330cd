"""k-means++ D^2 seeding (Arthur & Vassilvitskii 2007), the selection step of BADGE (Ash et al. 2020).

:func:`kmeanspp` runs ``torch.ops.tavaal.kmeanspp`` (C++/CUDA) when the extension is built,
else :func:`kmeanspp_reference` (pure torch, O(N) memory too). The outer-product points of
BADGE are never materialised: ``||a (x) f - c (x) h||^2 = |a|^2 |f|^2 + |c|^2 |h|^2 - 2 (a.c)(f.h)``.
The random stream and the sampling are part of the contract (``csrc/kmeanspp_common.h``,
``docs/ops.md``), so a float64 brute force reproduces the picks from the same uniforms.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .api import check_b, check_choice, check_int, check_same_device, check_tensor, use_extension

Tensor = torch.Tensor

__all__ = ["kmeanspp", "kmeanspp_reference", "draw_uniforms", "LEAF", "FAN", "OUTER_TOL"]

LEAF = 256  # rows per leaf of the sampling tree (csrc/kmeanspp_common.h: kKmppLeaf)
FAN = 256  # children per node above the leaves (csrc/kmeanspp_common.h: kKmppFan)
OUTER_TOL = 2.0**-46  # outer-product mode: D^2 <= OUTER_TOL (s_i + s_j) counts as 0
_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_ROW_BLOCK_ELEMS = 1 << 22  # float64 elements per row block of the reference (32 MB)


def draw_uniforms(b: int, seed: int = 0) -> Tensor:
    """The op's default random stream: ``b`` float64 uniforms in [0, 1) from a CPU
    ``torch.Generator`` seeded with ``seed``."""
    return torch.rand(b, dtype=torch.float64, generator=torch.Generator().manual_seed(int(seed)))


def kmeanspp(x: Tensor, b: int, y: Optional[Tensor] = None, init: str = "uniform", seed: int = 0,
             uniforms: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Exact k-means++ seeding of ``b`` points, without an N x b (or N x N) matrix.

    Args:
        x: (N, D) float32/float16/bfloat16/float64, finite, rows contiguous (``stride(1) == 1``;
            column slices of a wider matrix are fine). Upcast to float64 for all arithmetic.
        b: number of picks, 1 <= b <= N.
        y: optional (N, F) of x's dtype and device: the points become the outer products
            ``x_i (x) y_i`` (D*F numbers each, never materialised).
        init: first pick: ``"uniform"`` (classic k-means++: ``floor(u_0 * N)``) or ``"norm"``
            (BADGE: the point of largest norm, ties to the lower index; ``u_0`` unused).
        seed: seeds the uniforms when ``uniforms`` is None (see :func:`draw_uniforms`).
        uniforms: the random stream itself, (b,) float64 in [0, 1) (any device).

    Returns:
        ``(indices, potential)``: the picks in order (int64, (b,), distinct) and the k-means
        potential ``sum_i min_t D^2(i, pick_t)`` after each pick (float64, (b,)).

    Sampling: inverse CDF over the current D^2 weights in index order (picked points weigh 0,
    so they are never drawn again): pick t is the point where the running sum first exceeds
    ``u_t`` times the total, the sums formed in a fixed tree of 256-row leaves and 256-child
    nodes (for N <= 65536 exactly the smallest i with ``S_i > u_t * S_{N-1}``, S the plain
    cumulative sum; contract in ``csrc/kmeanspp_common.h``); when every weight is 0, the
    ``floor(u_t * R)``-th of the R unpicked points.

    Raises:
        TypeError: wrong dtypes/types. ValueError: wrong shapes, devices, non-contiguous
        rows, b out of range, uniforms outside [0, 1), NaN/inf in x or y, unknown init.
    """
    check_tensor("x", x, 2, _DTYPES, rows_only=True)
    n = x.shape[0]
    if n == 0 or x.shape[1] == 0:
        raise ValueError(f"x must be non-empty, got shape {tuple(x.shape)}")
    if y is not None:
        check_tensor("y", y, 2, _DTYPES, rows_only=True)
        check_same_device("y", y, "x", x)
        if y.dtype != x.dtype:
            raise TypeError(f"y must have the dtype of x ({x.dtype}), got {y.dtype}; convert one with .to(...)")
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} rows but x has {n}: one row of each per point")
        if y.shape[1] == 0:
            raise ValueError("y must have at least one column")
    b = check_int("b", b)
    check_b(b, n, "the number of points")
    check_choice("init", init, ("uniform", "norm"))
    if uniforms is None:
        u = draw_uniforms(b, check_int("seed", seed))
    else:
        if not isinstance(uniforms, torch.Tensor):
            raise TypeError(f"uniforms must be a torch.Tensor, got {type(uniforms).__name__}")
        if uniforms.dim() != 1 or uniforms.shape[0] != b:
            raise ValueError(f"uniforms must have shape ({b},) (one per pick), got {tuple(uniforms.shape)}")
        if uniforms.dtype != torch.float64:
            raise TypeError(f"uniforms must be float64, got {uniforms.dtype}")
        u = uniforms
    u = u.to(x.device).contiguous()
    bad_u = int(((u < 0) | (u >= 1) | torch.isnan(u)).sum())
    if bad_u:
        raise ValueError(f"uniforms must lie in [0, 1); {bad_u} do not")
    if use_extension(x.device):
        return torch.ops.tavaal.kmeanspp(x, y, u, init)
    bad = ~torch.isfinite(x).all(dim=1)
    if y is not None:
        bad |= ~torch.isfinite(y).all(dim=1)
    if bool(bad.any()):
        raise ValueError(f"inputs contain NaN or inf in {int(bad.sum())} row(s); k-means++ needs finite points")
    return kmeanspp_reference(x, y, u, init)


def kmeanspp_reference(x: Tensor, y: Optional[Tensor], uniforms: Tensor, init: str = "uniform") -> Tuple[Tensor, Tensor]:
    """Pure-torch k-means++ with the op's exact contract (inputs assumed validated).

    float64 throughout; rows are processed in blocks, so memory is O(N) besides the inputs.
    """
    n, dim = x.shape
    dev = x.device
    b = uniforms.shape[0]
    u = uniforms.to("cpu", torch.float64).tolist()
    outer = y is not None
    step = max(1, _ROW_BLOCK_ELEMS // (dim + (y.shape[1] if outer else 0)))
    blocks = [(r0, min(n, r0 + step)) for r0 in range(0, n, step)]
    s = None
    if outer or init == "norm":
        s = torch.empty(n, dtype=torch.float64, device=dev)
        for r0, r1 in blocks:
            xb = x[r0:r1].to(torch.float64)
            s[r0:r1] = (xb * xb).sum(1)
            if outer:
                yb = y[r0:r1].to(torch.float64)
                s[r0:r1] *= (yb * yb).sum(1)
    m = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)
    picked = torch.zeros(n, dtype=torch.bool, device=dev)

    def node_sums(v: Tensor, fan: int) -> Tensor:
        """Sums of consecutive groups of ``fan`` values (zero-padded; torch.cumsum on CPU adds
        in index order and the padding zeros leave the sums exact)."""
        k = -(-v.numel() // fan)
        pad = torch.zeros(k * fan, dtype=torch.float64, device=dev)
        pad[: v.numel()] = v
        return torch.cumsum(pad.view(k, fan), dim=1)[:, -1]

    def update(p: int):
        xp = x[p].to(torch.float64)
        yp = y[p].to(torch.float64) if outer else None
        for r0, r1 in blocks:
            xb = x[r0:r1].to(torch.float64)
            if outer:
                tot = s[r0:r1] + s[p]
                d = tot - 2.0 * ((xb @ xp) * (y[r0:r1].to(torch.float64) @ yp))
                d = torch.where(d <= OUTER_TOL * tot, torch.zeros_like(d), d)
            else:
                d = ((xb - xp) ** 2).sum(1)
            torch.minimum(m[r0:r1], d, out=m[r0:r1])
        m[picked] = 0.0
        # the sampling tree: level 0 = the leaf sums, level h + 1 = sums of FAN level-h nodes
        levels = [node_sums(m, LEAF)]
        while levels[-1].numel() > 1:
            levels.append(node_sums(levels[-1], FAN))
        return levels

    def descend(levels, target: float) -> int:
        """The contract's descent from the root; -1 when rounding leaves it without a child."""
        prefix, node = 0.0, 0
        for h in range(len(levels) - 2, -2, -1):
            fan, vals = (FAN, levels[h]) if h >= 0 else (LEAF, m)
            first = node * fan
            r = torch.cumsum(vals[first:first + fan], dim=0)
            hit = torch.nonzero(prefix + r > target).flatten()
            if hit.numel() == 0:
                return -1
            c = int(hit[0])
            prefix = prefix + (float(r[c - 1]) if c > 0 else 0.0)
            node = first + c
        return node

    if init == "norm":
        p = int(torch.argmax(s))  # first maximal index
    else:
        p = min(int(u[0] * n), n - 1)
    picks, potential = [], []
    for t in range(b):
        picked[p] = True
        picks.append(p)
        levels = update(p)
        total = float(levels[-1][0])
        potential.append(total)
        if t + 1 == b:
            break
        ut = u[t + 1]
        p = -1
        if total > 0.0:
            p = descend(levels, ut * total)
            if p < 0:  # u * total rounded up past a subtree: the last point of positive weight
                p = int(torch.nonzero(m > 0).flatten()[-1])
        if p < 0:  # every unpicked point coincides with a pick: uniform over the unpicked
            rest = torch.nonzero(~picked).flatten()
            p = int(rest[min(int(ut * rest.numel()), rest.numel() - 1)])
    return (torch.tensor(picks, dtype=torch.long, device=dev),
            torch.tensor(potential, dtype=torch.float64, device=dev))
