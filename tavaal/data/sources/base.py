"""The row-source interface: ids, reads in any order, batch plans and read-ahead.

:class:`RowSource` is what every pool format implements (see :mod:`tavaal.data.sources`);
:func:`row_plan` cuts the rows of a pass into batches, :func:`prefetch` reads them ahead in a
background thread.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = ["SourceError", "RowSource", "Batch", "prefetch", "row_plan", "KINDS", "DTYPES"]

KINDS = ("inputs", "latents", "features")
DTYPES = ("float32", "float16", "bfloat16", "uint8")

Batch = Tuple[np.ndarray, Union[torch.Tensor, Tuple[torch.Tensor, Optional[torch.Tensor]]]]

_END = object()


class SourceError(ValueError):
    """A source cannot be opened, an id is unknown, or the source does not fit the artifacts
    (clear one-line message)."""


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


def row_plan(n: int, batch_size: int, start: int, stop: Optional[int], indices, exclude) -> Iterator[np.ndarray]:
    """Sorted row numbers of each batch (at most ``batch_size`` rows) of rows [start, stop) (or of
    ``indices``: 1-D, sorted, distinct, in [0, n)) without the sorted ``exclude`` rows; O(batch)
    memory. Raises :class:`SourceError` (at once) for a batch size below 1 or bad ``indices``."""
    if batch_size < 1:
        raise SourceError(f"batch_size must be >= 1, got {batch_size}")
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1:
            raise SourceError(f"indices must be 1-D, got shape {indices.shape}")
        if indices.size and (indices[0] < 0 or indices[-1] >= n or np.any(np.diff(indices) <= 0)):
            raise SourceError(f"indices must be sorted, distinct and in [0, {n})")
    stop = n if stop is None else min(int(stop), n)
    start = max(0, int(start))
    excl = None if exclude is None or len(exclude) == 0 else np.asarray(exclude, dtype=np.int64)
    if indices is not None:
        chunks: Iterable[np.ndarray] = [indices[(indices >= start) & (indices < stop)]]
    else:
        chunks = (np.arange(s, min(s + batch_size, stop), dtype=np.int64) for s in range(start, stop, batch_size))
    return _rebatch(chunks, excl, batch_size)


def _rebatch(chunks: Iterable[np.ndarray], excl: Optional[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """The sorted rows of ``chunks`` without ``excl``, cut into batches of ``batch_size``."""
    pending = np.zeros(0, dtype=np.int64)
    for rows in chunks:
        if excl is not None and rows.size:
            lo, hi = np.searchsorted(excl, [rows[0], rows[-1] + 1])
            rows = rows[~np.isin(rows, excl[lo:hi], assume_unique=True)]
        pending = np.concatenate([pending, rows])
        while pending.size >= batch_size:
            yield pending[:batch_size]
            pending = pending[batch_size:]
    if pending.size:
        yield pending


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

    def id_of(self, row: int) -> Union[int, str]:
        """The stable id of ``row`` (here: the row number itself)."""
        return int(row)

    def ids_of(self, rows: Iterable[int]) -> List[Union[int, str]]:
        return [self.id_of(int(r)) for r in rows]

    def _row_of_id(self, ident) -> Optional[int]:
        """Row of one id, or None when it is not an id of this source."""
        if isinstance(ident, str) and ident.strip().isdigit():
            ident = int(ident.strip())
        if isinstance(ident, (bool, np.bool_)) or not isinstance(ident, (int, np.integer)):
            return None
        return int(ident) if 0 <= ident < len(self) else None

    def rows_of(self, ids: Iterable) -> np.ndarray:
        """Rows (``np.int64``, in the order of ``ids``) of ``ids``: row numbers (ints or digit
        strings) here, relative file paths for image folders. Raises :class:`SourceError`
        listing the unknown ids (the first 20 and a count)."""
        found = [(ident, self._row_of_id(ident)) for ident in ids]
        unknown = [ident for ident, row in found if row is None]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:20])
            more = f" ... ({len(unknown)} in all)" if len(unknown) > 20 else ""
            raise SourceError(f"{len(unknown)} id(s) are not in the pool {self.path} ({len(self)} rows): "
                              f"{shown}{more}")
        return np.asarray([row for _, row in found], dtype=np.int64)

    def describe(self) -> str:
        return f"{type(self).__name__}({self.path}, {len(self)} x {list(self.sample_shape)} {self.dtype}, {self.kind})"

    def _read_rows(self, rows: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def read_rows(self, rows: Sequence[int]):
        """The samples of ``rows`` (any order, repeats allowed) as one batch in that order
        (inputs/features: a tensor; latents: ``(mu, r)``). Image folders drop undecodable
        files (recorded in ``skipped``), so their batch may be shorter: :meth:`read_available`
        also says which rows came back."""
        return self.read_available(rows)[1]

    def _read_available(self, rows: np.ndarray):
        """``(rows read, batch)`` for sorted distinct ``rows``: every row here (a source whose
        rows can be unreadable, the image folders, overrides it)."""
        return rows, self._read_rows(rows)

    def read_available(self, rows: Sequence[int]):
        """Like :meth:`read_rows`, but rows that cannot be read (undecodable images, recorded
        in ``skipped``) are left out instead of failing: returns ``(rows_read, batch)`` with
        ``rows_read`` the int64 rows of the batch, in the order asked (repeats kept)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise SourceError(f"rows must lie in [0, {len(self)}), got range [{rows.min()}, {rows.max()}]")
        if rows.size < 2 or np.all(np.diff(rows) > 0):
            return self._read_available(rows)
        good, batch = self._read_available(np.unique(rows))
        keep = np.isin(rows, good)
        take = torch.from_numpy(np.searchsorted(good, rows[keep]).astype(np.int64))
        if isinstance(batch, tuple):
            return rows[keep], (batch[0][take], None if batch[1] is None else batch[1][take])
        return rows[keep], batch[take]

    def iter_batches(self, batch_size: int, start: int = 0, stop: Optional[int] = None,
                     indices: Optional[np.ndarray] = None, exclude: Optional[np.ndarray] = None,
                     prefetch_depth: int = 2, num_workers: int = 0) -> Iterator[Batch]:
        """Yield ``(rows, batch)`` in increasing row order (see the module docstring)."""
        return self._read_plan(row_plan(len(self), batch_size, start, stop, indices, exclude), prefetch_depth,
                               num_workers)

    def _read_plan(self, plan: Iterator[np.ndarray], prefetch_depth: int, num_workers: int) -> Iterator[Batch]:
        """``(rows, batch)`` of each batch of ``plan``, read ahead by :func:`prefetch`."""
        return prefetch(((rows, self._read_rows(rows)) for rows in plan), prefetch_depth)

    def close(self) -> None:
        pass
