"""The loop's only contact with the shared row sources (:mod:`tavaal.data.sources`): opening a
pool from a work directory's saved spec, ids <-> rows, normalisation statistics.

Ids: for an image folder, the file's path relative to the pool folder (POSIX separators);
for arrays and sharded pools, the row number as a decimal string.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..data.open import open_source
from ..data.sources import (ImageFolderSource, ImageShapeChoice, RowSource, SourceError, channel_stats,
                            choose_image_shape, find_unreadable)
from .errors import LoopError

__all__ = ["open_pool_spec", "open_pool", "rows_for_ids", "pool_stats", "SourceError", "is_image_folder",
           "image_shape_choice", "unreadable_files"]


def open_pool_spec(spec: Dict, exclude: Iterable[str] = ()) -> RowSource:
    """Open the pool a work directory was initialised with (``spec``: path, key, image_shape)
    without the image files ``exclude`` (ids of unreadable files; rows are numbered over the
    rest). Raises :class:`SourceError` with a clear message if it cannot be opened."""
    image_shape = spec.get("image_shape")
    image_shape = tuple(image_shape) if image_shape else None
    source = open_source(spec["path"], image_shape=image_shape, key=spec.get("key"))
    if source.kind != "inputs":
        raise SourceError(f"pool {spec['path']} holds {source.kind}, not samples: the loop trains on the samples "
                          "themselves (give an image folder, a .npy/.npz of inputs or a sharded pool of inputs)")
    exclude = list(exclude)
    if exclude and is_image_folder(source):
        source = ImageFolderSource(spec["path"], source.sample_shape, exclude=exclude)
    return source


def open_pool(spec: Dict, root=None, exclude: Iterable[str] = (), hint: str = "") -> RowSource:
    """:func:`open_pool_spec`; raises :class:`~tavaal.loop.LoopError` ``cannot open the pool
    [of ROOT]: REASON`` (``root``: the work directory, when it has one; ``hint`` appended)."""
    try:
        return open_pool_spec(spec, exclude)
    except (SourceError, ValueError) as exc:
        where = "" if root is None else f" of {root}"
        raise LoopError(f"cannot open the pool{where}: {exc}{hint}") from None


def image_shape_choice(source: RowSource, image_shape: Optional[Sequence[int]]) -> Optional[ImageShapeChoice]:
    """How the images of an image-folder pool are decoded (the choice its source made: the most
    common channels and size of a seeded sample of headers, or ``image_shape``); None for other
    pools."""
    if not is_image_folder(source):
        return None
    return choose_image_shape(source.files, image_shape)


def unreadable_files(source: RowSource, rows: Optional[Sequence[int]] = None, *, progress: bool = False,
                     workers: Optional[int] = None) -> List[Tuple[str, str]]:
    """``[(id, reason)]`` of the image files of ``source`` (or of ``rows``) that cannot be
    decoded; always empty for array and sharded pools."""
    if not is_image_folder(source):
        return []
    return find_unreadable(source, rows, workers=workers, progress=progress)


def is_image_folder(source: RowSource) -> bool:
    return isinstance(source, ImageFolderSource)


def rows_for_ids(source: RowSource, ids: Sequence[str]) -> Tuple[List[Optional[int]], List[str]]:
    """(row of each id, or None where the pool has no such sample; canonical id of each id or
    the id itself where unknown). Canonical ids: relative POSIX paths / row numbers as text."""
    try:
        rows: List[Optional[int]] = [int(r) for r in source.rows_of(list(ids))]
    except SourceError:
        rows = []
        for ident in ids:
            try:
                rows.append(int(source.rows_of([ident])[0]))
            except SourceError:
                rows.append(None)
    canonical = [str(source.id_of(r)) if r is not None else str(i) for r, i in zip(rows, ids)]
    return rows, canonical


def pool_stats(source: RowSource, max_rows: int, seed: int) -> Tuple[Optional[List[float]], Optional[List[float]]]:
    """Normalisation statistics for a uint8 pool: per-channel mean/std of x / 255 over every row
    (pools of at most ``max_rows``) or a seeded sample of ``max_rows`` rows. Float pools are
    used as stored (taken as already normalised, the scorer's contract): (None, None)."""
    if source.dtype != "uint8":
        return None, None
    mean, std = channel_stats(source, max_rows=max_rows, seed=seed)
    return list(mean), list(std)
