"""SVHN (cropped digits, format 2): ``train_32x32.mat`` and ``test_32x32.mat``.

``X`` is (32, 32, 3, N) uint8, ``y`` is (N, 1) with label 10 meaning digit 0. The official
code uses the ``train`` split only (no ``extra``) and no normalisation / augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import DatasetBundle
from ..defaults import SVHN_MEAN, SVHN_STD
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ._common import array_bundle, data_root

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def _find(root: Path) -> Path:
    for cand in (root, root / "svhn", root / "SVHN"):
        if all((cand / f).is_file() for f in SVHN_FILES):
            return cand
    missing = [f for f in SVHN_FILES if not (root / f).is_file()]
    raise DatasetNotFoundError(
        f"svhn: expected {SVHN_FILES[0]} and {SVHN_FILES[1]} in {root} (or {root / 'svhn'}); "
        f"missing {', '.join(missing)} (download them from {SVHN_URL}, 'Format 2: Cropped Digits')",
        [root / f for f in missing])


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 in 0..9) from one ``*_32x32.mat``."""
    try:
        from scipy.io import loadmat
    except ImportError as exc:  # pragma: no cover - scipy is a dev dependency
        raise ImportError("reading SVHN needs scipy (pip install scipy)") from exc
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... on bad files
        raise CorruptDatasetError(
            f"{path}: cannot read as a MATLAB .mat file ({type(exc).__name__}: {exc}); "
            "re-download it", path) from exc
    if "X" not in mat or "y" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise CorruptDatasetError(f"{path}: expected variables 'X' and 'y', found {keys}", path)
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise CorruptDatasetError(f"{path}: 'X' must have shape (32, 32, 3, N), got {x.shape}", path)
    if x.shape[3] != y.shape[0]:
        raise CorruptDatasetError(f"{path}: {x.shape[3]} images but {y.shape[0]} labels", path)
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 10):
        raise CorruptDatasetError(f"{path}: labels must be in 0..10 (10 = digit 0), found "
                                  f"[{int(y.min())}, {int(y.max())}]", path)
    y[y == 10] = 0
    x = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False)
    return x, y


def load_svhn(data_dir=None, seed: int = 0, *, normalization: str = "default", mean=None,
              std=None, augment="default") -> DatasetBundle:
    """SVHN train (73,257) / test (26,032); default normalisation the usual SVHN statistics;
    default augmentation none (as the official code; ``augment="crop"`` for crops)."""
    folder = _find(data_root(data_dir))
    x_tr, y_tr = read_svhn_mat(folder / SVHN_FILES[0])
    x_te, y_te = read_svhn_mat(folder / SVHN_FILES[1])
    return array_bundle("svhn", x_tr, y_tr, x_te, y_te, 10, channels=3,
                        normalization=normalization, mean=mean, std=std, augment=augment,
                        default_stats=(SVHN_MEAN, SVHN_STD), default_augment="none",
                        classes=[str(i) for i in range(10)], info={"source": str(folder)})
