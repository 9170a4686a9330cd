"""Work units of the Ray scale-out: contiguous ranges of global pool rows.

A unit is either a slice of an in-memory tensor (shipped once through Ray's object store) or
a row range of a sharded pool on disk (``tavaal.data.sources``), which the actor reads
itself -- on a multi-node cluster the pool directory must then be on a filesystem every node
sees (NFS, a mounted bucket). Ranges follow the pool's shard boundaries where possible, so
an actor touches whole memory-mapped files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np
import torch

from ..data.open import open_source
from ..rundir import read_json

Tensor = torch.Tensor

__all__ = ["FeatureShard", "plan_ranges", "plan_feature_shards", "load_feature_shard", "pool_shard_bounds"]


@dataclass(frozen=True)
class FeatureShard:
    """Rows ``[start, stop)`` of a feature matrix: ``ref`` (a Ray ObjectRef or tensor holding
    exactly those rows) or ``path`` (a sharded pool)."""

    start: int
    stop: int
    ref: Any = None
    path: Optional[str] = None


def plan_ranges(n: int, parts: int, boundaries: Optional[Sequence[int]] = None) -> List[range]:
    """Split ``[0, n)`` into at most ``parts`` contiguous non-empty ranges of similar size;
    with ``boundaries`` (cumulative shard ends of a pool) cuts only fall on them, as long as
    there are at least ``parts`` shards."""
    parts = max(1, min(int(parts), int(n)))
    if boundaries is not None and len(boundaries) >= parts:
        ends = np.asarray(boundaries, dtype=np.int64)
        cuts = [0]
        for k in range(1, parts):
            j = int(np.argmin(np.abs(ends - n * k / parts)))  # the shard end nearest to the even cut
            if cuts[-1] < ends[j] < n:
                cuts.append(int(ends[j]))
        cuts.append(n)
    else:
        cuts = [round(n * k / parts) for k in range(parts + 1)]
    return [range(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def pool_shard_bounds(path: str) -> List[int]:
    """Cumulative row ends of the shards of a sharded pool (from its ``pool.json``)."""
    shards = read_json(os.path.join(path, "pool.json"))["shards"]
    return [int(x) for x in np.cumsum([int(s["rows"]) for s in shards])]


def plan_feature_shards(source, parts: int) -> List[FeatureShard]:
    """Split a (N, D) tensor or a sharded feature pool into ``parts`` :class:`FeatureShard`."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        bounds = pool_shard_bounds(path)
        return [FeatureShard(r.start, r.stop, path=path) for r in plan_ranges(bounds[-1], parts, bounds)]
    if not isinstance(source, torch.Tensor):
        raise TypeError(f"source must be a (N, D) tensor or the path of a sharded pool, got {type(source).__name__}")
    if source.dim() != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {tuple(source.shape)}")
    if source.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"features must be float32, float16 or bfloat16, got {source.dtype}")
    import ray

    return [FeatureShard(r.start, r.stop, ref=ray.put(source[r.start : r.stop].contiguous()))
            for r in plan_ranges(source.shape[0], parts)]


def load_feature_shard(shard: FeatureShard, batch_size: int = 65536) -> Tensor:
    """The rows of ``shard`` as one contiguous tensor in the stored dtype."""
    if shard.ref is not None:
        ref = shard.ref
        if not isinstance(ref, torch.Tensor):
            import ray

            ref = ray.get(ref)
        return ref.contiguous()
    batches = open_source(shard.path).iter_batches(batch_size, start=shard.start, stop=shard.stop)
    return torch.cat([batch.reshape(len(batch), -1) for _rows, batch in batches])
