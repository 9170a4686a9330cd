"""Reading rows of memory-mapped ``.npy`` arrays in bounded resident memory (shared by the
array and sharded-pool sources)."""
from __future__ import annotations

import mmap

import numpy as np
import torch

from .base import SourceError

__all__ = ["to_tensor", "gather_rows", "release_pages"]


def to_tensor(arr: np.ndarray, dtype: str) -> torch.Tensor:
    """Contiguous copy of a (memory-mapped) numpy slice as a torch tensor of ``dtype`` (the copy
    makes the reading thread, not the consumer, take the page faults)."""
    arr = np.array(arr, copy=True, order="C")
    if dtype == "bfloat16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    if arr.dtype not in (np.float32, np.float16, np.uint8):
        arr = arr.astype(np.float32)
    return torch.from_numpy(arr)


_PAGE = mmap.PAGESIZE


def _mapping_address(mm: mmap.mmap) -> int:
    """Address of the first byte of an mmap object. Not cached: ids of freed mmaps are reused."""
    return np.frombuffer(mm, dtype=np.uint8).ctypes.data


def release_pages(arr: np.ndarray, lo: int, hi: int) -> None:
    """``madvise(MADV_DONTNEED)`` the pages of rows [lo, hi) of a memory-mapped array once they
    have been copied out: the pool's file pages then leave this process's resident set, so
    peak memory does not grow with the pool size. Safe for read-only file mappings (a later
    access faults the page in again); a no-op for anything else."""
    mm = getattr(arr, "_mmap", None)
    if mm is None or hi <= lo or not hasattr(mm, "madvise"):
        return
    try:
        rows = arr[lo:hi]
        start = rows.ctypes.data - _mapping_address(mm)
        s = (start // _PAGE) * _PAGE
        e = min(-(-(start + rows.nbytes) // _PAGE) * _PAGE, len(mm))
        if e > s >= 0:
            mm.madvise(mmap.MADV_DONTNEED, s, e - s)
    except (ValueError, OSError, BufferError, AttributeError):  # pragma: no cover - best effort
        pass


def gather_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """arr[rows] for sorted rows. Contiguous rows of a memory-mapped ``.npy`` are read with a
    plain file read instead of through the mapping, so the file's pages stay in the page cache
    and never enter this process's resident set."""
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        return _read_file_rows(arr, int(rows[0]), int(rows[-1]) + 1)
    return arr[rows]


def _read_file_rows(arr: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows [lo, hi) of ``arr``: read from its file when it is a C-contiguous np.memmap."""
    filename = getattr(arr, "filename", None)
    offset = getattr(arr, "offset", None)
    mm = getattr(arr, "_mmap", None)
    if filename is None or offset is None or mm is None or not arr.flags.c_contiguous:
        return arr[lo:hi]
    out = np.empty((hi - lo,) + tuple(arr.shape[1:]), dtype=arr.dtype)
    if out.nbytes == 0:
        return out
    row_bytes = out.nbytes // (hi - lo)
    # the mapping starts at the allocation-granularity boundary below ``offset``; a view of the
    # memmap (slice) keeps its parent's ``offset``, so locate arr's first byte by address
    mapping_start = int(offset) - int(offset) % mmap.ALLOCATIONGRANULARITY
    with open(filename, "rb", buffering=0) as f:
        f.seek(mapping_start + (arr.ctypes.data - _mapping_address(mm)) + lo * row_bytes)
        got = f.readinto(memoryview(out).cast("B"))
    if got != out.nbytes:
        raise SourceError(f"{filename}: short read ({got} of {out.nbytes} bytes) at row {lo}: truncated file?")
    return out
