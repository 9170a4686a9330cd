"""Per-channel statistics: the normalisation constants of a data set or a pool (one function)."""
from __future__ import annotations

from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .base import RowSource, SourceError

__all__ = ["channel_stats"]


def channel_stats(data: Union[RowSource, torch.Tensor, np.ndarray], rows: Optional[Sequence[int]] = None, *,
                  max_rows: Optional[int] = None, seed: int = 0,
                  batch_size: int = 512) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel (images (N, C, ...)) or per-feature (vectors (N, D)) mean and population std
    of the values -- on the 0..1 scale for uint8 data (``x / 255``, what
    :class:`~tavaal.data.sources.SourceDataset` normalises), as stored otherwise -- accumulated
    in float64 ``batch_size`` rows at a time (no full float copy).

    ``data``: a row source (read with ``iter_batches``, in bounded memory) or an in-memory
    array/tensor. ``rows``: the rows to use (default all); ``max_rows``: a seeded random
    ``max_rows`` of them (sorted) when there are more. A std below 1e-12 is replaced by 1.
    Raises ValueError (:class:`SourceError` for a source) when there is nothing to compute on."""
    is_source = isinstance(data, RowSource)
    tensor = None if is_source else torch.as_tensor(data)
    if tensor is not None and tensor.dim() < 2:
        raise ValueError(f"need (N, C, ...) or (N, D) data, got shape {tuple(tensor.shape)}")
    n = len(data) if is_source else int(tensor.shape[0])
    uint8 = data.dtype == "uint8" if is_source else tensor.dtype == torch.uint8
    picked = np.arange(n, dtype=np.int64) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    if max_rows is not None and picked.size > max_rows:
        picked = np.sort(np.random.default_rng(seed).choice(picked, size=int(max_rows), replace=False))
    if picked.size == 0:
        raise (SourceError if is_source else ValueError)("channel_stats: no rows to compute statistics on")
    if is_source:
        chunks: Iterator[torch.Tensor] = (batch for _, batch in data.iter_batches(batch_size, indices=picked,
                                                                                  prefetch_depth=0))
    else:
        chunks = (tensor[torch.from_numpy(picked[i:i + batch_size])] for i in range(0, picked.size, batch_size))
    total = total_sq = None
    count = 0
    for batch in chunks:
        x = batch.to(torch.float64)
        if uint8:
            x = x / 255.0
        x = x.reshape(x.shape[0], x.shape[1] if x.dim() > 1 else 1, -1)
        s, sq = x.sum(dim=(0, 2)), (x * x).sum(dim=(0, 2))
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += x.shape[0] * x.shape[2]
    if count == 0:
        raise (SourceError if is_source else ValueError)("channel_stats: none of the rows could be read")
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    std = torch.where(std < 1e-12, torch.ones_like(std), std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
