"""CIFAR-10 / CIFAR-100 (python-pickle version) and the imbalanced CIFAR-10 of the paper.

Layouts (``data_dir`` may be the parent folder or the extracted folder itself)::

    <data_dir>/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch [, batches.meta]
    <data_dir>/cifar-100-python/train, test [, meta]

Images are kept as uint8 (N, 3, 32, 32) and normalised per item (50k float32 images would
take 600 MB).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bundle import DatasetBundle
from ..defaults import CIFAR10_MEAN, CIFAR10_STD
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ._common import array_bundle, check_labels, data_root

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
# name -> (folder, training files, test file, archive, files as listed in messages, meta file)
_LAYOUTS = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                "cifar-10-python.tar.gz", "data_batch_1..data_batch_5 and test_batch", "batches.meta"),
    "cifar100": ("cifar-100-python", ["train"], "test", "cifar-100-python.tar.gz", "train and test", "meta"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler limited to what the CIFAR files contain (dicts, lists, bytes, numpy
    arrays): a crafted file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("builtins", "bytes"), ("builtins", "bytearray"), ("__builtin__", "bytes"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:
        raise CorruptDatasetError(
            f"{path}: cannot unpickle ({type(exc).__name__}: {exc}); the file is truncated or "
            "not a CIFAR python-pickle batch -- re-extract it", path) from exc
    if not isinstance(obj, dict):
        raise CorruptDatasetError(f"{path}: expected a pickled dict, got {type(obj).__name__}", path)
    return obj


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    if b"data" not in d or label_key not in d:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in d)
        raise CorruptDatasetError(
            f"{path}: missing key {'data' if b'data' not in d else label_key.decode()!r} "
            f"(found keys {keys})", path)
    data, labels = np.asarray(d[b"data"]), np.asarray(d[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptDatasetError(
            f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {data.dtype} "
            f"{data.shape}", path)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise CorruptDatasetError(
            f"{path}: {data.shape[0]} images but labels of shape {labels.shape}", path)
    if not np.issubdtype(labels.dtype, np.integer):
        raise CorruptDatasetError(f"{path}: labels must be integers, got {labels.dtype}", path)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _find_folder(root: Path, name: str) -> Path:
    folder, train_files, test_file, archive, listing, _ = _LAYOUTS[name]
    files = train_files + [test_file]
    for cand in (root / folder, root):
        if all((cand / f).is_file() for f in files):
            return cand
    folder_path = root / folder
    msg = (f"{name}: expected the python-pickle folder {folder_path} with {listing} "
           f"(download {archive} from {CIFAR_URL} and extract it into {root})")
    missing = [folder_path / f for f in files if not (folder_path / f).is_file()]
    if folder_path.is_dir():
        msg += f"; missing: {', '.join(m.name for m in missing)}"
    elif (root / archive).is_file():
        msg += f"; found {root / archive} -- extract it with: tar xzf {root / archive} -C {root}"
    raise DatasetNotFoundError(msg, missing)


def _meta_names(path: Path, key: bytes) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        d = _load_pickle(path)
        return [n.decode() if isinstance(n, bytes) else str(n) for n in d[key]]
    except (CorruptDatasetError, KeyError, TypeError):
        return None


def _read(data_dir, name: str, label_key: bytes, num_classes: int):
    _, train_files, test_file, _, _, meta = _LAYOUTS[name]
    folder = _find_folder(data_root(data_dir), name)
    parts = [_read_batch(folder / f, label_key) for f in train_files]
    x_tr, y_tr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_batch(folder / test_file, label_key)
    check_labels(y_tr, num_classes, folder / train_files[0])
    check_labels(y_te, num_classes, folder / test_file)
    classes = _meta_names(folder / meta, label_key.replace(b"labels", b"label_names"))
    return x_tr, y_tr, x_te, y_te, classes, folder


def read_cifar10(data_dir=None):
    """Raw CIFAR-10: ``(x_train uint8 (50000,3,32,32), y_train, x_test, y_test, classes, folder)``."""
    return _read(data_dir, "cifar10", b"labels", 10)


def read_cifar100(data_dir=None, label_type: str = "fine"):
    """Raw CIFAR-100 with ``fine`` (100) or ``coarse`` (20) labels."""
    if label_type not in ("fine", "coarse"):
        raise ValueError(f"cifar100: label_type must be 'fine' or 'coarse', got {label_type!r}")
    return _read(data_dir, "cifar100", f"{label_type}_labels".encode(), 100 if label_type == "fine" else 20)


def _bundle(name, x_tr, y_tr, x_te, y_te, num_classes, classes, info, **options) -> DatasetBundle:
    """CIFAR images as a bundle: CIFAR-10 statistics and crop + flip by default (``options``:
    normalization, mean, std, augment)."""
    return array_bundle(name, x_tr, y_tr, x_te, y_te, num_classes, channels=3,
                        default_stats=(CIFAR10_MEAN, CIFAR10_STD), default_augment="crop+flip",
                        classes=classes, info=info, **options)


def load_cifar10(data_dir=None, seed: int = 0, *, normalization: str = "default", mean=None,
                 std=None, augment="default") -> DatasetBundle:
    """CIFAR-10, 50,000 / 10,000 images; default normalisation CIFAR-10 mean/std;
    default augmentation 32x32 crop of the 4-px zero-padded image + horizontal flip."""
    x_tr, y_tr, x_te, y_te, classes, folder = read_cifar10(data_dir)
    return _bundle("cifar10", x_tr, y_tr, x_te, y_te, 10, classes, {"source": str(folder)},
                   normalization=normalization, mean=mean, std=std, augment=augment)


def load_cifar100(data_dir=None, seed: int = 0, *, normalization: str = "default", mean=None,
                  std=None, augment="default", label_type: str = "fine") -> DatasetBundle:
    """CIFAR-100; normalised with the CIFAR-10 statistics by default, as the official code
    (``normalization="computed"`` for CIFAR-100's own); augmentation as CIFAR-10."""
    x_tr, y_tr, x_te, y_te, classes, folder = read_cifar100(data_dir, label_type)
    return _bundle("cifar100", x_tr, y_tr, x_te, y_te, 100 if label_type == "fine" else 20, classes,
                   {"source": str(folder), "label_type": label_type},
                   normalization=normalization, mean=mean, std=std, augment=augment)


def imbalanced_indices(targets: np.ndarray, ratio: float, reduced_classes: Sequence[int],
                       sampling: str, seed: int) -> np.ndarray:
    """Sorted indices keeping ``round(n_c / ratio)`` (>= 1) samples of each reduced class c
    (a seeded random choice, or the first ones in file order) and all of the others."""
    if not ratio >= 1:
        raise ValueError(f"imbalance_ratio must be >= 1, got {ratio}")
    if sampling not in ("random", "first"):
        raise ValueError(f"imbalance_sampling must be 'random' or 'first', got {sampling!r}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        if int(c) in set(int(r) for r in reduced_classes):
            n = max(1, int(round(members.size / ratio)))
            members = members[:n] if sampling == "first" else np.sort(rng.choice(members, n, replace=False))
        keep.append(members)
    return np.sort(np.concatenate(keep)).astype(np.int64)


def load_cifar10_imbalanced(data_dir=None, seed: int = 0, *, imbalance_ratio: float = 10,
                            imbalance_sampling: str = "random",
                            reduced_classes: Sequence[int] = (0, 1, 2, 3, 4),
                            normalization: str = "default", mean=None, std=None,
                            augment="default") -> DatasetBundle:
    """Imbalanced CIFAR-10 (paper §4.3): each of ``reduced_classes`` (the first five) is
    reduced to 1/``imbalance_ratio`` of its images (5000 -> 500 for x10, 50 for x100), chosen
    at random with ``seed`` (``imbalance_sampling="random"``) or the first ones in file
    order (``"first"``, as the official code, which reduces classes 0,2,4,6,8:
    ``reduced_classes=(0, 2, 4, 6, 8)``). The test set stays balanced.
    ``train.source_indices`` maps the kept samples to the original CIFAR-10 training set."""
    x_tr, y_tr, x_te, y_te, classes, folder = read_cifar10(data_dir)
    bad = [c for c in reduced_classes if not 0 <= int(c) < 10]
    if bad:
        raise ValueError(f"cifar10-imb: reduced_classes must be in 0..9, got {bad}")
    keep = imbalanced_indices(y_tr, float(imbalance_ratio), reduced_classes,
                              imbalance_sampling, seed)
    bundle = _bundle("cifar10-imb", x_tr[keep], y_tr[keep], x_te, y_te, 10, classes,
                     {"source": str(folder), "imbalance_ratio": float(imbalance_ratio),
                      "imbalance_sampling": imbalance_sampling, "reduced_classes": [int(c) for c in reduced_classes]},
                     normalization=normalization, mean=mean, std=std, augment=augment)
    bundle.train.source_indices = keep  # type: ignore[attr-defined]
    return bundle
