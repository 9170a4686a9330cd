"""Image folders as row sources: every image file under a root, decoded to one (C, H, W)."""
from __future__ import annotations

import contextlib
import csv
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ...rundir import atomic_write_bytes
from ..errors import CorruptDatasetError
from ..imagefiles import IMAGE_EXTENSIONS, decode_image, image_mode, is_image_file
from .base import Batch, RowSource, SourceError, prefetch

__all__ = ["ImageFolderSource", "list_image_files", "choose_image_shape", "ImageShapeChoice", "find_unreadable",
           "decode_workers", "DECODE_WORKERS_ENV", "check_channels", "write_unreadable", "read_unreadable"]


class _ImageRows(torch.utils.data.Dataset):
    """DataLoader dataset whose items are whole batches: ``rows -> (rows, tensor, skipped)``."""

    def __init__(self, files: List[str], shape: Tuple[int, int, int], plan: List[np.ndarray], ids: List[str]):
        self.files, self.shape, self.plan, self.ids = files, shape, plan, ids

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, k):
        good, tensors, skipped = [], [], []
        for row in self.plan[k]:
            try:
                tensors.append(decode_image(self.files[int(row)], self.shape[1:], self.shape[0]))
                good.append(int(row))
            except Exception as exc:  # noqa: BLE001 - any decode failure is a skipped image
                skipped.append({"id": self.ids[int(row)], "error": f"{type(exc).__name__}: {exc}"})
        x = torch.stack(tensors) if tensors else torch.empty((0,) + self.shape, dtype=torch.uint8)
        return np.asarray(good, dtype=np.int64), x, skipped


@dataclass(frozen=True)
class ImageShapeChoice:
    """The (C, H, W) an image folder is decoded to and how it was chosen.

    ``sampled``: files whose header was read (all, or a seeded sample of a large folder);
    ``differ``: how many of those have another channel count or size (they are converted and
    resized by the decoder); ``unreadable``: sampled files whose header could not be read;
    ``given``: the shape was given (``--image-shape``), not chosen."""

    shape: Tuple[int, int, int]
    sampled: int
    differ: int
    unreadable: int
    given: bool

    def describe(self) -> str:
        """One line for the user, e.g. "images decoded to 3x28x28 (C x H x W; the most common of
        400 sampled files); 12 of them differ and are converted/resized"."""
        c, h, w = self.shape
        how = "as given" if self.given else (f"the most common of {self.sampled} sampled files" if self.sampled
                                             else "no readable image found: default")
        return (f"images decoded to {c}x{h}x{w} (C x H x W; {how}); {self.differ} of {self.sampled} sampled files "
                f"differ and are converted/resized (plain bilinear resize, aspect ratio not kept)"
                + (f"; {self.unreadable} unreadable" if self.unreadable else ""))


def choose_image_shape(files: Sequence[os.PathLike], image_shape: Optional[Sequence[int]] = None, *,
                       sample: int = 2000, seed: int = 0) -> ImageShapeChoice:
    """Decide the (C, H, W) of an image folder out loud: the most common channel count (1 for
    grayscale modes, 3 for the rest: :func:`tavaal.data.imagefiles.image_mode`) and the most
    common (H, W) among the headers of ``files`` (a seeded sample of ``sample`` files when there
    are more; ties go to the first in path order), or ``image_shape`` when given. Counts how
    many sampled files differ from the result. An empty or fully unreadable folder gives
    (3, 32, 32). Raises :class:`SourceError` for a given shape that is not (C, H, W), C = 1 or 3."""
    picked = [str(f) for f in files]
    if len(picked) > sample:
        picked = [picked[i] for i in np.sort(np.random.default_rng(seed).choice(len(picked), size=sample,
                                                                                  replace=False))]
    shapes, unreadable = [], 0
    for f in picked:
        try:
            shapes.append(image_mode(f))
        except CorruptDatasetError:
            unreadable += 1
    given = image_shape is not None
    if given:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
            raise SourceError(f"--image-shape must be C,H,W with C = 1 (grayscale) or 3 (RGB), got {shape}")
    elif shapes:
        channels = Counter(s[0] for s in shapes).most_common(1)[0][0]
        shape = (channels,) + tuple(Counter(s[1:] for s in shapes).most_common(1)[0][0])
    else:
        shape = (3, 32, 32)
    return ImageShapeChoice(shape, len(picked), sum(1 for s in shapes if s != shape), unreadable, given)


def list_image_files(root: os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[str]:
    """The layout rule of image folders: every visible image file under ``root`` (recursively;
    files and folders whose name starts with "." are skipped; extensions of any case), as
    ``os.path.join`` path strings sorted by that string."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [os.path.join(dirpath, name) for name in filenames if is_image_file(name, extensions)]
    return sorted(files)


class ImageFolderSource(RowSource):
    """Image files under ``root`` decoded with :func:`tavaal.data.imagefiles.decode_image` to
    ``image_shape`` = (C, H, W) uint8 (C = 1: grayscale, 3: RGB; plain bilinear resize).

    Rows are, by default, every image of :func:`list_image_files` (recursive, sorted by path);
    ``files`` gives them instead (paths under ``root``, absolute or relative to it, in that row
    order). ``exclude`` (ids or paths, e.g. the unreadable files found by
    :func:`find_unreadable`) leaves files out; the rows are renumbered over what remains. Ids are
    the files' POSIX paths relative to ``root`` (``rows_of`` also accepts root-joined and
    absolute paths). ``image_shape`` None: the most common shape of the files
    (:func:`choose_image_shape`). ``cache=True`` keeps decoded images in memory (direct reads
    only, not DataLoader workers). Unreadable files are dropped from what a read returns and
    listed in ``skipped`` (``{"id", "error"}``)."""

    dtype = "uint8"

    def __init__(self, root: os.PathLike, image_shape: Optional[Sequence[int]] = None, *,
                 files: Optional[Sequence[os.PathLike]] = None, exclude: Iterable = (), cache: bool = False):
        super().__init__()
        self.path = Path(root)
        if not self.path.is_dir():
            raise SourceError(f"pool {self.path} is not a directory")
        root_text = str(self.path)
        listed = list_image_files(self.path) if files is None else [
            str(f) if Path(f).is_absolute() else os.path.join(root_text, str(f)) for f in files]
        ids = [Path(os.path.relpath(f, root_text)).as_posix() for f in listed]
        self._lookup: Optional[Dict[str, int]] = None
        self.files, self.ids = listed, ids
        dropped = {self._row_of_id(e) for e in exclude} - {None}  # ids no longer in the folder are ignored
        self.excluded: List[str] = [ids[r] for r in sorted(dropped)]
        if dropped:
            self.files = [f for r, f in enumerate(listed) if r not in dropped]
            self.ids = [i for r, i in enumerate(ids) if r not in dropped]
            self._lookup = None
        if image_shape is None:
            image_shape = choose_image_shape(self.files).shape
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or image_shape[0] not in (1, 3):
            raise SourceError(f"an image folder pool needs a (C, H, W) input shape with C = 1 or 3, got {image_shape}")
        self.sample_shape = image_shape
        self._cache: Optional[Dict[int, torch.Tensor]] = {} if cache else None

    def __len__(self) -> int:
        return len(self.files)

    def id_of(self, row: int) -> str:
        return self.ids[int(row)]

    def _row_of_id(self, ident) -> Optional[int]:
        if not isinstance(ident, (str, os.PathLike)):
            return None
        if self._lookup is None:
            self._lookup = {ident: row for row, ident in enumerate(self.ids)}
        p = Path(ident)
        row = self._lookup.get(p.as_posix())
        if row is None:
            for base in (self.path, self.path.resolve()):
                if p.is_absolute() == base.is_absolute() and p.is_relative_to(base):
                    row = self._lookup.get(p.relative_to(base).as_posix())
                    if row is not None:
                        break
        return row

    def _read_available(self, rows: np.ndarray):
        if self._cache is not None and rows.size and all(int(r) in self._cache for r in rows):
            return rows, torch.stack([self._cache[int(r)] for r in rows])
        good, x, skipped = _ImageRows(self.files, self.sample_shape, [rows], self.ids)[0]
        self.skipped.extend(skipped)
        if self._cache is not None:
            self._cache.update(zip(good.tolist(), x))
        return good, x

    def _read_plan(self, plan: Iterator[np.ndarray], prefetch_depth: int, num_workers: int) -> Iterator[Batch]:
        """Decodes in ``num_workers`` DataLoader worker processes (0: a background thread).
        Corrupt images are dropped from their batch (so a batch may be shorter, or empty) and
        appended to ``self.skipped``."""
        ds = _ImageRows(self.files, self.sample_shape, list(plan), self.ids)
        if num_workers > 0:
            source = iter(torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=num_workers,
                                                      prefetch_factor=max(1, prefetch_depth), persistent_workers=False))
        else:
            source = prefetch((ds[k] for k in range(len(ds))), prefetch_depth)

        def gen():
            for good, x, skipped in source:
                self.skipped.extend(skipped)
                yield np.asarray(good, dtype=np.int64), x
        return gen()


DECODE_WORKERS_ENV = "TAVAAL_DECODE_WORKERS"


def decode_workers(requested: Optional[int] = None) -> int:
    """How many worker processes decode images: ``requested`` when given, else
    ``$TAVAAL_DECODE_WORKERS``, else one per usable CPU core but one (the main process keeps
    a core), at least 0 (0: decode in the calling process). Raises ValueError for a negative or
    non-integer value."""
    value = requested if requested is not None else os.environ.get(DECODE_WORKERS_ENV)
    if value is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        return max(0, cores - 1)
    try:
        workers = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"decode workers must be an integer >= 0, got {value!r} "
                         f"(from {'the argument' if requested is not None else '$' + DECODE_WORKERS_ENV})") from None
    if workers < 0 or (isinstance(value, float) and value != workers):
        raise ValueError(f"decode workers must be an integer >= 0, got {value!r}")
    return workers


def _check_files(paths: Sequence[str], channels: int) -> List[Optional[str]]:
    """Worker task: the reason each file cannot be decoded (None: readable)."""
    reasons: List[Optional[str]] = []
    for path in paths:
        try:
            decode_image(path, None, channels)
            reasons.append(None)
        except CorruptDatasetError as exc:
            cause = exc.__cause__
            reasons.append(f"{type(cause).__name__}: {cause}" if cause is not None else str(exc))
    return reasons


def find_unreadable(source: "ImageFolderSource", rows: Optional[Sequence[int]] = None, *,
                    workers: Optional[int] = None, progress: bool = True,
                    chunk: int = 32) -> List[Tuple[str, str]]:
    """Decode every file of ``source`` (or the files of ``rows``) once, in
    :func:`decode_workers` worker processes (``workers`` overrides; 0: in this process), with a
    tqdm progress bar when ``progress``. Returns ``[(id, reason), ...]`` of the files that cannot
    be decoded (truncated, empty, not an image), in row order; ``reason`` is the decoder's error,
    e.g. ``"OSError: image file is truncated"``. Nothing is raised for a bad file."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    picked = np.arange(len(source), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    paths = [source.files[int(r)] for r in picked]
    parts = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    channels = int(source.sample_shape[0])
    n_workers = min(decode_workers(workers), len(parts))
    reasons: List[Optional[str]] = []
    with (tqdm(total=len(paths), desc="checking images", unit="img", disable=not progress, leave=False) as bar,
          (ProcessPoolExecutor(max_workers=n_workers) if n_workers > 0 else contextlib.nullcontext()) as pool):
        mapper = pool.map if n_workers > 0 else map
        for got in mapper(_check_files, parts, [channels] * len(parts)):
            reasons.extend(got)
            bar.update(len(got))
    return [(source.ids[int(r)], reason) for r, reason in zip(picked, reasons) if reason is not None]


def check_channels(source: RowSource, channels: int, what: str = "the model") -> None:
    """Raise :class:`SourceError` naming ``--image-shape`` when ``what`` takes ``channels``-channel
    images but ``source`` yields another number (e.g. a grayscale model on a pool decoded to
    RGB). Sources of other kinds than image folders are checked on ``sample_shape[0]`` too."""
    have = int(source.sample_shape[0]) if source.sample_shape else 1
    if have != int(channels):
        size = ",".join(str(int(s)) for s in source.sample_shape[1:]) or "H,W"
        raise SourceError(f"{what} takes {int(channels)}-channel inputs but the pool {source.path} gives {have}-channel "
                          f"samples {tuple(source.sample_shape)}; decode the images to match with "
                          f"--image-shape {int(channels)},{size} (1 = grayscale, 3 = RGB)")


UNREADABLE_HEADER = ("id", "reason")


def write_unreadable(path: os.PathLike, entries: Sequence[Tuple[str, str]]) -> None:
    """Write ``[(id, reason), ...]`` as a CSV with the header ``id,reason`` (UTF-8), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UNREADABLE_HEADER)
    writer.writerows((str(i), str(r)) for i, r in entries)
    atomic_write_bytes(Path(path), buffer.getvalue().encode("utf-8"))


def read_unreadable(path: os.PathLike) -> List[Tuple[str, str]]:
    """The ``(id, reason)`` rows of a file written by :func:`write_unreadable` (none if it does
    not exist). Raises :class:`SourceError` for a file without the ``id,reason`` header."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(c.strip() for c in rows[0][:2]) != UNREADABLE_HEADER:
        raise SourceError(f"{path}: expected a CSV with the header 'id,reason'")
    return [(r[0], r[1] if len(r) > 1 else "") for r in rows[1:] if r and r[0]]
