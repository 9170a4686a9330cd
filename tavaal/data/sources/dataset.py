"""A torch dataset of ``(x, y)`` items (a split of a benchmark data set) as a row source."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .base import RowSource

__all__ = ["DatasetSource"]


class DatasetSource(RowSource):
    """A torch dataset of ``(x, y)`` items as a row source, e.g. the train (or test) split of a
    :func:`tavaal.data.load_dataset` data set (already normalised float32; ``bundle.train_source``
    is ``DatasetSource(bundle.train, name=bundle.name, split="train")``). Ids are row numbers of
    that split. Datasets with ``get_batch(rows)`` (the in-memory :class:`tavaal.data.ArrayDataset`)
    are read a batch at a time. ``open_source("dataset:NAME[:split]")`` loads one by name."""

    def __init__(self, dataset, name: Optional[str] = None, split: str = "train"):
        super().__init__()
        self.torch_dataset = dataset
        self.path = Path(f"dataset:{name}:{split}") if name is not None else Path(f"dataset:{type(dataset).__name__}")
        self.sample_shape = tuple(dataset[0][0].shape) if len(dataset) else ()

    def __len__(self) -> int:
        return len(self.torch_dataset)

    def _read_rows(self, rows: np.ndarray):
        if hasattr(self.torch_dataset, "get_batch"):
            return self.torch_dataset.get_batch(rows)[0].float()
        if rows.size == 0:
            return torch.empty((0,) + self.sample_shape)
        return torch.stack([self.torch_dataset[int(i)][0] for i in rows]).float()
