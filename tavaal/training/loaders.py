"""DataLoaders over index subsets of a dataset, with optional per-sample augmentation."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.seg_transforms import is_paired


def apply_augment(augment: Callable, x, y):
    """``augment`` on a sample or batch: paired (segmentation) augmentations transform image
    and mask together (``augment(x, y) -> (x, y)``); the others transform ``x`` only."""
    if is_paired(augment):
        return augment(x, y)
    return augment(x), y


class IndexedSubset(Dataset):
    """``dataset[indices[i]]`` as ``(x, y, indices[i])``, with ``augment`` applied to x."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], augment: Optional[Callable] = None):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        index = int(self.indices[i])
        x, y = self.dataset[index]
        if self.augment is not None:
            x, y = apply_augment(self.augment, x, y)
        return x, (y if isinstance(y, torch.Tensor) and y.dim() > 0 else int(y)), index  # masks stay tensors


class BatchLoader:
    """Batches of ``(x, y, indices)`` cut straight from an in-memory dataset's ``get_batch``.

    Equivalent to a DataLoader over :class:`IndexedSubset` (same order for the same seed, the
    augmentation applied per sample with its own random draw), without a Python call per sample.
    """

    def __init__(self, dataset, indices: Sequence[int], batch_size: int, *, shuffle: bool,
                 augment: Optional[Callable] = None, seed: int = 0, drop_last: bool = False):
        self.dataset = dataset
        self.indices = np.array(indices, dtype=np.int64)  # own, writable copy (pools hand out read-only arrays)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch_order(self) -> np.ndarray:
        """The indices in this epoch's order (a fresh seeded permutation per call when shuffling)."""
        if self.shuffle:
            return self.indices[torch.randperm(len(self.indices), generator=self.generator).numpy()]
        return self.indices

    def cut(self, order):
        """``order`` in batches of ``batch_size`` (without the short last one if ``drop_last``)."""
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return (order[start:start + self.batch_size] for start in range(0, stop, self.batch_size))

    def __iter__(self):
        for chunk in self.cut(self.epoch_order()):
            x, y = self.dataset.get_batch(chunk)
            if self.augment is not None:
                x, y = apply_augment(self.augment, x, y)
            yield x, y, torch.from_numpy(chunk)


def make_loader(dataset: Dataset, indices: Sequence[int], batch_size: int, *, shuffle: bool,
                augment: Optional[Callable] = None, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False):
    """A loader over ``indices`` yielding ``(x, y, index)`` batches; shuffling is seeded so runs
    are reproducible. In-memory datasets (with ``get_batch``) are batched without per-sample calls."""
    if hasattr(dataset, "get_batch") and num_workers == 0:
        return BatchLoader(dataset, indices, batch_size, shuffle=shuffle, augment=augment, seed=seed,
                           drop_last=drop_last)
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(IndexedSubset(dataset, indices, augment), batch_size=batch_size, shuffle=shuffle,
                      generator=generator, num_workers=num_workers, drop_last=drop_last)


def endless(loader: DataLoader):
    """Yield batches forever, starting a new epoch when one ends (WAE training)."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("cannot iterate an empty loader")
