"""MNIST-style IDX files (Fashion-MNIST, MNIST), plain or gzip-compressed.

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each optionally with ``.gz``. Looked for in ``data_dir``,
``data_dir/<name>``, and torchvision's ``data_dir/FashionMNIST/raw`` layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..bundle import DatasetBundle
from ..defaults import FASHIONMNIST_MEAN, FASHIONMNIST_STD, MNIST_MEAN, MNIST_STD
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ._common import array_bundle, check_labels, data_root

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
_SOURCES = {
    "fashionmnist": ("https://github.com/zalandoresearch/fashion-mnist",
                     ("fashionmnist", "fashion-mnist", "FashionMNIST/raw", "FashionMNIST"),
                     (FASHIONMNIST_MEAN, FASHIONMNIST_STD), FASHION_CLASSES),
    "mnist": ("https://yann.lecun.com/exdb/mnist/", ("mnist", "MNIST/raw", "MNIST"),
              (MNIST_MEAN, MNIST_STD), tuple(str(i) for i in range(10))),
}


def read_idx(path: Path, expected_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes (magic ``0x0000 08 <ndim>``)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise CorruptDatasetError(f"{path}: cannot read ({type(exc).__name__}: {exc})", path) from exc
    if len(raw) < 4:
        raise CorruptDatasetError(f"{path}: file too short for an IDX header ({len(raw)} bytes)", path)
    magic = int.from_bytes(raw[:4], "big")
    zero, dtype_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zero != 0 or dtype_code != 0x08 or ndim == 0:
        raise CorruptDatasetError(
            f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x000008{expected_ndim or 1:02x}"
            " for unsigned-byte data)", path)
    if expected_ndim is not None and ndim != expected_ndim:
        raise CorruptDatasetError(
            f"{path}: bad IDX magic number 0x{magic:08x}: {ndim}-D data, expected "
            f"{expected_ndim}-D (magic 0x000008{expected_ndim:02x})", path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDatasetError(f"{path}: truncated IDX header", path)
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise CorruptDatasetError(
            f"{path}: header says shape {tuple(dims)} ({size} bytes of data) but the file holds "
            f"{len(raw) - header} bytes (truncated or wrong file)", path)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _existing(folder: Path, file: str) -> Path | None:
    """``folder/file`` or ``folder/file.gz``, whichever exists first."""
    return next((folder / v for v in (file, file + ".gz") if (folder / v).is_file()), None)


def read_idx_dataset(data_dir, name: str):
    """``(x_train uint8 (N, 1, 28, 28), y_train, x_test, y_test, {file: path})`` of ``name``."""
    url, subdirs, _, _ = _SOURCES[name]
    root = data_root(data_dir)
    for folder in [root] + [root / s for s in subdirs]:
        files = {f: _existing(folder, f) for f in IDX_FILES}
        if all(files.values()):
            break
    else:
        missing = [str(root / (f + "[.gz]")) for f in IDX_FILES if _existing(root, f) is None]
        raise DatasetNotFoundError(
            f"{name}: expected the IDX files {', '.join(f + '[.gz]' for f in IDX_FILES)} in {root} "
            f"(or {root / subdirs[0]}); missing {', '.join(Path(m).name for m in missing)} "
            f"(download them from {url})", missing)
    out = []
    for split in ("train", "t10k"):
        xp, yp = files[f"{split}-images-idx3-ubyte"], files[f"{split}-labels-idx1-ubyte"]
        x, y = read_idx(xp, 3), read_idx(yp, 1).astype(np.int64)
        if x.shape[0] != y.shape[0]:
            raise CorruptDatasetError(f"{xp}: {x.shape[0]} images but {yp} has {y.shape[0]} labels", xp)
        check_labels(y, 10, yp)
        out += [x[:, None].copy(), y]
    return (*out, files)


def _load(name: str, data_dir, normalization, mean, std, augment) -> DatasetBundle:
    x_tr, y_tr, x_te, y_te, files = read_idx_dataset(data_dir, name)
    _, _, stats, classes = _SOURCES[name]
    return array_bundle(name, x_tr, y_tr, x_te, y_te, 10, channels=1, normalization=normalization,
                        mean=mean, std=std, augment=augment, default_stats=stats,
                        default_augment="none", padding=2, classes=classes,
                        info={"source": str(files[IDX_FILES[0]].parent)})


def load_fashionmnist(data_dir=None, seed: int = 0, *, normalization: str = "default",
                      mean=None, std=None, augment="default") -> DatasetBundle:
    """Fashion-MNIST 60,000 / 10,000 (1, 28, 28); default normalisation mean 0.2860 std 0.3530;
    default augmentation none (as the official code; ``augment="crop"`` pads 2 px)."""
    return _load("fashionmnist", data_dir, normalization, mean, std, augment)


def load_mnist(data_dir=None, seed: int = 0, *, normalization: str = "default", mean=None,
               std=None, augment="default") -> DatasetBundle:
    """MNIST 60,000 / 10,000 (1, 28, 28) from the same IDX format."""
    return _load("mnist", data_dir, normalization, mean, std, augment)
