"""Incremental exact k-center state of one feature shard (what a Ray actor holds).

:class:`ShardKCenter` keeps, for every point of a contiguous range of global rows, the squared
distance to its nearest center so far, and answers ``add_centers(C) -> (max, argmax, row)``:
the non-center point of the shard farthest from all centers, ties to the lowest global id --
the max over shards is one step of the plain greedy (``tavaal.ops.kcenter_greedy``).
Distances are those of the reference op (:func:`tavaal.ops.reference.sq_dists`), so the
min-distances are bit-identical to it whatever order the centers arrive in.

Pruning (triangle inequality over groups of points around sampled anchors, with a relative
slack covering the fp32 rounding) skips distance work but never changes a pick; see
docs/scale-out.md.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from ..ops.api import check_choice
from ..ops.reference import sq_dists

Tensor = torch.Tensor

__all__ = ["ShardKCenter"]

_CENTER_BLOCK = 64
_ROW_BLOCK = 1 << 16


def _ranges(starts: Tensor, lengths: Tensor) -> Tensor:
    """Concatenation of arange(s, s + l) for each (s, l)."""
    total = int(lengths.sum())
    if total == 0:
        return torch.empty(0, dtype=torch.long)
    offs = torch.cumsum(lengths, 0) - lengths
    return torch.arange(total, dtype=torch.long) + torch.repeat_interleave(starts - offs, lengths)


class ShardKCenter:
    """Min-distance state of the rows ``[offset, offset + n)`` of a feature matrix.

    Args:
        features: (n, D) fp32 / fp16 / bf16 rows of the shard (the stored values; copied).
        offset: global id of the first row.
        metric: ``"euclidean"`` or ``"cosine"``.
        group_size: target points per pruning group (anchors = n / group_size, at most 1024).
        prune: disable to compute every distance (for testing the pruning).
    """

    def __init__(self, features: Tensor, offset: int = 0, metric: str = "euclidean", group_size: int = 2048,
                 prune: bool = True, seed: int = 0):
        if features.dim() != 2 or features.shape[0] == 0:
            raise ValueError(f"features must be a non-empty (n, D) matrix, got shape {tuple(features.shape)}")
        if features.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise TypeError(f"features must be float32, float16 or bfloat16, got {features.dtype}")
        check_choice("metric", metric, ("euclidean", "cosine"))
        if not bool(torch.isfinite(features).all()):
            raise ValueError("features contain NaN or inf; k-center needs finite features")
        if metric == "cosine" and bool((features.to(torch.float32).norm(dim=1) == 0).any()):
            raise ValueError("cosine metric: features contain all-zero rows (cosine undefined)")
        self.metric = metric
        self.offset = int(offset)
        n, d = features.shape
        self.n, self.dim = n, d
        self.prune = bool(prune)
        # relative slack on (non-squared) distances: rounding of 3 computed distances, ~D ulp
        self.slack = 1e-3 + 3.0 * (d + 16) * 6e-8
        x = features  # the working rows: the stored values; for cosine fp32, L2-normalised
        if metric == "cosine":  # (the reference op's arithmetic, row by row)
            x = features.to(torch.float32)
            x = x / x.norm(dim=1, keepdim=True)
        # --- spatially coherent groups (anchors sampled from the shard)
        m = max(1, min(1024, n // max(1, group_size))) if self.prune else 1
        g = torch.Generator().manual_seed(seed)
        anchor_rows = torch.randperm(n, generator=g)[:m].sort().values
        anchors = x[anchor_rows].to(torch.float32)
        assign = torch.empty(n, dtype=torch.long)
        for s in range(0, n, _ROW_BLOCK):  # approximate nearest anchor (matmul distances are fine here)
            blk = x[s : s + _ROW_BLOCK].to(torch.float32)
            assign[s : s + _ROW_BLOCK] = torch.cdist(blk, anchors).argmin(dim=1)
        perm = torch.sort(assign, stable=True).indices
        self.x = x[perm].contiguous()  # working rows, grouped
        self.gid = perm + self.offset  # global id of each working row
        self.pos = torch.empty(n, dtype=torch.long)  # local row -> working position
        self.pos[perm] = torch.arange(n)
        self.group = assign[perm].contiguous()
        self.g_len = torch.bincount(self.group, minlength=m)
        self.g_start = torch.cumsum(self.g_len, 0) - self.g_len
        self.anchors = anchors
        # exact (difference-based) distance of every point to its anchor
        self.a = torch.empty(n, dtype=torch.float32)
        for s in range(0, n, _ROW_BLOCK):
            xs = self.x[s : s + _ROW_BLOCK].to(torch.float32)
            self.a[s : s + _ROW_BLOCK] = (xs - anchors[self.group[s : s + _ROW_BLOCK]]).norm(dim=1)
        self.min_d2 = torch.full((n,), float("inf"), dtype=torch.float32)
        self.is_center = torch.zeros(n, dtype=torch.bool)
        self.g_max = torch.full((m,), float("inf"), dtype=torch.float32)  # max d2 over non-centers (-1: none)
        self.g_arg = torch.zeros(m, dtype=torch.long)  # its global id (lowest on ties; -1: none)
        self.g_bound = torch.full((m,), float("inf"), dtype=torch.float32)  # U = max(a + sqrt(d2))
        self._refresh(torch.arange(m))
        self.distances_computed = 0  # point-center pairs evaluated (pruning statistics)
        self.rounds = 0

    # ------------------------------------------------------------------------------- queries
    def rows(self, ids: Tensor) -> Tensor:
        """Working rows (stored dtype; fp32 normalised for cosine) of global ``ids`` in this shard."""
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        local = ids - self.offset
        if local.numel() and (int(local.min()) < 0 or int(local.max()) >= self.n):
            raise IndexError(f"ids outside this shard [{self.offset}, {self.offset + self.n})")
        return self.x[self.pos[local]].clone()

    def best(self) -> Tuple[float, int]:
        """(max squared min-distance over the shard's non-center points, its global id), ties to
        the lowest id; (-1.0, -1) when every point is a center."""
        mx = float(self.g_max.max())
        if mx < 0:
            return -1.0, -1
        arg = int(self.g_arg[self.g_max == mx].min())
        return mx, arg

    # ------------------------------------------------------------------------------- updates
    def add_centers(self, centers: Tensor, center_ids: Optional[Tensor] = None) -> Tuple[float, int, Optional[Tensor]]:
        """Add ``centers`` (k, D) -- working rows as returned by :meth:`rows` -- whose global ids
        are ``center_ids`` (those inside this shard become centers, i.e. leave the candidates).

        Returns :meth:`best` after the update and the working row of that point (None when
        every point is a center).
        """
        centers = torch.as_tensor(centers)
        if centers.dim() == 1:
            centers = centers.reshape(1, -1)
        if centers.shape[1] != self.dim:
            raise ValueError(f"centers have {centers.shape[1]} columns, the shard {self.dim}")
        forced = torch.empty(0, dtype=torch.long)
        if center_ids is not None:
            cid = torch.as_tensor(center_ids, dtype=torch.long).reshape(-1)
            local = cid - self.offset
            local = local[(local >= 0) & (local < self.n)]
            if local.numel():
                p = self.pos[local]
                self.is_center[p] = True
                forced = torch.unique(self.group[p])
        c32 = centers.to(torch.float32)
        touched = [forced]
        for s in range(0, c32.shape[0], _CENTER_BLOCK):
            touched.append(self._add_block(c32[s : s + _CENTER_BLOCK], centers[s : s + _CENTER_BLOCK]))
        self._refresh(torch.unique(torch.cat(touched)))
        self.rounds += 1
        v, i = self.best()
        return v, i, (self.rows(torch.tensor([i]))[0] if i >= 0 else None)

    def _add_block(self, q32: Tensor, q: Tensor) -> Tensor:
        k = q32.shape[0]
        dq = torch.cdist(self.anchors, q32, compute_mode="donot_use_mm_for_euclid_dist")  # (m, k)
        if self.prune:
            active = torch.nonzero((dq < self.g_bound[:, None] * (1 + self.slack)).any(dim=1), as_tuple=False).flatten()
        else:
            active = torch.arange(self.g_max.numel())
        if active.numel() == 0:
            return active
        rows = _ranges(self.g_start[active], self.g_len[active])
        if self.prune:
            lim = (self.a[rows] + self.min_d2[rows].sqrt()) * (1 + self.slack)  # inf for unset points
            cand = (dq[self.group[rows]] < lim[:, None]).any(dim=1)
            rows = rows[cand]
        for s in range(0, rows.numel(), _ROW_BLOCK):
            r = rows[s : s + _ROW_BLOCK]
            d2 = sq_dists(self.x[r], q).min(dim=1).values
            self.min_d2[r] = torch.minimum(self.min_d2[r], d2)
        self.distances_computed += int(rows.numel()) * k
        return active

    def _refresh(self, groups: Tensor) -> None:
        """Recompute max / argmax / bound of ``groups`` from their points."""
        if groups.numel() == 0:
            return
        rows = _ranges(self.g_start[groups], self.g_len[groups])
        m = self.g_max.numel()
        grp = self.group[rows]
        val = torch.where(self.is_center[rows], torch.full_like(self.min_d2[rows], -1.0), self.min_d2[rows])
        gmax = torch.full((m,), -1.0).scatter_reduce(0, grp, val, "amax", include_self=True)
        big = torch.iinfo(torch.long).max
        ids = torch.where(val == gmax[grp], self.gid[rows], torch.full_like(rows, big))
        garg = torch.full((m,), big, dtype=torch.long).scatter_reduce(0, grp, ids, "amin", include_self=True)
        ub = (self.a[rows] + self.min_d2[rows].sqrt())
        gb = torch.zeros(m).scatter_reduce(0, grp, ub, "amax", include_self=True)
        self.g_max[groups] = gmax[groups]
        self.g_arg[groups] = torch.where(gmax[groups] < 0, torch.full_like(garg[groups], -1), garg[groups])
        self.g_bound[groups] = gb[groups]

    def covering_d2(self, centers: Tensor) -> float:
        """Max over this shard's points of the squared distance to the nearest of ``centers``
        (working rows), without touching the state (used to report an approximate solution's
        covering radius). Points that are themselves centers have distance 0."""
        c = torch.as_tensor(centers)
        worst = 0.0
        for s in range(0, self.n, _ROW_BLOCK):
            xs = self.x[s : s + _ROW_BLOCK]
            best = torch.full((xs.shape[0],), float("inf"))
            for t in range(0, c.shape[0], _CENTER_BLOCK):
                best = torch.minimum(best, sq_dists(xs, c[t : t + _CENTER_BLOCK]).min(dim=1).values)
            worst = max(worst, float(best.max()))
        return worst

    def stats(self) -> dict:
        return {"rows": self.n, "groups": int(self.g_max.numel()), "rounds": self.rounds,
                "distances_computed": self.distances_computed}


def to_radius(d2: float, metric: str) -> float:
    """Squared distance -> the op's radius (Euclidean distance; ``1 - cos`` for cosine)."""
    if d2 < 0:
        return 0.0
    return d2 / 2.0 if metric == "cosine" else math.sqrt(d2)
