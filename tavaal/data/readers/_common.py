"""Helpers shared by the readers: data-folder resolution, splits, statistics and bundle assembly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..bundle import ArrayDataset, DatasetBundle
from ..defaults import IMAGENET_MEAN, IMAGENET_STD, build_augment, resolve_stats
from ..errors import CorruptDatasetError

DATA_DIR_ENV = "TAVAAL_DATA_DIR"


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir``, else ``$TAVAAL_DATA_DIR``, else ``./data``."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV, "data")
    return Path(data_dir).expanduser().resolve()


def stratified_split(targets: np.ndarray, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split; the number of test samples per class is allocated by largest
    remainder so that the total is ``round(N * test_fraction)``; every class keeps at least
    one training sample. Returns sorted (train_idx, test_idx)."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(targets, return_counts=True)
    total = int(round(len(targets) * test_fraction))
    quota = counts * test_fraction
    n_test = np.floor(quota).astype(int)
    remainder = quota - n_test
    order = np.argsort(-remainder, kind="stable")
    for k in order[: max(0, total - int(n_test.sum()))]:
        n_test[k] += 1
    n_test = np.minimum(n_test, np.maximum(counts - 1, 0))
    train_idx, test_idx = [], []
    for c, k in zip(classes, n_test):
        members = np.flatnonzero(targets == c)
        perm = rng.permutation(members)
        test_idx.append(perm[:k])
        train_idx.append(perm[k:])
    return (np.sort(np.concatenate(train_idx)).astype(np.int64),
            np.sort(np.concatenate(test_idx)).astype(np.int64))


def image_bundle(name: str, x_train: torch.Tensor, y_train: np.ndarray, x_test: torch.Tensor,
                 y_test: np.ndarray, num_classes: int, *, normalization: str,
                 mean, std, augment, default_stats, default_augment: str,
                 padding: int = 4, classes: Sequence[str] | None = None,
                 info: dict | None = None) -> DatasetBundle:
    """Bundle of uint8 (N, C, H, W) images normalised per item on access."""
    m, s = resolve_stats(normalization, x_train, default_stats, mean, std, channels=int(x_train.shape[1]), name=name)
    input_shape = tuple(int(v) for v in x_train.shape[1:])
    aug = build_augment(augment, default_augment, input_shape, m, s, padding=padding, name=name)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    info = dict(info or {})
    info.setdefault("normalization", normalization if mean is None else "explicit")
    return DatasetBundle(
        name=name, train=ArrayDataset(x_train, y_train, m, s), test=ArrayDataset(x_test, y_test, m, s),
        num_classes=int(num_classes), input_shape=input_shape, augment=aug, train_targets=y_train,
        mean=m, std=s, test_targets=y_test, classes=tuple(classes) if classes is not None else None, info=info)


def check_labels(y: np.ndarray, num_classes: int, path) -> None:
    """Raise :class:`CorruptDatasetError` naming ``path`` for labels outside ``[0, num_classes)``."""
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise CorruptDatasetError(f"{path}: labels must be in [0, {num_classes}), found range "
                                  f"[{int(y.min())}, {int(y.max())}]", path)


def folder_stats(name: str, normalization: str, mean, std):
    """(mean, std) of an RGB image folder: ImageNet statistics ("default"), or the given
    ``mean``/``std``; ValueError for "computed" without them (it would decode every image)."""
    if normalization == "computed" and mean is None:
        raise ValueError(f"{name}: normalization='computed' would decode every image; pass mean=/std= "
                         "(or use 'default' = ImageNet statistics)")
    return resolve_stats(normalization, torch.zeros(1, 3), (IMAGENET_MEAN, IMAGENET_STD), mean, std,
                         channels=3, name=name)


def standardized(x: np.ndarray, mean, std) -> torch.Tensor:
    """float32 ``(x - mean) / std`` per feature of (N, D) vectors or per channel of (N, C, H, W) images."""
    shape = (-1, 1, 1) if x.ndim >= 3 else (-1,)
    m = np.asarray(mean, np.float32).reshape(shape)
    s = np.asarray(std, np.float32).reshape(shape)
    return torch.from_numpy(((x - m) / s).astype(np.float32))
