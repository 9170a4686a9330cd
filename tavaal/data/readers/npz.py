"""User data from one ``.npz`` file: arrays ``X``, ``y`` and optionally ``X_test``, ``y_test``.

``X`` is (N, D) vectors or images (N, H, W), (N, C, H, W) or (N, H, W, C) (``layout``
option: ``"auto"``, ``"NCHW"``, ``"NHWC"``). uint8 images are scaled to [0, 1] (kept as
uint8 in memory); everything is standardised with the training statistics (per channel for
images, per feature for vectors). Without ``X_test`` a seeded stratified split holds out
``test_fraction`` of ``X``. Integer labels >= 0 are kept as they are (``num_classes`` =
max + 1); other labels (negative, strings) are mapped to 0..K-1 in sorted order
(``bundle.classes`` holds the originals)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..bundle import DatasetBundle
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ..sources import ArraySource, SourceError
from ._common import array_bundle, stratified_split

LAYOUTS = ("auto", "NCHW", "NHWC")


def read_samples(path: Path, key: str, layout: str) -> np.ndarray:
    """Member ``key`` of the archive, read through the one ``.npz`` reader
    (:class:`~tavaal.data.sources.ArraySource`) with its layout rule: images channels-first,
    uint8 kept, other numbers as float32 (float16 as stored). Raises
    :class:`CorruptDatasetError` naming the file, ValueError for an ambiguous layout."""
    try:
        source = ArraySource(path, key=key, dtype="float32", layout=layout)
        return source.read_rows(np.arange(len(source))).numpy()
    except SourceError as exc:
        if "channel axis" in str(exc):
            raise ValueError(f"npz: {exc}") from None
        raise CorruptDatasetError(str(exc), path) from None


def _resolve_path(data_dir, path) -> Path:
    p = path if path is not None else data_dir
    if p is None:
        raise DatasetNotFoundError("npz: pass the file as data_dir='/path/data.npz' or "
                                   "path='/path/data.npz' (arrays X, y [, X_test, y_test])")
    p = Path(p).expanduser().resolve()
    if p.is_dir():
        cands = sorted(p.glob("*.npz"))
        if len(cands) == 1:
            return cands[0]
        raise DatasetNotFoundError(
            f"npz: expected a .npz file with arrays X, y [, X_test, y_test]; {p} is a folder "
            f"holding {len(cands)} .npz files -- pass the file itself", [str(p)])
    if not p.is_file():
        raise DatasetNotFoundError(
            f"npz: expected the file {p} with arrays X, y [, X_test, y_test] (np.savez)", [str(p)])
    return p


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The label arrays (``y`` [, ``y_test``]) and the headers of the sample arrays of a user
    archive: ``{"y": ..., "X": (shape, dtype), ...}``. Raises :class:`CorruptDatasetError` for
    an unreadable archive or missing arrays."""
    try:
        with np.load(path, allow_pickle=False, mmap_mode="r") as z:
            names = list(z.files)
            arrays = {k: z[k] for k in names if k in ("y", "y_test")}
        headers = {k: (source.stored_shape, source.stored_dtype) for k in names if k in ("X", "X_test")
                   for source in [ArraySource(path, key=k, dtype="float32")]}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CorruptDatasetError(
            f"{path}: cannot read as a .npz archive of plain arrays ({type(exc).__name__}: {exc})",
            path) from exc
    missing = [k for k in ("X", "y") if k not in names]
    if missing:
        raise CorruptDatasetError(f"{path}: missing array(s) {missing}; found {sorted(names)} "
                                  "(expected X, y [, X_test, y_test])", path)
    if ("X_test" in names) != ("y_test" in names):
        raise CorruptDatasetError(f"{path}: X_test and y_test must come together; found "
                                  f"{sorted(names)}", path)
    arrays.update(headers)
    return arrays


def load_npz(data_dir=None, seed: int = 0, *, path=None, layout: str = "auto",
             test_fraction: float = 0.2, normalization: str = "computed", mean=None, std=None,
             augment="default", padding: int = 4) -> DatasetBundle:
    """Load a user ``.npz`` (see module docstring); default augmentation none."""
    if layout not in LAYOUTS:
        raise ValueError(f"npz: layout must be one of {LAYOUTS}, got {layout!r}")
    file = _resolve_path(data_dir, path)
    a = read_npz(file)
    has_test = "X_test" in a
    pairs = (("X", "y"), ("X_test", "y_test")) if has_test else (("X", "y"),)
    for key, ykey in pairs:
        (shape, dtype), yy = a[key], a[ykey]
        if yy.ndim != 1:
            raise CorruptDatasetError(f"{file}: {ykey} must be 1-D, got shape {yy.shape}", file)
        if len(shape) < 2 or shape[0] != yy.shape[0]:
            raise CorruptDatasetError(f"{file}: {key} has shape {shape} but {ykey} has "
                                      f"{yy.shape[0]} labels", file)
        if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise CorruptDatasetError(f"{file}: {key} must be numeric, got dtype {dtype}", file)
    samples = {key: read_samples(file, key, layout) for key, _ in pairs}
    for key, xx in samples.items():
        if np.issubdtype(xx.dtype, np.floating) and not np.isfinite(xx).all():
            raise CorruptDatasetError(f"{file}: {key} contains NaN or infinite values", file)
    x, xt, y, yt = samples["X"], samples.get("X_test"), a["y"], a.get("y_test")
    if x.shape[0] == 0:
        raise CorruptDatasetError(f"{file}: X is empty", file)
    # labels: integers >= 0 as they are, anything else mapped to 0..K-1 in sorted order
    all_y = y if yt is None else np.concatenate([y, yt])
    classes = None
    integral = np.issubdtype(all_y.dtype, np.integer) or (np.issubdtype(all_y.dtype, np.floating)
                                                          and np.all(all_y == np.round(all_y)))
    if integral and all_y.min() >= 0:
        num_classes = int(all_y.max()) + 1
        codes = all_y.astype(np.int64)
    else:
        uniq = np.unique(all_y)
        classes = tuple(str(u) for u in uniq)
        num_classes = len(uniq)
        codes = np.searchsorted(uniq, all_y).astype(np.int64)
    y, yt = codes[:len(y)], (codes[len(y):] if yt is not None else None)
    if xt is not None and xt.shape[1:] != x.shape[1:]:
        raise CorruptDatasetError(f"{file}: X_test samples have shape {xt.shape[1:]} but X "
                                  f"samples {x.shape[1:]}", file)
    if xt is None:
        tr, te = stratified_split(y, test_fraction, seed)
        x, xt, y, yt = x[tr], x[te], y[tr], y[te]
    if not (x.ndim >= 3 and x.dtype == np.uint8):  # uint8 images stay uint8, normalised per item
        x, xt = x.astype(np.float32), xt.astype(np.float32)
    return array_bundle("npz", x, y, xt, yt, num_classes, channels=x.shape[1], normalization=normalization,
                        mean=mean, std=std, augment=augment, padding=padding, classes=classes,
                        info={"source": str(file), "has_test": has_test,
                              "test_fraction": None if has_test else test_fraction})
