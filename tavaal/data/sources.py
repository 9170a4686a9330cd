"""Row sources: how the samples of a pool are read -- image folders, ``.npy``/``.npz`` arrays,
sharded pool directories and the datasets of :func:`tavaal.data.load_dataset` -- by training,
selection and scoring alike, in bounded memory.

A *row source* says how rows are read; the *label state* (which rows are labeled, with what
label) is :class:`tavaal.data.Pool` or the labeling loop's work directory, never the source.

Every source has ``len(source)``, ``sample_shape``, ``dtype`` (a string: "float32", "float16",
"bfloat16", "uint8"), ``kind`` ("inputs", "latents" or "features") and:

* stable ids: ``source.id_of(row)`` -- the row number itself, or for image folders the file's
  POSIX path relative to the folder root; ``source.rows_of(ids)`` is the inverse (raises
  :class:`SourceError` listing unknown ids);
* ``read_rows(rows)``: the samples of ``rows`` (any order, repeats allowed) as one batch;
* ``iter_batches(batch_size, start=0, stop=None, indices=None, exclude=None, prefetch_depth=2,
  num_workers=0)`` yielding ``(rows, batch)``;
* ``dataset(mean=None, std=None, targets=None)``: a :class:`SourceDataset`, the torch
  ``Dataset`` view that training reads (indexed by global row, normalised float32; only the
  rows asked for are ever read).

Batches:

* ``rows``: ``np.int64`` array of global row numbers (the position of a sample in the source:
  array row, shard-concatenated row, index in the sorted file list of an image folder);
* ``batch``: a CPU ``torch.Tensor`` (B, *sample_shape) of the source's dtype (uint8 images
  are *not* normalised here: :meth:`tavaal.scoring.Scorer.prepare` and :class:`SourceDataset`
  do it); for ``kind == "latents"`` a tuple ``(mu, r)`` (r is None for pools without ranks).

``iter_batches`` yields rows in increasing order (``indices`` must be sorted). ``exclude``
(sorted int array) drops rows, e.g. the labeled set. Batches are read ahead by a background
thread (arrays) or DataLoader worker processes (image folders): never more than ``prefetch``
batches are held. Images that cannot be decoded are skipped and recorded in
``source.skipped`` (``[{"id": relative path, "error": "..."}]``), never raised, while scoring;
training reads (:class:`SourceDataset`) raise :class:`SourceError` naming the file.

Sharded pool directory (``pool.json``)::

    {"format": "tavaal-sharded-pool", "version": 1, "kind": "inputs"|"latents"|"features",
     "dtype": "float32"|"float16"|"bfloat16"|"uint8", "sample_shape": [...],
     "shards": [{"file": "shard_00000.npy", "rows": n}, ...], "rows": N}

Each shard is an ``.npy`` file, memory-mapped on read (bfloat16 is stored as uint16 and
reinterpreted); latent pools keep r beside mu in ``shard_00000.r.npy`` (float32, (n,)).
Write one with :func:`write_sharded_pool` or :class:`ShardedPoolWriter`.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
import queue
import threading
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = [
    "SourceError", "RowSource", "ArraySource", "ShardedSource", "ImageFolderSource", "DatasetSource",
    "open_source", "write_sharded_pool", "ShardedPoolWriter", "prefetch", "POOL_FORMAT", "POOL_VERSION",
    "IMAGE_EXTENSIONS", "SourceDataset", "MaskSourceDataset", "channel_stats",
]

POOL_FORMAT = "tavaal-sharded-pool"
POOL_VERSION = 1
KINDS = ("inputs", "latents", "features")
DTYPES = ("float32", "float16", "bfloat16", "uint8")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

Batch = Tuple[np.ndarray, Union[torch.Tensor, Tuple[torch.Tensor, Optional[torch.Tensor]]]]


class SourceError(ValueError):
    """A source cannot be opened, an id is unknown, or the source does not fit the artifacts
    (clear one-line message)."""


# --------------------------------------------------------------------------- prefetching
_END = object()


def prefetch(iterator: Iterable, depth: int = 2) -> Iterator:
    """Run ``iterator`` in a daemon thread, holding at most ``depth`` items ahead.

    Exceptions of the producer are re-raised in the consumer. ``depth <= 0`` returns the
    iterator unchanged (no thread)."""
    if depth <= 0:
        yield from iterator
        return
    q: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="tavaal-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def _dtype_name(dtype) -> str:
    if isinstance(dtype, torch.dtype):
        return {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16",
                torch.uint8: "uint8"}.get(dtype, str(dtype))
    return np.dtype(dtype).name


def _to_tensor(arr: np.ndarray, dtype: str) -> torch.Tensor:
    """Contiguous copy of a (memory-mapped) numpy slice as a torch tensor of ``dtype`` (the copy
    makes the reading thread, not the consumer, take the page faults)."""
    arr = np.array(arr, copy=True, order="C")
    if dtype == "bfloat16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    if arr.dtype not in (np.float32, np.float16, np.uint8):
        arr = arr.astype(np.float32)
    return torch.from_numpy(arr)


def _check_indices(indices: Optional[np.ndarray], n: int) -> Optional[np.ndarray]:
    if indices is None:
        return None
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1:
        raise SourceError(f"indices must be 1-D, got shape {idx.shape}")
    if idx.size and (idx[0] < 0 or idx[-1] >= n or np.any(np.diff(idx) <= 0)):
        raise SourceError(f"indices must be sorted, distinct and in [0, {n})")
    return idx


def _row_plan(n: int, batch_size: int, start: int, stop: Optional[int], indices, exclude) -> Iterator[np.ndarray]:
    """Sorted row numbers of each batch (at most ``batch_size`` rows), O(batch) memory."""
    if batch_size < 1:
        raise SourceError(f"batch_size must be >= 1, got {batch_size}")
    stop = n if stop is None else min(int(stop), n)
    start = max(0, int(start))
    excl = None if exclude is None or len(exclude) == 0 else np.asarray(exclude, dtype=np.int64)
    if indices is not None:
        idx = indices[(indices >= start) & (indices < stop)]
        if excl is not None:
            idx = idx[~np.isin(idx, excl, assume_unique=True)]
        for s in range(0, idx.size, batch_size):
            yield idx[s:s + batch_size]
        return
    pending: List[np.ndarray] = []
    count = 0
    for s in range(start, stop, batch_size):
        rows = np.arange(s, min(s + batch_size, stop), dtype=np.int64)
        if excl is not None:
            lo, hi = np.searchsorted(excl, [rows[0], rows[-1] + 1])
            if hi > lo:
                rows = rows[~np.isin(rows, excl[lo:hi], assume_unique=True)]
        if excl is None:
            yield rows
            continue
        pending.append(rows)
        count += rows.size
        while count >= batch_size:
            cat = np.concatenate(pending)
            yield cat[:batch_size]
            rest = cat[batch_size:]
            pending, count = ([rest] if rest.size else []), rest.size
    if pending and count:
        yield np.concatenate(pending)


_PAGE = mmap.PAGESIZE


def _mapping_address(mm: mmap.mmap) -> int:
    """Address of the first byte of an mmap object. Not cached: ids of freed mmaps are reused."""
    view = np.frombuffer(mm, dtype=np.uint8)
    address = view.ctypes.data
    del view
    return address


def release_pages(arr: np.ndarray, lo: int, hi: int) -> None:
    """``madvise(MADV_DONTNEED)`` the pages of rows [lo, hi) of a memory-mapped array once they
    have been copied out: the pool's file pages then leave this process's resident set, so
    peak memory does not grow with the pool size. Safe for read-only file mappings (a later
    access faults the page in again); a no-op for anything else."""
    mm = getattr(arr, "_mmap", None)
    if mm is None or hi <= lo or not hasattr(mm, "madvise"):
        return
    try:
        row_bytes = int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.itemsize
        start = arr[lo:hi].ctypes.data - _mapping_address(mm)
        end = start + (hi - lo) * row_bytes
        s = (start // _PAGE) * _PAGE
        e = min(-(-end // _PAGE) * _PAGE, len(mm))
        if e > s >= 0:
            mm.madvise(mmap.MADV_DONTNEED, s, e - s)
    except (ValueError, OSError, BufferError, AttributeError):  # pragma: no cover - best effort
        pass


def _gather(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """arr[rows] for sorted rows: one slice when contiguous (the common case).

    Contiguous rows of a memory-mapped ``.npy`` are read with a plain file read instead of
    through the mapping: the file's pages then stay in the page cache and never enter this
    process's resident set (``madvise`` alone left ~7% of the touched pages mapped, so peak
    RSS grew with the pool size)."""
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        return _read_file_rows(arr, lo, hi)
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


class RowSource:
    """Common interface (see the module docstring)."""

    kind: str = "inputs"
    dtype: str = "float32"
    sample_shape: Tuple[int, ...] = ()
    path: Optional[Path] = None

    def __init__(self):
        self.skipped: List[Dict[str, str]] = []

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ ids
    def id_of(self, row: int) -> Union[int, str]:
        """The stable id of ``row`` (here: the row number itself)."""
        return int(row)

    def ids_of(self, rows: Iterable[int]) -> List[Union[int, str]]:
        return [self.id_of(int(r)) for r in rows]

    def _row_of_id(self, ident) -> Optional[int]:
        """Row of one id, or None when it is not an id of this source."""
        if isinstance(ident, (bool, np.bool_)):
            return None
        if isinstance(ident, (int, np.integer)):
            row = int(ident)
        elif isinstance(ident, str) and ident.strip().isdigit():
            row = int(ident.strip())
        else:
            return None
        return row if 0 <= row < len(self) else None

    def rows_of(self, ids: Iterable) -> np.ndarray:
        """Rows (``np.int64``, in the order of ``ids``) of ``ids``: row numbers (ints or digit
        strings) here, relative file paths for image folders. Raises :class:`SourceError`
        listing the unknown ids (the first 20 and a count)."""
        rows, unknown = [], []
        for ident in ids:
            row = self._row_of_id(ident)
            if row is None:
                unknown.append(ident)
            else:
                rows.append(row)
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:20])
            more = f" ... ({len(unknown)} in all)" if len(unknown) > 20 else ""
            raise SourceError(f"{len(unknown)} id(s) are not in the pool {self.path} ({len(self)} rows): "
                              f"{shown}{more}")
        return np.asarray(rows, dtype=np.int64)

    def describe(self) -> str:
        return f"{type(self).__name__}({self.path}, {len(self)} x {list(self.sample_shape)} {self.dtype}, {self.kind})"

    # ------------------------------------------------------------------ reading
    def _read_rows(self, rows: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def read_rows(self, rows: Sequence[int]):
        """The samples of ``rows`` (any order, repeats allowed) as one batch in that order
        (inputs/features: a tensor; latents: ``(mu, r)``). Image folders drop undecodable
        files (recorded in ``skipped``), so their batch may be shorter."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise SourceError(f"rows must lie in [0, {len(self)}), got range [{rows.min()}, {rows.max()}]")
        if rows.size < 2 or np.all(np.diff(rows) > 0):
            return self._read_rows(rows)
        uniq, inverse = np.unique(rows, return_inverse=True)
        batch = self._read_rows(uniq)
        take = torch.from_numpy(inverse.astype(np.int64))
        if isinstance(batch, tuple):
            return batch[0][take], None if batch[1] is None else batch[1][take]
        if batch.shape[0] != uniq.size:
            raise SourceError(f"{self.path}: {uniq.size - batch.shape[0]} of the requested rows could not be read: "
                              f"{self.skipped[-(uniq.size - batch.shape[0]):]}")
        return batch[take]

    def iter_batches(self, batch_size: int, start: int = 0, stop: Optional[int] = None,
                     indices: Optional[np.ndarray] = None, exclude: Optional[np.ndarray] = None,
                     prefetch_depth: int = 2, num_workers: int = 0) -> Iterator[Batch]:
        """Yield ``(rows, batch)`` in increasing row order (see the module docstring)."""
        indices = _check_indices(indices, len(self))
        plan = _row_plan(len(self), batch_size, start, stop, indices, exclude)
        gen = ((rows, self._read_rows(rows)) for rows in plan)
        return prefetch(gen, prefetch_depth)

    def dataset(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                targets=None) -> "SourceDataset":
        """The torch ``Dataset`` view of this source that training reads (see :class:`SourceDataset`)."""
        return SourceDataset(self, mean=mean, std=std, targets=targets)

    def close(self) -> None:
        pass


class SourceDataset(torch.utils.data.Dataset):
    """A row source as a torch ``Dataset`` indexed by *global row*: ``ds[row] -> (x, y)`` and
    ``ds.get_batch(rows) -> (x (B, *shape) float32, y (B,) int64)``; ``len(ds) == len(source)``.

    Only the rows asked for are read, so ``train_task_models(task, ds, labeled_rows, ...)`` and
    ``train_adversarial_models(adv, ds, labeled_rows, subset_rows, ...)`` touch the labeled rows
    and the unlabeled subset only, however large the source.

    Args:
        source: an ``"inputs"`` row source.
        mean, std: per-channel (images) or per-feature (vectors) statistics: uint8 sources give
            ``(x / 255 - mean) / std`` (None: ``x / 255``); float sources are taken as already
            normalised (mean/std ignored).
        targets: labels as class indices: a ``(rows, labels)`` pair of int arrays (rows distinct),
            or an int array of length ``len(source)``; rows without a label give ``y = -1``
            (never used by training, which reads labeled rows for the task loss only).

    Raises :class:`SourceError` when a requested image cannot be decoded (training never skips
    silently) or the targets are malformed.
    """

    def __init__(self, source: RowSource, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, targets=None):
        if source.kind != "inputs":
            raise SourceError(f"a {source.kind!r} source holds no inputs to train on")
        self.source = source
        self.sample_shape = tuple(source.sample_shape)
        self._uint8 = source.dtype == "uint8"
        c = self.sample_shape[0] if self.sample_shape else 1
        m = torch.tensor(list(mean) if mean is not None else [0.0] * c, dtype=torch.float32).reshape(-1)
        sd = torch.tensor(list(std) if std is not None else [1.0] * c, dtype=torch.float32).reshape(-1)
        if m.numel() == 1 and c > 1:
            m, sd = m.expand(c).clone(), sd.expand(c).clone()
        if m.numel() != c or sd.numel() != c:
            raise SourceError(f"mean/std need {c} values (one per channel/feature), got {m.numel()} and {sd.numel()}")
        view = (1, c) + (1,) * max(len(self.sample_shape) - 1, 0)
        self.mean, self.std = tuple(m.tolist()), tuple(sd.tolist())
        self._scale = (1.0 / (255.0 * sd)).view(view)
        self._shift = (-m / sd).view(view)
        self._label_rows, self._labels, self._full = None, None, None
        if targets is not None:
            self.set_targets(targets)

    def set_targets(self, targets) -> None:
        """Replace the labels (see the class docstring)."""
        if isinstance(targets, tuple) and len(targets) == 2:
            rows = np.asarray(targets[0], dtype=np.int64).reshape(-1)
            labels = np.asarray(targets[1], dtype=np.int64).reshape(-1)
            if rows.shape != labels.shape:
                raise SourceError(f"targets: {rows.size} rows but {labels.size} labels")
            order = np.argsort(rows, kind="stable")
            rows, labels = rows[order], labels[order]
            if rows.size and (rows[0] < 0 or rows[-1] >= len(self.source) or np.any(np.diff(rows) == 0)):
                raise SourceError(f"target rows must be distinct and lie in [0, {len(self.source)})")
            self._label_rows, self._labels, self._full = rows, labels, None
        else:
            full = np.asarray(targets, dtype=np.int64).reshape(-1)
            if full.size != len(self.source):
                raise SourceError(f"targets: expected {len(self.source)} labels (one per row), got {full.size}")
            self._label_rows, self._labels, self._full = None, None, full

    @property
    def targets(self) -> Optional[np.ndarray]:
        """Full-length labels when given so; None for ``(rows, labels)`` targets (never N-sized)."""
        return self._full

    def labels_of(self, rows: np.ndarray) -> np.ndarray:
        """int64 labels of ``rows`` (-1 where unlabeled)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._full is not None:
            return self._full[rows]
        out = np.full(rows.shape, -1, dtype=np.int64)
        if self._label_rows is not None and self._label_rows.size:
            pos = np.searchsorted(self._label_rows, rows)
            pos = np.minimum(pos, self._label_rows.size - 1)
            hit = self._label_rows[pos] == rows
            out[hit] = self._labels[pos[hit]]
        return out

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """A raw batch of the source as normalised float32."""
        if self._uint8:
            return x.to(torch.float32).mul_(self._scale).add_(self._shift)
        return x.to(torch.float32)

    def __len__(self) -> int:
        return len(self.source)

    def get_batch(self, rows) -> Tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        skipped_before = len(self.source.skipped)
        x = self.source.read_rows(rows)
        if x.shape[0] != rows.size:
            bad = self.source.skipped[skipped_before:]
            raise SourceError(f"cannot read {rows.size - x.shape[0]} training sample(s): "
                              + "; ".join(f"{b['id']}: {b['error']}" for b in bad[:5]))
        return self.normalize(x), self.targets_of(rows)

    def targets_of(self, rows: np.ndarray) -> torch.Tensor:
        """Targets of ``rows`` as a tensor: int64 class indices (B,) here, -1 where unlabeled."""
        return torch.from_numpy(self.labels_of(rows))

    def __getitem__(self, row: int):
        x, y = self.get_batch([int(row)])
        return x[0], int(y[0])

    def __repr__(self) -> str:
        return f"SourceDataset({self.source.describe()})"


class MaskSourceDataset(SourceDataset):
    """A row source whose targets are label masks (segmentation): ``ds.get_batch(rows) -> (x (B,
    C, H, W) float32 normalised, masks (B, H, W) int64)``, indexed by global row like
    :class:`SourceDataset`.

    Args:
        source: an ``"inputs"`` image source of shape (C, H, W).
        mean, std: as :class:`SourceDataset`.
        masks: ``{row: mask file}`` of the labeled rows; each file is a single-channel image of
            class indices decoded with :func:`tavaal.data.readers.segfolder.read_mask` through
            ``lookup`` and resized (nearest) to the source's (H, W). Rows without a mask give a
            mask of ``ignore_index`` everywhere (no labeled pixel: never read by training, which
            reads labeled rows for the task loss only).
        lookup: mask value -> class table (256 entries, -1 = not allowed), e.g.
            ``identity_lookup(K)``.

    Masks are read lazily, one file per labeled row and batch (nothing is cached). Raises
    :class:`SourceError` when a mask cannot be decoded or holds values outside the lookup.
    """

    task = "segmentation"

    def __init__(self, source: RowSource, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, *, masks: Dict[int, Union[str, os.PathLike]],
                 lookup: np.ndarray, ignore_index: int = 255):
        super().__init__(source, mean, std)
        if len(self.sample_shape) != 3:
            raise SourceError(f"mask targets need an image source of shape (C, H, W), got {self.sample_shape}")
        n = len(source)
        self.masks = {int(r): Path(f) for r, f in masks.items()}
        bad = [r for r in self.masks if not 0 <= r < n]
        if bad:
            raise SourceError(f"mask rows must lie in [0, {n}), got {sorted(bad)[:20]}")
        self.lookup = np.asarray(lookup, dtype=np.int16)
        self.ignore_index = int(ignore_index)

    def labels_of(self, rows: np.ndarray) -> np.ndarray:
        raise SourceError("a MaskSourceDataset has per-pixel masks, not one class per row (use get_batch)")

    def mask_of(self, row: int) -> torch.Tensor:
        """int64 (H, W) labels of ``row`` (all ``ignore_index`` when it has no mask)."""
        from .readers.segfolder import read_mask  # lazy: readers import this module's package
        from .errors import CorruptDatasetError

        hw = tuple(int(s) for s in self.sample_shape[1:])
        path = self.masks.get(int(row))
        if path is None:
            return torch.full(hw, self.ignore_index, dtype=torch.int64)
        try:
            return read_mask(path, self.lookup, size=hw, ignore_index=self.ignore_index).to(torch.int64)
        except CorruptDatasetError as exc:
            raise SourceError(str(exc)) from None

    def targets_of(self, rows: np.ndarray) -> torch.Tensor:
        """Masks of ``rows``: int64 (B, H, W), ``ignore_index`` where unlabeled."""
        return torch.stack([self.mask_of(int(r)) for r in rows])

    def __getitem__(self, row: int):
        x, y = self.get_batch([int(row)])
        return x[0], y[0]

    def __repr__(self) -> str:
        return f"MaskSourceDataset({self.source.describe()}, {len(self.masks)} masks)"


def channel_stats(source: RowSource, rows: Optional[Sequence[int]] = None, *, max_rows: int = 10000, seed: int = 0,
                  batch_size: int = 512) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel (images) or per-feature (vectors) mean and std of a source's values on the
    0..1 scale for uint8 (x / 255), as stored otherwise -- what :class:`SourceDataset` needs.

    Reads ``rows`` (default: all rows) or a seeded random ``max_rows`` of them, in bounded
    memory. Std values of 0 are replaced by 1."""
    n = len(source)
    rows = np.arange(n, dtype=np.int64) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    if rows.size == 0:
        raise SourceError("channel_stats: no rows to compute statistics on")
    if rows.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
    total = total_sq = None
    count = 0
    for _, batch in source.iter_batches(batch_size, indices=rows, prefetch_depth=0):
        x = batch.to(torch.float64)
        if source.dtype == "uint8":
            x = x / 255.0
        x = x.reshape(x.shape[0], x.shape[1] if x.dim() > 1 else 1, -1)
        s, sq = x.sum(dim=(0, 2)), (x * x).sum(dim=(0, 2))
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += x.shape[0] * x.shape[2]
    if count == 0:
        raise SourceError("channel_stats: none of the rows could be read")
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


# ------------------------------------------------------------------------------ npy / npz
def _npz_member_memmap(path: Path, key: str) -> Optional[np.memmap]:
    """Memory-map an *uncompressed* member of an .npz (np.savez); None if it is compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        data_start = info.header_offset + 30 + name_len + extra_len
        f.seek(data_start)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if fortran or dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class _CompressedNpzMember:
    """Sequential reader of a compressed .npz member (np.savez_compressed): bounded memory,
    rows are decompressed in order (random access re-reads from the start)."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if fortran:
            raise SourceError(f"{path}:{key}: Fortran-ordered arrays are not supported")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self._zf = None
        self._f = None
        self._pos = 0

    def _open(self):
        self.close()
        self._zf = zipfile.ZipFile(self.path)
        self._f = self._zf.open(self.key + ".npy")
        version = np.lib.format.read_magic(self._f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(self._f)
        self._pos = 0

    def read(self, lo: int, hi: int) -> np.ndarray:
        if self._f is None or lo < self._pos:
            self._open()
        if lo > self._pos:
            skip = (lo - self._pos) * self.row_bytes
            while skip:
                got = len(self._f.read(min(skip, 1 << 24)))
                if not got:
                    break
                skip -= got
            self._pos = lo
        data = self._f.read((hi - lo) * self.row_bytes)
        self._pos = hi
        return np.frombuffer(data, dtype=self.dtype).reshape((hi - lo,) + self.shape[1:])

    def close(self):
        if self._f is not None:
            self._f.close()
            self._zf.close()
        self._f = self._zf = None


class ArraySource(RowSource):
    """A single ``.npy`` (memory-mapped) or ``.npz`` member (memory-mapped when stored, read
    sequentially when compressed). ``key`` selects the npz member (default "X", else the only
    or first member); ``r`` (optional (N,) array) makes it a latent pool."""

    def __init__(self, path: os.PathLike, key: Optional[str] = None, kind: str = "inputs",
                 r: Optional[np.ndarray] = None, dtype: Optional[str] = None):
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"pool {self.path} does not exist")
        self.key = key
        self._compressed: Optional[_CompressedNpzMember] = None
        try:
            if self.path.suffix == ".npz":
                with zipfile.ZipFile(self.path) as zf:
                    members = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                if not members:
                    raise SourceError(f"{self.path}: the .npz holds no arrays")
                if key is None:
                    key = "X" if "X" in members else members[0]
                if key not in members:
                    raise SourceError(f"{self.path}: no array {key!r} (has {', '.join(members)})")
                self.key = key
                arr = _npz_member_memmap(self.path, key)
                if arr is None:
                    self._compressed = _CompressedNpzMember(self.path, key)
                    shape, np_dtype = self._compressed.shape, self._compressed.dtype
                else:
                    shape, np_dtype = arr.shape, arr.dtype
                self._arr = arr
            else:
                self._arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
                shape, np_dtype = self._arr.shape, self._arr.dtype
        except SourceError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            raise SourceError(f"{self.path}: cannot read the array ({type(exc).__name__}: {exc})") from exc
        if len(shape) < 1:
            raise SourceError(f"{self.path}: a pool array needs a sample axis, got a scalar")
        if len(shape) == 1:
            shape = (shape[0], 1)
            if self._arr is not None:
                self._arr = self._arr.reshape(-1, 1)
        self._n = int(shape[0])
        self.sample_shape = tuple(int(s) for s in shape[1:])
        if dtype is None:
            dtype = "bfloat16" if np_dtype == np.uint16 else _dtype_name(np_dtype)
            if dtype not in DTYPES:
                if np.issubdtype(np_dtype, np.number):
                    dtype = "float32"  # other numeric dtypes are converted per batch
                else:
                    raise SourceError(f"{self.path}: unsupported dtype {np_dtype}")
        self.dtype = dtype
        if kind not in KINDS:
            raise SourceError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self._r = None if r is None else np.asarray(r, dtype=np.float32).reshape(-1)

    def __len__(self) -> int:
        return self._n

    def _read_rows(self, rows: np.ndarray):
        if rows.size == 0:
            x = torch.empty((0,) + self.sample_shape)
        elif self._compressed is not None:
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            block = self._compressed.read(lo, hi)
            x = _to_tensor(block[rows - lo], self.dtype)
        else:
            x = _to_tensor(_gather(self._arr, rows), self.dtype)
            release_pages(self._arr, int(rows[0]), int(rows[-1]) + 1)
        if self.kind == "latents":
            r = None if self._r is None else torch.from_numpy(np.ascontiguousarray(self._r[rows]))
            return x, r
        return x

    def close(self) -> None:
        if self._compressed is not None:
            self._compressed.close()


# ---------------------------------------------------------------------------- sharded pool
class ShardedSource(RowSource):
    """A sharded pool directory (``pool.json`` + ``.npy`` shards, memory-mapped)."""

    def __init__(self, directory: os.PathLike):
        super().__init__()
        self.path = Path(directory)
        meta_path = self.path / "pool.json"
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise SourceError(f"{meta_path}: cannot read the sharded pool description ({exc})") from exc
        if meta.get("format") != POOL_FORMAT:
            raise SourceError(f"{meta_path}: not a tavaal sharded pool (format {meta.get('format')!r})")
        if meta.get("version") != POOL_VERSION:
            raise SourceError(f"{meta_path}: sharded pool version {meta.get('version')!r} is not supported "
                            f"(this tavaal reads version {POOL_VERSION})")
        if meta.get("kind") not in KINDS or meta.get("dtype") not in DTYPES:
            raise SourceError(f"{meta_path}: kind must be one of {KINDS} and dtype one of {DTYPES}, got "
                            f"{meta.get('kind')!r}, {meta.get('dtype')!r}")
        self.meta = meta
        self.kind, self.dtype = meta["kind"], meta["dtype"]
        self.sample_shape = tuple(int(s) for s in meta["sample_shape"])
        self._files = [s["file"] for s in meta["shards"]]
        rows = np.array([int(s["rows"]) for s in meta["shards"]], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self._n = int(self._offsets[-1])
        if int(meta.get("rows", self._n)) != self._n:
            raise SourceError(f"{meta_path}: rows {meta.get('rows')} != sum of shard rows {self._n}")
        self._maps: Dict[int, Tuple[np.ndarray, Optional[np.ndarray]]] = {}

    def __len__(self) -> int:
        return self._n

    def _shard(self, k: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if k not in self._maps:
            f = self.path / self._files[k]
            try:
                arr = np.load(f, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise SourceError(f"{f}: cannot read shard ({exc})") from exc
            expect = (int(self._offsets[k + 1] - self._offsets[k]),) + self.sample_shape
            if tuple(arr.shape) != expect:
                raise SourceError(f"{f}: shape {tuple(arr.shape)} != {expect} from pool.json")
            r = None
            if self.kind == "latents":
                rf = f.with_name(f.name[:-4] + ".r.npy")
                if rf.exists():
                    r = np.load(rf, mmap_mode="r", allow_pickle=False)
            if len(self._maps) > 64:  # bounded number of open maps
                self._maps.pop(next(iter(self._maps)))
            self._maps[k] = (arr, r)
        return self._maps[k]

    def _read_rows(self, rows: np.ndarray):
        parts, rparts = [], []
        if rows.size:
            shard_of = np.searchsorted(self._offsets, rows, side="right") - 1
            for k in np.unique(shard_of):
                sel = rows[shard_of == k] - self._offsets[k]
                arr, r = self._shard(int(k))
                parts.append(_to_tensor(_gather(arr, sel), self.dtype))
                release_pages(arr, int(sel[0]), int(sel[-1]) + 1)
                if self.kind == "latents":
                    rparts.append(None if r is None else torch.from_numpy(np.array(_gather(r, sel), dtype=np.float32, copy=True)))
        x = torch.cat(parts) if parts else torch.empty((0,) + self.sample_shape)
        if self.kind == "latents":
            r = None if (not rparts or any(p is None for p in rparts)) else torch.cat(rparts)
            return x, r
        return x


class ShardedPoolWriter:
    """Write a sharded pool incrementally: ``write(chunk, r=None)`` appends rows (split into
    shards of at most ``shard_rows``), ``close()`` writes ``pool.json`` (atomically, last: a
    directory without it is not a pool). Usable as a context manager.

    ``dtype`` (default: the first chunk's) is what is stored; float chunks are cast to it;
    bfloat16 is stored as uint16 ``.npy``."""

    def __init__(self, directory: os.PathLike, kind: str = "inputs", dtype: Optional[str] = None,
                 shard_rows: int = 65536, overwrite: bool = False):
        if kind not in KINDS:
            raise SourceError(f"kind must be one of {KINDS}, got {kind!r}")
        if dtype is not None and dtype not in DTYPES:
            raise SourceError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.path = Path(directory)
        if (self.path / "pool.json").exists() and not overwrite:
            raise SourceError(f"{self.path} already holds a sharded pool (pass overwrite=True)")
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "pool.json").unlink(missing_ok=True)
        self.kind, self.dtype, self.shard_rows = kind, dtype, int(shard_rows)
        self.sample_shape: Optional[Tuple[int, ...]] = None
        self.shards: List[Dict[str, Any]] = []
        self.rows = 0

    def _store(self, chunk) -> np.ndarray:
        if isinstance(chunk, torch.Tensor):
            if chunk.dtype == torch.bfloat16:
                if self.dtype is None:
                    self.dtype = "bfloat16"
                if self.dtype == "bfloat16":
                    return chunk.contiguous().view(torch.int16).numpy().view(np.uint16)
                chunk = chunk.float()
            chunk = chunk.detach().cpu().numpy()
        chunk = np.asarray(chunk)
        if self.dtype is None:
            self.dtype = _dtype_name(chunk.dtype) if _dtype_name(chunk.dtype) in DTYPES else "float32"
        if self.dtype == "bfloat16":
            t = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(torch.bfloat16)
            return t.view(torch.int16).numpy().view(np.uint16)
        return np.ascontiguousarray(chunk, dtype=np.dtype(self.dtype))

    def write(self, chunk, r=None) -> None:
        data = self._store(chunk)
        if data.ndim == 1:
            data = data.reshape(-1, 1)
        shape = tuple(int(s) for s in data.shape[1:])
        if self.sample_shape is None:
            self.sample_shape = shape
        elif shape != self.sample_shape:
            raise SourceError(f"chunk sample shape {shape} != {self.sample_shape} of earlier chunks")
        rr = None
        if self.kind == "latents" and r is not None:
            rr = np.asarray(r.detach().cpu().float().numpy() if isinstance(r, torch.Tensor) else r,
                            dtype=np.float32).reshape(-1)
            if rr.shape[0] != data.shape[0]:
                raise SourceError(f"r has {rr.shape[0]} rows but the chunk {data.shape[0]}")
        for s in range(0, data.shape[0], self.shard_rows):
            part = data[s:s + self.shard_rows]
            name = f"shard_{len(self.shards):05d}.npy"
            np.save(self.path / name, part)
            if rr is not None:
                np.save(self.path / f"shard_{len(self.shards):05d}.r.npy", rr[s:s + self.shard_rows])
            self.shards.append({"file": name, "rows": int(part.shape[0])})
            self.rows += int(part.shape[0])

    def close(self) -> Dict[str, Any]:
        from ..rundir import write_json

        meta = {"format": POOL_FORMAT, "version": POOL_VERSION, "kind": self.kind, "dtype": self.dtype or "float32",
                "sample_shape": list(self.sample_shape or ()), "shards": self.shards, "rows": self.rows}
        write_json(self.path / "pool.json", meta)
        os.chmod(self.path / "pool.json", 0o644)
        return meta

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()


def write_sharded_pool(directory: os.PathLike, data, kind: str = "inputs", *, dtype: Optional[str] = None,
                       shard_rows: int = 65536, overwrite: bool = False) -> Dict[str, Any]:
    """Write ``data`` as a sharded pool; returns the ``pool.json`` content.

    ``data``: an array/tensor (N, ...), or an iterable of such chunks (each split into shards
    of at most ``shard_rows`` rows; a generator keeps memory bounded). For ``kind="latents"``
    give ``(mu, r)`` or an iterable of ``(mu, r)`` pairs (r may be None: VAAL latents)."""
    with ShardedPoolWriter(directory, kind, dtype, shard_rows, overwrite) as writer:
        single = isinstance(data, (np.ndarray, torch.Tensor)) or (
            kind == "latents" and isinstance(data, tuple) and len(data) == 2
            and isinstance(data[0], (np.ndarray, torch.Tensor)))
        for chunk in ([data] if single else data):
            if kind == "latents":
                if isinstance(chunk, tuple):
                    writer.write(chunk[0], chunk[1])
                else:
                    writer.write(chunk, None)
            else:
                writer.write(chunk)
    return writer.close()


# ---------------------------------------------------------------------------- image folders
def _decode(path: str, size: Tuple[int, int], channels: int) -> torch.Tensor:
    from .readers.folder import decode_image

    return decode_image(path, size, channels)


class _ImageRows(torch.utils.data.Dataset):
    """DataLoader dataset whose items are whole batches: ``rows -> (rows, tensor, skipped)``."""

    def __init__(self, files: List[str], shape: Tuple[int, int, int], plan: List[np.ndarray], ids: List[str]):
        self.files, self.shape, self.plan, self.ids = files, shape, plan, ids

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, k):
        rows = self.plan[k]
        good, tensors, skipped = [], [], []
        for row in rows:
            f = self.files[int(row)]
            try:
                tensors.append(_decode(f, self.shape[1:], self.shape[0]))
                good.append(int(row))
            except Exception as exc:  # noqa: BLE001 - any decode failure is a skipped image
                skipped.append({"id": self.ids[int(row)], "error": f"{type(exc).__name__}: {exc}"})
        x = torch.stack(tensors) if tensors else torch.empty((0,) + self.shape, dtype=torch.uint8)
        return np.asarray(good, dtype=np.int64), x, skipped


class ImageFolderSource(RowSource):
    """Every image file under ``root`` (recursively, sorted by path), decoded with PIL to
    ``image_shape`` = (C, H, W) uint8 (C = 1: grayscale, 3: RGB; bilinear resize). Ids are
    the files' POSIX paths relative to ``root`` (``rows_of`` also accepts root-joined and
    absolute paths); while scoring, unreadable files are skipped and listed in ``skipped``."""

    kind = "inputs"
    dtype = "uint8"

    def __init__(self, root: os.PathLike, image_shape: Optional[Sequence[int]] = None):
        super().__init__()
        self.path = Path(root)
        if not self.path.is_dir():
            raise SourceError(f"pool {self.path} is not a directory")
        files = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    files.append(os.path.join(dirpath, name))
        self.files = sorted(files)
        root_text = str(self.path)
        self.ids = [Path(os.path.relpath(f, root_text)).as_posix() for f in self.files]
        self._lookup: Optional[Dict[str, int]] = None
        if image_shape is None:
            image_shape = self._probe_shape()
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or image_shape[0] not in (1, 3):
            raise SourceError(f"an image folder pool needs a (C, H, W) input shape with C = 1 or 3, got {image_shape}")
        self.sample_shape = image_shape

    def _probe_shape(self) -> Tuple[int, int, int]:
        from PIL import Image

        for f in self.files[:100]:
            try:
                with Image.open(f) as img:
                    w, h = img.size
                    return (1 if img.mode in ("L", "1", "I", "F") else 3, h, w)
            except Exception:  # noqa: BLE001
                continue
        return (3, 32, 32)

    def __len__(self) -> int:
        return len(self.files)

    def id_of(self, row: int) -> str:
        return self.ids[int(row)]

    def _row_of_id(self, ident) -> Optional[int]:
        if self._lookup is None:
            self._lookup = {ident: row for row, ident in enumerate(self.ids)}
        if not isinstance(ident, (str, os.PathLike)):
            return None
        key = Path(ident).as_posix()
        row = self._lookup.get(key)
        if row is None:
            p = Path(ident)
            for base in (self.path, self.path.resolve()):
                try:
                    rel = p.relative_to(base) if p.is_absolute() == base.is_absolute() else None
                except ValueError:
                    rel = None
                if rel is not None and rel.as_posix() in self._lookup:
                    return self._lookup[rel.as_posix()]
        return row

    def _read_rows(self, rows: np.ndarray):
        good, x, skipped = _ImageRows(self.files, self.sample_shape, [rows], self.ids)[0]
        self.skipped.extend(skipped)
        return x

    def iter_batches(self, batch_size: int, start: int = 0, stop: Optional[int] = None,
                     indices: Optional[np.ndarray] = None, exclude: Optional[np.ndarray] = None,
                     prefetch_depth: int = 2, num_workers: int = 0) -> Iterator[Batch]:
        """As :meth:`RowSource.iter_batches`; decodes in ``num_workers`` DataLoader worker
        processes (0: a background thread). Corrupt images are dropped from their batch (so
        a batch may be shorter, or empty) and appended to ``self.skipped``."""
        indices = _check_indices(indices, len(self))
        plan = list(_row_plan(len(self), batch_size, start, stop, indices, exclude))
        ds = _ImageRows(self.files, self.sample_shape, plan, self.ids)
        if num_workers > 0:
            loader = torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=num_workers,
                                                 prefetch_factor=max(1, prefetch_depth), persistent_workers=False)
            source = iter(loader)
        else:
            source = prefetch((ds[k] for k in range(len(ds))), prefetch_depth)

        def gen():
            for good, x, skipped in source:
                if skipped:
                    self.skipped.extend(skipped)
                yield np.asarray(good, dtype=np.int64), x
        return gen()


# ------------------------------------------------------------------------------- datasets
class DatasetSource(RowSource):
    """A torch dataset of ``(x, y)`` items as a row source: the train (or test) split of a
    :func:`tavaal.data.load_dataset` data set (already normalised float32), or any given
    ``dataset`` (``DatasetSource(dataset=bundle.train)``; ``bundle.train_source`` does this).
    Ids are row numbers of that split. Datasets with ``get_batch(rows)`` (the in-memory
    :class:`tavaal.data.ArrayDataset`) are read a batch at a time."""

    def __init__(self, name: Optional[str] = None, split: str = "train", data_dir: Optional[str] = None,
                 seed: int = 0, dataset=None, **options):
        super().__init__()
        if dataset is None:
            if name is None:
                raise SourceError("DatasetSource needs a dataset name or a dataset")
            from . import load_dataset

            if split not in ("train", "test"):
                raise SourceError(f"dataset split must be 'train' or 'test', got {split!r}")
            try:
                bundle = load_dataset(name, data_dir, seed=seed, **options)
            except Exception as exc:  # noqa: BLE001 - reported as a source error
                raise SourceError(f"dataset {name!r}: {exc}") from exc
            dataset = bundle.train if split == "train" else bundle.test
        self.torch_dataset = dataset
        self.path = Path(f"dataset:{name}:{split}") if name is not None else Path(f"dataset:{type(dataset).__name__}")
        self.dtype = "float32"
        self.sample_shape = tuple(dataset[0][0].shape) if len(dataset) else ()

    def __len__(self) -> int:
        return len(self.torch_dataset)

    def _read_rows(self, rows: np.ndarray):
        getter: Callable = getattr(self.torch_dataset, "get_batch", None)
        if getter is not None:
            return getter(rows)[0].float()
        return torch.stack([self.torch_dataset[int(i)][0] for i in rows]).float() if rows.size else torch.empty((0,) + self.sample_shape)


def open_source(path: Union[str, os.PathLike], *, image_shape: Optional[Sequence[int]] = None,
              key: Optional[str] = None, kind: Optional[str] = None, **dataset_options) -> RowSource:
    """The row source of a pool, by what ``path`` is (raises :class:`SourceError` when it
    cannot be opened):

    * ``dataset:NAME[:train|test]`` (or a registered dataset name that is not an existing
      path): a :class:`DatasetSource`;
    * a directory with ``pool.json``: a :class:`ShardedSource`;
    * another directory: an :class:`ImageFolderSource` (decoded to ``image_shape``);
    * ``FILE.npy`` / ``FILE.npz`` (``FILE.npz:KEY`` picks a member): an :class:`ArraySource`.
    """
    text = str(path)
    if text.startswith("dataset:"):
        parts = text.split(":")
        return DatasetSource(parts[1], parts[2] if len(parts) > 2 else "train", **dataset_options)
    p = Path(text)
    if not p.exists() and ".npz:" in text:
        file, member = text.rsplit(":", 1)
        return ArraySource(file, key=member, kind=kind or "inputs")
    if not p.exists():
        from .registry import DATASETS

        if text in DATASETS:
            return DatasetSource(text, "train", **dataset_options)
        raise SourceError(f"pool {text} does not exist (give an image folder, a .npy/.npz file, a sharded pool "
                        "directory or dataset:NAME)")
    if p.is_dir():
        if (p / "pool.json").exists():
            pool = ShardedSource(p)
            if kind is not None and pool.kind != kind:
                raise SourceError(f"{p} is a {pool.kind!r} pool, expected {kind!r}")
            return pool
        return ImageFolderSource(p, image_shape)
    if p.suffix in (".npy", ".npz"):
        return ArraySource(p, key=key, kind=kind or "inputs")
    raise SourceError(f"pool {p}: unsupported file type {p.suffix!r} (use .npy, .npz, an image folder or a "
                    "sharded pool directory)")
