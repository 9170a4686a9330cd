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


def array_bundle(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, num_classes: int, *, channels: int | None, normalization: str,
                 mean, std, augment="none", default_stats=None, default_augment: str = "none",
                 padding: int = 4, classes: Sequence[str] | None = None,
                 info: dict | None = None) -> DatasetBundle:
    """Bundle of in-memory arrays: uint8 images (N, C, H, W) kept as uint8 and normalised per
    item on access, anything else (float32 (N, D) vectors or images) standardised once.
    ``channels`` goes to :func:`~tavaal.data.defaults.resolve_stats`; ``points`` holds the raw
    training coordinates of 2-D vectors; data sets with ``default_stats`` record the
    statistics used in ``info["normalization"]`` (the option, or "explicit")."""
    m, s = resolve_stats(normalization, x_train, default_stats, mean, std, channels=channels, name=name)
    input_shape = tuple(int(v) for v in x_train.shape[1:])
    aug = build_augment(augment, default_augment, input_shape, m, s, padding=padding, name=name)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    if x_train.dtype == np.uint8:
        train = ArrayDataset(torch.from_numpy(np.ascontiguousarray(x_train)), y_train, m, s)
        test = ArrayDataset(torch.from_numpy(np.ascontiguousarray(x_test)), y_test, m, s)
    else:  # float32 (x - mean) / std per channel of images or per feature of vectors
        shape = (-1, 1, 1) if x_train.ndim >= 3 else (-1,)
        mv, sv = np.asarray(m, np.float32).reshape(shape), np.asarray(s, np.float32).reshape(shape)
        train = ArrayDataset(torch.from_numpy(((x_train - mv) / sv).astype(np.float32)), y_train)
        test = ArrayDataset(torch.from_numpy(((x_test - mv) / sv).astype(np.float32)), y_test)
    info = dict(info or {})
    if default_stats is not None:
        info.setdefault("normalization", normalization if mean is None else "explicit")
    return DatasetBundle(
        name=name, train=train, test=test, num_classes=int(num_classes), input_shape=input_shape,
        augment=aug, train_targets=y_train,
        points=x_train.copy() if x_train.ndim == 2 and x_train.shape[1] == 2 else None,
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

