"""The training views of a row source: :class:`SourceDataset` (one class per row) and
:class:`MaskSourceDataset` (a label mask per row), indexed by global row."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import CorruptDatasetError
from ..imagefiles import read_mask
from ..normalization import channel_constants, uint8_scale_shift
from .base import RowSource, SourceError
from .images import ImageFolderSource, find_unreadable

__all__ = ["SourceDataset", "MaskSourceDataset", "ItemwiseView", "ON_UNREADABLE", "UnreadableRowsError"]

ON_UNREADABLE = ("skip", "error")


class UnreadableRowsError(SourceError, CorruptDatasetError):
    """Rows that cannot be read under ``on_unreadable="error"``: a :class:`SourceError` and a
    :class:`~tavaal.data.CorruptDatasetError` (``paths``: the files)."""


class SourceDataset(torch.utils.data.Dataset):
    """A row source as a torch ``Dataset`` indexed by *global row*: ``ds[row] -> (x, y)`` and
    ``ds.get_batch(rows) -> (x (B, *shape) float32, y (B,) int64)``; ``len(ds) == len(source)``.
    Only the rows asked for are read (the labeled rows and the unlabeled subset, however large
    the source).

    Args:
        source: an ``"inputs"`` row source.
        mean, std: per-channel (images) or per-feature (vectors) statistics: uint8 sources give
            ``(x / 255 - mean) / std`` (None: ``x / 255``); float sources are taken as already
            normalised (mean/std ignored).
        targets: labels as class indices: a ``(rows, labels)`` pair of int arrays (rows distinct),
            or an int array of length ``len(source)``; rows without a label give ``y = -1``.
        on_unreadable: what a row that cannot be read (an image file that became unreadable)
            does: ``"skip"`` (default) drops it from the batch and records it in :attr:`skipped`;
            ``"error"`` raises :class:`UnreadableRowsError` naming the files.
            :meth:`drop_unreadable` finds such rows up front.

    Raises :class:`SourceError` when the targets are malformed.
    """

    def __init__(self, source: RowSource, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, targets=None, *, on_unreadable: str = "skip"):
        if on_unreadable not in ON_UNREADABLE:
            raise SourceError(f"on_unreadable must be one of {ON_UNREADABLE}, got {on_unreadable!r}")
        self.on_unreadable = on_unreadable
        self._skipped: Dict[int, Dict[str, Union[str, int]]] = {}
        if source.kind != "inputs":
            raise SourceError(f"a {source.kind!r} source holds no inputs to train on")
        self.source = source
        self.sample_shape = tuple(source.sample_shape)
        self._uint8 = source.dtype == "uint8"
        c = self.sample_shape[0] if self.sample_shape else 1
        try:
            m, sd = channel_constants(mean, std, c)
            self._scale, self._shift = uint8_scale_shift(m.tolist(), sd.tolist(), self.sample_shape or (1,), batch=True)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        self.mean, self.std = tuple(m.tolist()), tuple(sd.tolist())
        self._label_rows, self._labels, self._full = None, None, None
        if targets is not None:
            self.set_targets(targets)

    def set_targets(self, targets) -> None:
        """Replace the labels (see the class docstring)."""
        if isinstance(targets, tuple) and len(targets) == 2:
            rows, labels = (np.asarray(t, dtype=np.int64).reshape(-1) for t in targets)
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
            pos = np.minimum(np.searchsorted(self._label_rows, rows), self._label_rows.size - 1)
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

    @property
    def skipped(self) -> List[Dict[str, Union[str, int]]]:
        """The rows this view could not read: ``[{"id", "row", "error"}, ...]`` in row order."""
        return [self._skipped[r] for r in sorted(self._skipped)]

    @property
    def unreadable_rows(self) -> np.ndarray:
        """Sorted int64 rows known to be unreadable (see :attr:`skipped`)."""
        return np.asarray(sorted(self._skipped), dtype=np.int64)

    def _record(self, row: int, error: str) -> None:
        self._skipped.setdefault(int(row), {"id": self.source.id_of(int(row)), "row": int(row), "error": error})

    def _refuse(self, rows: Sequence[int]) -> None:
        bad = [self._skipped[int(r)] for r in rows]
        files = getattr(self.source, "files", None)
        paths = [files[int(r)] if files is not None else str(self._skipped[int(r)]["id"]) for r in rows]
        raise UnreadableRowsError(f"cannot read {len(bad)} training sample(s) (on_unreadable='error'): "
                                  + "; ".join(f"{b['id']}: {b['error']}" for b in bad[:5])
                                  + (f" ... ({len(bad)} in all)" if len(bad) > 5 else ""), paths=paths)

    def drop_unreadable(self, rows: Sequence[int], *, workers: Optional[int] = None,
                        progress: bool = False) -> np.ndarray:
        """``rows`` (int64, order kept) without those that cannot be read, found by decoding
        each file once (image folders, in :func:`~tavaal.data.sources.images.decode_workers`
        processes) and every label mask (:class:`MaskSourceDataset`); they are recorded in
        :attr:`skipped`. Other sources lose no row. Raises :class:`SourceError` listing them
        under ``on_unreadable="error"``."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        unchecked = np.setdiff1d(np.unique(rows), self.unreadable_rows)
        if isinstance(self.source, ImageFolderSource) and unchecked.size:
            for ident, reason in find_unreadable(self.source, unchecked, workers=workers, progress=progress):
                self._record(int(self.source.rows_of([ident])[0]), reason)
        self._check_targets(np.setdiff1d(unchecked, self.unreadable_rows))
        return self._drop_known(rows)

    def _drop_known(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` without the rows known to be unreadable (refused under "error")."""
        bad = np.isin(rows, self.unreadable_rows)
        if bad.any() and self.on_unreadable == "error":
            self._refuse(np.unique(rows[bad]))
        return rows[~bad]

    def _check_targets(self, rows: np.ndarray) -> List[int]:
        """Rows whose targets cannot be read (recorded); class labels always can."""
        return []

    def get_batch(self, rows) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised inputs and targets of ``rows`` (any order, repeats allowed). Unreadable
        rows are dropped (the batch is then shorter) and recorded under
        ``on_unreadable="skip"``; :class:`SourceError` under "error"."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self._skipped:
            rows = self._drop_known(rows)
        skipped_before = len(self.source.skipped)
        got, x = self.source.read_available(rows)
        if got.size != rows.size:
            reasons = {b["id"]: b["error"] for b in self.source.skipped[skipped_before:]}
            lost = np.setdiff1d(rows, got)
            for r in lost:
                self._record(int(r), reasons.get(self.source.id_of(int(r)), "could not be read"))
            if self.on_unreadable == "error":
                self._refuse(lost)
        if self.on_unreadable == "skip":
            bad = self._check_targets(np.unique(got))
            if bad:
                keep = ~np.isin(got, bad)
                got, x = got[keep], x[torch.from_numpy(keep)]
        return self.normalize(x), self.targets_of(got)

    def targets_of(self, rows: np.ndarray) -> torch.Tensor:
        """Targets of ``rows`` as a tensor: int64 class indices (B,) here, -1 where unlabeled."""
        return torch.from_numpy(self.labels_of(rows))

    def __getitem__(self, row: int):
        """``(x, y)`` of one row: y an int class index, or a (H, W) mask tensor."""
        x, y = self.get_batch([int(row)])
        if x.shape[0] == 0:
            raise SourceError(f"row {int(row)} ({self._skipped[int(row)]['id']}) cannot be read: "
                              f"{self._skipped[int(row)]['error']} (leave it out with drop_unreadable)")
        return x[0], (y[0] if y.dim() > 1 else int(y[0]))

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
            class indices decoded with :func:`tavaal.data.imagefiles.read_mask` through
            ``lookup`` and resized (nearest) to the source's (H, W). Rows without a mask give a
            mask of ``ignore_index`` everywhere.
        lookup: mask value -> class table (256 entries, -1 = not allowed), e.g.
            ``identity_lookup(K)``.

    Masks are read lazily, one file per labeled row and batch (nothing is cached). Raises
    :class:`SourceError` when a mask cannot be decoded or holds values outside the lookup.
    """

    def __init__(self, source: RowSource, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, *, masks: Dict[int, Union[str, os.PathLike]],
                 lookup: np.ndarray, ignore_index: int = 255, on_unreadable: str = "skip"):
        super().__init__(source, mean, std, on_unreadable=on_unreadable)
        if len(self.sample_shape) != 3:
            raise SourceError(f"mask targets need an image source of shape (C, H, W), got {self.sample_shape}")
        n = len(source)
        self.masks = {int(r): Path(f) for r, f in masks.items()}
        bad = [r for r in self.masks if not 0 <= r < n]
        if bad:
            raise SourceError(f"mask rows must lie in [0, {n}), got {sorted(bad)[:20]}")
        self.lookup = np.asarray(lookup, dtype=np.int16)
        self.ignore_index = int(ignore_index)
        self._hw = tuple(int(s) for s in self.sample_shape[1:])
        self._masks_ok: set = set()

    def labels_of(self, rows: np.ndarray) -> np.ndarray:
        raise SourceError("a MaskSourceDataset has per-pixel masks, not one class per row (use get_batch)")

    def mask_of(self, row: int) -> torch.Tensor:
        """int64 (H, W) labels of ``row`` (all ``ignore_index`` when it has no mask)."""
        path = self.masks.get(int(row))
        if path is None:
            return torch.full(self._hw, self.ignore_index, dtype=torch.int64)
        try:
            return read_mask(path, self.lookup, size=self._hw, ignore_index=self.ignore_index).to(torch.int64)
        except CorruptDatasetError as exc:
            raise UnreadableRowsError(str(exc), paths=[str(path)]) from None

    def targets_of(self, rows: np.ndarray) -> torch.Tensor:
        """Masks of ``rows``: int64 (B, H, W), ``ignore_index`` where unlabeled."""
        if len(rows) == 0:
            return torch.empty((0,) + self._hw, dtype=torch.int64)
        return torch.stack([self.mask_of(int(r)) for r in rows])

    def _check_targets(self, rows: np.ndarray) -> List[int]:
        """Rows whose mask file cannot be decoded (recorded); each mask is checked once."""
        bad = []
        for r in map(int, rows):
            if r in self._masks_ok or r not in self.masks:
                continue
            try:
                self.mask_of(r)
                self._masks_ok.add(r)
            except SourceError as exc:
                self._record(r, str(exc))
                bad.append(r)
        return bad

    def __repr__(self) -> str:
        return f"MaskSourceDataset({self.source.describe()}, {len(self.masks)} masks)"


class ItemwiseView(torch.utils.data.Dataset):
    """A training view read one item at a time: ``ds[i] -> view[i]``, ``len(ds) == len(view)``,
    and no ``get_batch``, so training iterates it with a torch ``DataLoader`` (one decode and
    one augmentation draw per sample, optionally in worker processes) -- how the class-folder
    data sets are read. ``source``, ``targets``, ``mean`` and ``std`` are the view's."""

    def __init__(self, view: SourceDataset):
        self.view = view
        self.source, self.targets, self.mean, self.std = view.source, view.targets, view.mean, view.std

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, index: int):
        return self.view[int(index)]

    def __repr__(self) -> str:
        return f"ItemwiseView({self.view!r})"
