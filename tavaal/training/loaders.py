"""DataLoaders over index subsets of a dataset, with optional per-sample augmentation."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


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
            x = self.augment(x)
        return x, int(y), index


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

    def __iter__(self):
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(len(order), generator=self.generator).numpy()]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            if self.drop_last and len(chunk) < self.batch_size:
                break
            x, y = self.dataset.get_batch(chunk)
            if self.augment is not None:
                x = self.augment(x)
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
