"""Paired augmentation for segmentation: the same geometric change to an image and its mask.

Every transform here is called as ``t(x, mask, generator=None) -> (x, mask)`` on

* one sample: ``x`` (C, H, W) float, ``mask`` (H, W) integer, or
* a batch: ``x`` (B, C, H, W), ``mask`` (B, H, W) (independent draws per sample),

and carries ``paired = True`` so that the data loaders pass the mask along (classification
augmentations in :mod:`tavaal.data.transforms` take ``x`` only). Randomness follows
:mod:`tavaal.data.transforms`: the call-time generator, else the constructor's, else torch's
global RNG. Mask pixels created by padding get ``ignore_index`` (255), image pixels ``fill``
(the normalised value of a black pixel by default in the readers, i.e. zero padding).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..losses import IGNORE_INDEX
from .transforms import Generator, RandomHorizontalFlip, RandomTransform, as_tuple, pad_with_fill, random_crops

__all__ = ["PairedCompose", "PairedRandomCrop", "PairedRandomHorizontalFlip", "is_paired"]


def is_paired(transform) -> bool:
    """True if ``transform`` takes ``(x, mask)`` (a segmentation augmentation)."""
    return bool(getattr(transform, "paired", False))


def _check_pair(x: torch.Tensor, mask: torch.Tensor, name: str) -> bool:
    """Validate shapes; return True for a batch."""
    if not isinstance(x, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} expects tensors (x, mask), got {type(x).__name__}, {type(mask).__name__}")
    if x.dim() == 3 and mask.dim() == 2:
        batch = False
    elif x.dim() == 4 and mask.dim() == 3 and x.shape[0] == mask.shape[0]:
        batch = True
    else:
        raise ValueError(f"{name} expects x (C,H,W) with mask (H,W), or x (B,C,H,W) with mask (B,H,W); "
                         f"got {tuple(x.shape)} and {tuple(mask.shape)}")
    if tuple(x.shape[-2:]) != tuple(mask.shape[-2:]):
        raise ValueError(f"{name}: image is {tuple(x.shape[-2:])} but mask is {tuple(mask.shape[-2:])}")
    return batch


class PairedCompose:
    """Apply paired transforms in order, forwarding a call-time generator."""

    paired = True

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)
        bad = [t for t in self.transforms if not is_paired(t)]
        if bad:
            raise TypeError(f"PairedCompose takes paired transforms only, got {bad}")

    def __call__(self, x: torch.Tensor, mask: torch.Tensor, generator: Generator = None):
        for t in self.transforms:
            x, mask = t(x, mask, generator=generator)
        return x, mask

    def __repr__(self) -> str:
        return f"PairedCompose([{', '.join(repr(t) for t in self.transforms)}])"


class PairedRandomHorizontalFlip(RandomHorizontalFlip):
    """Mirror image and mask along the width with probability ``p`` (one draw per sample)."""

    paired = True

    def __call__(self, x: torch.Tensor, mask: torch.Tensor, generator: Generator = None):
        return tuple(self._flip([x, mask], _check_pair(x, mask, "PairedRandomHorizontalFlip"), generator))


class PairedRandomCrop(RandomTransform):
    """Crop ``size`` = (h, w) at the same uniformly random position of image and mask.

    A side shorter than the crop is first padded symmetrically (image with ``fill``, one value
    or one per channel; mask with ``ignore_index``), so any image size works and padding never
    counts in the loss or the metrics.
    """

    paired = True

    def __init__(self, size: int | tuple[int, int], fill: float | Sequence[float] = 0.0,
                 ignore_index: int = IGNORE_INDEX, generator: Generator = None):
        super().__init__(generator)
        self.size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"crop size must be a positive int or (h, w), got {size}")
        self.fill = as_tuple(fill)
        self.ignore_index = int(ignore_index)

    def _pad(self, x: torch.Tensor, mask: torch.Tensor):
        th, tw = self.size
        h, w = x.shape[-2:]
        ph, pw = max(th - h, 0), max(tw - w, 0)
        if ph == 0 and pw == 0:
            return x, mask
        top, left = ph // 2, pw // 2
        return (pad_with_fill(x, self.fill, top, left, h + ph, w + pw),
                F.pad(mask, (left, pw - left, top, ph - top), value=self.ignore_index))

    def __call__(self, x: torch.Tensor, mask: torch.Tensor, generator: Generator = None):
        batch = _check_pair(x, mask, "PairedRandomCrop")
        x, mask = self._pad(x, mask) if batch else self._pad(x[None], mask[None])
        xs, ms = random_crops([x, mask], self.size, self._gen(generator))
        return (xs, ms) if batch else (xs[0], ms[0])

    def __repr__(self) -> str:
        return f"PairedRandomCrop(size={self.size}, fill={self.fill}, ignore_index={self.ignore_index})"
