"""GPU-speed training and inference: one :class:`Accel` says how a loop runs on its device.

On CUDA (by default) the task learner, the WAE and the discriminator, and the inference
that scores with them, run with

* **bf16 autocast** (``precision="auto"`` -> bf16 on CUDA; ``"fp32"`` opts out; ``"bf16"``
  also works on CPU when asked for explicitly). bf16 has fp32's range: no loss scaling;
* **channels_last** models and image batches (the layout of the tensor-core convolutions);
* **device-resident data**: an in-memory data set (:class:`tavaal.data.bundle.ArrayDataset`)
  is copied to the device once (uint8 stays uint8), batches are gathered, normalised and
  augmented there -- random crop with padding and horizontal flip as batched tensor ops
  (:class:`DeviceAugment`, the semantics of :mod:`tavaal.data.transforms`);
* **no host sync per batch**: losses are summed on the device (:class:`LossMeter`) and read
  once per epoch, or every :attr:`Accel.sync_every` steps.

On CPU nothing changes unless asked for: ``Accel.resolve("cpu")`` is inactive (plain
loaders, fp32, per-step loss reads), so CPU results are bit-identical to the plain loop.

Models remember the Accel they were trained with (:meth:`Accel.prepare`), so inference
(:func:`tavaal.training.inference.predict`) uses the same precision and layout:
:func:`accel_of`.
"""
from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, replace
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..data.transforms import Compose, RandomCropWithPadding, RandomHorizontalFlip
from .loaders import BatchLoader, make_loader

__all__ = ["PRECISIONS", "Accel", "accel_of", "LossMeter", "DeviceAugment", "DeviceBatchLoader",
           "crop_with_padding", "hflip"]

PRECISIONS = ("auto", "fp32", "bf16")
"""``auto``: bf16 autocast on CUDA, fp32 elsewhere; ``fp32``: never autocast; ``bf16``: always."""
SYNC_EVERY = 50
"""Steps between host reads of the running losses when the fast path is active."""
_ATTR = "_tavaal_accel"


@dataclass(frozen=True)
class Accel:
    """How training / inference runs on ``device``.

    ``precision`` (one of :data:`PRECISIONS`) and ``fast`` are what was asked for; the
    properties say what it means on this device. ``fast`` (default True) turns on
    channels_last, device-resident data and deferred loss reads -- on CUDA only.
    """

    device: torch.device
    precision: str = "auto"
    fast: bool = True

    def __post_init__(self):
        object.__setattr__(self, "device", torch.device(self.device))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def resolve(cls, device="cpu", precision: str = "auto", fast: bool = True) -> "Accel":
        """The Accel for ``device`` (str or torch.device); ValueError for an unknown precision."""
        return cls(torch.device(device), precision, bool(fast))

    @classmethod
    def from_config(cls, config, device) -> "Accel":
        """From a :class:`tavaal.config.RunConfig` (fields ``precision`` and ``accel``)."""
        return cls.resolve(device, getattr(config, "precision", "auto"), getattr(config, "accel", True))

    # ---------------------------------------------------------------- what it means here
    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def dtype(self) -> Optional[torch.dtype]:
        """The autocast dtype (torch.bfloat16) or None for plain fp32. ``auto`` stays fp32 on
        a GPU without native bf16 (before Ampere)."""
        if self.precision == "bf16":
            return torch.bfloat16
        if self.precision == "auto" and self.cuda:
            if torch.cuda.is_available() and not torch.cuda.is_bf16_supported(including_emulation=False):
                return None
            return torch.bfloat16
        return None

    @property
    def channels_last(self) -> bool:
        return self.fast and self.cuda

    @property
    def device_data(self) -> bool:
        """Whether in-memory data sets are gathered and augmented on the device."""
        return self.fast and self.cuda

    @property
    def sync_every(self) -> int:
        """Read losses to the host every this many steps (1: every step, the plain loop)."""
        return SYNC_EVERY if self.fast and self.cuda else 1

    @property
    def active(self) -> bool:
        """False when every choice is the plain fp32 loop's."""
        return self.dtype is not None or self.channels_last

    # ---------------------------------------------------------------- use
    def autocast(self):
        """Context manager: ``torch.autocast(device, bfloat16)`` or a no-op for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def prepare(self, *modules: Optional[nn.Module]) -> None:
        """Convert ``modules`` (None entries skipped; already on the device) to channels_last
        when enabled, and record this Accel on them for :func:`accel_of`."""
        for module in modules:
            if module is None:
                continue
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            object.__setattr__(module, _ATTR, self)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the device (non-blocking), channels_last when enabled and x is (B, C, H, W)."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def loader(self, dataset, indices: Sequence[int], batch_size: int, *, shuffle: bool,
               augment: Optional[Callable] = None, seed: int = 0, num_workers: int = 0, drop_last: bool = False):
        """A loader of ``(x, y, index)`` batches over ``indices``: a :class:`DeviceBatchLoader`
        when the data can live on the device (fast path on CUDA, an in-memory data set, no
        workers, ``augment`` None or translatable by :meth:`DeviceAugment.from_transform`),
        else :func:`tavaal.training.loaders.make_loader` (batches on the CPU; move them with
        :meth:`inputs`). Both give the same batch composition for the same seed."""
        if self.device_data and num_workers == 0 and DeviceBatchLoader.supports(dataset):
            device_augment = DeviceAugment.from_transform(augment)
            if augment is None or device_augment is not None:
                return DeviceBatchLoader(dataset, indices, batch_size, shuffle=shuffle, augment=device_augment,
                                         seed=seed, drop_last=drop_last, device=self.device)
        return make_loader(dataset, indices, batch_size, shuffle=shuffle, augment=augment, seed=seed,
                           num_workers=num_workers, drop_last=drop_last)


def accel_of(module: Optional[nn.Module], device) -> Accel:
    """The Accel ``module`` was prepared with (moved to ``device``), else the default for
    ``device`` (bf16 + fast path on CUDA, plain fp32 on CPU)."""
    found = getattr(module, _ATTR, None)  # None for module None
    return replace(found, device=torch.device(device)) if isinstance(found, Accel) else Accel.resolve(device)


# ------------------------------------------------------------------------- loss accounting
class LossMeter:
    """Running sums of scalar losses kept where the losses are (float64, so the sums equal
    a Python float accumulation exactly): :meth:`add` never synchronises with the device,
    :meth:`sums` reads everything in one transfer."""

    def __init__(self):
        self._sums: Dict[str, torch.Tensor] = {}

    def add(self, **losses: Optional[torch.Tensor]) -> None:
        """Add scalar tensors by name; None values are skipped (count as 0)."""
        for name, value in losses.items():
            if value is None:
                continue
            value = value.detach().to(torch.float64)
            if name in self._sums:
                self._sums[name].add_(value)
            else:
                self._sums[name] = value.clone()

    def sums(self, names: Iterable[str] = ()) -> Dict[str, float]:
        """``{name: sum}`` as Python floats (one device->host copy); ``names`` never added read 0.0."""
        keys = list(self._sums)
        values = torch.stack([self._sums[k] for k in keys]).cpu().tolist() if keys else []
        out = {name: 0.0 for name in names}
        out.update(zip(keys, values))
        return out


# ------------------------------------------------------------------------- augmentation
def crop_with_padding(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, size: Tuple[int, int],
                      padding: int, fill: Sequence[float]) -> torch.Tensor:
    """Batched crop of the padded images: ``x`` (B, C, H, W) padded by ``padding`` pixels of
    ``fill`` (1 or C values), then the (th, tw) = ``size`` window at rows ``oy[i]``, columns
    ``ox[i]`` (int64 (B,) on x's device, offsets into the padded image) of each image.
    Returns (B, C, th, tw), x's dtype and device; no host synchronisation."""
    b, c, h, w = x.shape
    p = int(padding)
    th, tw = size
    padded = x.new_empty((b, c, h + 2 * p, w + 2 * p))
    if len(fill) == 1:
        padded.fill_(float(fill[0]))
    else:  # per-channel Python scalars: no host->device copy
        for ci, value in enumerate(fill):
            padded[:, ci].fill_(float(value))
    padded[:, :, p:p + h, p:p + w] = x
    rows = oy.view(b, 1) + torch.arange(th, device=x.device)  # (B, th)
    cols = ox.view(b, 1) + torch.arange(tw, device=x.device)  # (B, tw)
    out = padded.gather(2, rows.view(b, 1, th, 1).expand(b, c, th, w + 2 * p))
    return out.gather(3, cols.view(b, 1, 1, tw).expand(b, c, th, tw))


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the width axis of the images of ``x`` (B, ...) where ``mask`` (B,) bool is True."""
    return torch.where(mask.view((-1,) + (1,) * (x.dim() - 1)), x.flip(-1), x)


class DeviceAugment:
    """Random crop with padding and horizontal flip on a batch, on the batch's device.

    Built from the CPU transforms (:meth:`from_transform`); draws its random numbers in the
    same order and the same way as they do (crop: row offsets then column offsets with
    ``torch.randint``; flip: ``torch.rand(B) < p``), from ``generator`` or else the global
    RNG of the batch's device. On CPU with the same generator state it therefore returns
    exactly what the CPU transforms return."""

    def __init__(self, ops: List[tuple]):
        self.ops = list(ops)

    @classmethod
    def from_transform(cls, transform) -> Optional["DeviceAugment"]:
        """The device version of ``transform`` (RandomCropWithPadding, RandomHorizontalFlip,
        a Compose of these), or None when it has no device version (None for None too)."""
        if transform is None:
            return None
        parts = transform.transforms if isinstance(transform, Compose) else [transform]
        ops: List[tuple] = []
        for t in parts:
            if type(t) is RandomCropWithPadding:
                ops.append(("crop", tuple(t.size), int(t.padding), tuple(t.fill)))
            elif type(t) is RandomHorizontalFlip:
                ops.append(("flip", float(t.p)))
            else:
                return None
        return cls(ops)

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``x`` (B, C, H, W) -> augmented batch (B, C, th, tw), same dtype and device."""
        if x.dim() != 4:
            raise ValueError(f"DeviceAugment expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        for op in self.ops:
            b = x.shape[0]
            if op[0] == "crop":
                _, (th, tw), p, fill = op
                hp, wp = x.shape[2] + 2 * p, x.shape[3] + 2 * p
                if th > hp or tw > wp:
                    raise ValueError(f"crop size {(th, tw)} larger than padded image {(hp, wp)}")
                if len(fill) not in (1, x.shape[1]):
                    raise ValueError(f"fill has {len(fill)} values for {x.shape[1]} channels")
                oy = torch.randint(0, hp - th + 1, (b,), generator=generator, device=x.device)
                ox = torch.randint(0, wp - tw + 1, (b,), generator=generator, device=x.device)
                x = crop_with_padding(x, oy, ox, (th, tw), p, fill)
            else:
                x = hflip(x, torch.rand(b, generator=generator, device=x.device) < op[1])
        return x

    def __repr__(self) -> str:
        return f"DeviceAugment({self.ops})"


# ------------------------------------------------------------------------- device-resident data
_DEVICE_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _device_arrays(dataset, device: torch.device) -> tuple:
    """``(data, scale, shift, targets)`` of an in-memory data set on ``device`` (scale and shift
    None without a normalisation): one copy per (data set, device), kept while the data set lives."""
    per_dataset = _DEVICE_CACHE.setdefault(dataset, {})
    key = str(device)
    if key not in per_dataset:
        data = dataset.data.to(device)
        norm = dataset.normalization()
        scale, shift = (None, None) if norm is None else (norm[0].to(device), norm[1].to(device))
        per_dataset[key] = (data, scale, shift, torch.as_tensor(np.asarray(dataset.targets, dtype=np.int64)).to(device))
    return per_dataset[key]


class DeviceBatchLoader(BatchLoader):
    """:class:`~tavaal.training.loaders.BatchLoader` whose batches are cut on ``device`` from
    a device copy of an in-memory data set: same batches for the same seed, yielded as
    ``(x float32 normalised, y int64, index int64)`` device tensors, ``augment`` (a
    :class:`DeviceAugment` or None) applied on the device. One host->device copy per epoch
    (the order), none per batch."""

    def __init__(self, dataset, indices: Sequence[int], batch_size: int, *, shuffle: bool,
                 augment: Optional[DeviceAugment] = None, seed: int = 0, drop_last: bool = False, device="cuda"):
        if not self.supports(dataset):
            raise TypeError(f"DeviceBatchLoader needs an in-memory ArrayDataset-like data set, got {type(dataset).__name__}")
        super().__init__(dataset, indices, batch_size, shuffle=shuffle, augment=augment, seed=seed, drop_last=drop_last)
        self.device = torch.device(device)
        self.arrays = _device_arrays(dataset, self.device)

    @staticmethod
    def supports(dataset) -> bool:
        """In-memory data sets with a ``data`` tensor, ``targets`` and ``normalization()``."""
        return (isinstance(getattr(dataset, "data", None), torch.Tensor) and hasattr(dataset, "targets")
                and callable(getattr(dataset, "normalization", None)))

    def __iter__(self):
        order = torch.from_numpy(np.ascontiguousarray(self.epoch_order())).to(self.device, non_blocking=True)
        data, scale, shift, targets = self.arrays
        for rows in self.cut(order):
            x = data[rows]
            if scale is not None:
                x = x.float().mul_(scale).add_(shift)
            if self.augment is not None:
                x = self.augment(x)
            yield x, targets[rows], rows
