"""What :func:`~tavaal.data.load_dataset` returns, and the in-memory dataset it builds on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .normalization import uint8_scale_shift
from .sources.dataset import DatasetSource
from .transforms import Augmented

__all__ = ["DatasetBundle", "ArrayDataset"]


class ArrayDataset(Dataset):
    """In-memory dataset ``(x float32 normalised, y int)`` indexing one tensor.

    ``data`` is either uint8 (images stored compactly, normalised per item on access:
    ``(x / 255 - mean) / std``) or float32 (already normalised: returned as is).
    ``mean``/``std`` are per channel (images, dim 0 of an item) and only used with uint8.
    """

    def __init__(self, data: torch.Tensor, targets: np.ndarray,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        if data.shape[0] != len(targets):
            raise ValueError(f"{data.shape[0]} samples but {len(targets)} targets")
        self.data = data
        self.targets = np.asarray(targets, dtype=np.int64)
        self._uint8 = data.dtype == torch.uint8
        if self._uint8:
            self._a, self._b = uint8_scale_shift(mean, std, tuple(data.shape[1:]))
        elif data.dtype != torch.float32:
            raise TypeError(f"data must be uint8 or float32, got {data.dtype}")

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: int):
        x = self.data[index]
        if self._uint8:
            x = x.float().mul_(self._a).add_(self._b)
        return x, int(self.targets[index])

    def normalization(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(scale, shift)`` float32 per channel (shape ``(C, 1, ...)``, broadcasting against an
        item) with ``item = data.float() * scale + shift`` for uint8 data; None for float32 data
        (stored already normalised). Lets a device-side loader normalise batches itself."""
        return (self._a, self._b) if self._uint8 else None

    def get_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised inputs and int64 targets of ``indices`` (all if None), in one go."""
        if indices is None:
            x, y = self.data.clone(), self.targets
        else:
            idx = torch.from_numpy(np.array(indices, dtype=np.int64))  # a copy: pools hand out read-only arrays
            x, y = self.data[idx], self.targets[idx.numpy()]
        if self._uint8:
            x = x.float().mul_(self._a.unsqueeze(0)).add_(self._b.unsqueeze(0))
        return x, torch.from_numpy(np.asarray(y, dtype=np.int64))

    def __repr__(self) -> str:
        return f"ArrayDataset(n={len(self)}, item_shape={tuple(self.data.shape[1:])}, dtype={self.data.dtype})"


@dataclass
class DatasetBundle:
    """A loaded data set (see docs/CONTRACTS.md, Data).

    ``train`` / ``test`` return ``(x float32 normalised, y int)`` without augmentation;
    ``augment`` is the training augmentation (callable on one normalised sample tensor, or a
    batch; None for none) -- use :meth:`augmented_train`. ``mean``/``std`` are the
    per-channel (images) or per-feature (vectors) statistics used for normalisation.
    """

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    input_shape: tuple[int, ...]
    augment: Callable | None
    train_targets: np.ndarray
    points: np.ndarray | None = None
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    test_targets: np.ndarray | None = None
    classes: tuple[str, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        """"classification" (one label per sample) or "segmentation" (a label mask per sample,
        ``info["task"]``; items are (x, mask (H, W) int64) with 255 = unlabeled)."""
        return str(self.info.get("task", "classification"))

    @property
    def num_train(self) -> int:
        return len(self.train)  # type: ignore[arg-type]

    @property
    def num_test(self) -> int:
        return len(self.test)  # type: ignore[arg-type]

    @property
    def train_source(self):
        """The training split as a :class:`tavaal.data.sources.DatasetSource` (row ids = indices)."""
        return DatasetSource(self.train, name=self.name, split="train")

    @property
    def test_source(self):
        """The test split as a :class:`tavaal.data.sources.DatasetSource`."""
        return DatasetSource(self.test, name=self.name, split="test")

    def augmented_train(self, generator: torch.Generator | None = None) -> Dataset:
        """The training set with ``augment`` applied per item (plain ``train`` if None)."""
        return Augmented(self.train, self.augment, generator) if self.augment is not None else self.train

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train_targets, minlength=self.num_classes)

    def summary(self) -> str:
        return (f"{self.name}: {self.num_train} train / {self.num_test} test, "
                f"{self.num_classes} classes, input {self.input_shape}, "
                f"augment {self.augment!r}")
