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


def make_loader(dataset: Dataset, indices: Sequence[int], batch_size: int, *, shuffle: bool,
                augment: Optional[Callable] = None, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A loader over ``indices``; shuffling is seeded so runs are reproducible."""
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
