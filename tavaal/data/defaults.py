"""Per-dataset defaults: normalisation statistics and augmentation recipes.

``normalization`` option accepted by every loader:

* ``"default"`` -- the data set's documented constants (below) where it has them, else
  statistics computed on the training set;
* ``"computed"`` -- per-channel (images) / per-feature (vectors) mean and std of the
  training set as loaded (e.g. of the reduced imbalanced CIFAR-10);
* ``"none"`` -- mean 0, std 1 (pixels scaled to [0, 1] only, like ``ToTensor``);
* explicit ``mean=...``, ``std=...`` options override all of these.

``augment`` option: ``True``/``"default"`` (the data set's recipe), ``False``/``None``/
``"none"``, one of the named recipes ``"crop"``, ``"flip"``, ``"crop+flip"``, ``"rrc"``,
``"flip+rrc"``, or any callable.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .sources.stats import channel_stats
from .transforms import (Compose, RandomCropWithPadding, RandomHorizontalFlip,
                         RandomResizedCrop, normalized_fill)

__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "SVHN_MEAN", "SVHN_STD",
    "FASHIONMNIST_MEAN", "FASHIONMNIST_STD", "MNIST_MEAN", "MNIST_STD",
    "IMAGENET_MEAN", "IMAGENET_STD", "resolve_stats", "augment_recipe", "build_augment",
]

# The TA-VAAL / Learning-Loss code normalises CIFAR-10 *and* CIFAR-100 with these.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
# Commonly used CIFAR-100 statistics (commented out in the official code); opt-in.
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
SVHN_MEAN = (0.4377, 0.4438, 0.4728)
SVHN_STD = (0.1980, 0.2010, 0.1970)
FASHIONMNIST_MEAN = (0.2860,)
FASHIONMNIST_STD = (0.3530,)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

NORMALIZATIONS = ("default", "computed", "none")


def resolve_stats(normalization: str, data,
                  default: tuple[Sequence[float], Sequence[float]] | None,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  channels: int | None = None, name: str = "dataset"
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Resolve the ``normalization`` / ``mean`` / ``std`` options into (mean, std) tuples;
    computed statistics are :func:`~tavaal.data.sources.channel_stats` of ``data`` (uint8 data
    on the 0..1 scale)."""
    if (mean is None) != (std is None):
        raise ValueError(f"{name}: give both mean= and std=, or neither")
    if mean is not None:
        m = tuple(float(v) for v in np.atleast_1d(mean))
        s = tuple(float(v) for v in np.atleast_1d(std))
        if channels is not None:
            if len(m) == 1 and channels > 1:
                m, s = m * channels, s * channels
            if len(m) != channels or len(s) != channels:
                raise ValueError(f"{name}: mean/std need {channels} values, got {len(m)}/{len(s)}")
        if any(v <= 0 for v in s):
            raise ValueError(f"{name}: std must be positive, got {s}")
        return m, s
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"{name}: normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    c = channels if channels is not None else int(torch.as_tensor(data).shape[1])
    if normalization == "none":
        return (0.0,) * c, (1.0,) * c
    if normalization == "default" and default is not None:
        return tuple(default[0]), tuple(default[1])
    return channel_stats(data)


AUGMENTS = ("default", "none", "crop", "flip", "crop+flip", "rrc", "flip+rrc")


def augment_recipe(spec, default: str, choices: Sequence[str], expected: str, name: str = "dataset") -> str | None:
    """The recipe a non-callable ``augment`` option names: one of ``choices``, where "default"
    (and True) means ``default``; None for "none" (and False/None). Raises ValueError
    ``"NAME: augment must be EXPECTED, got SPEC"`` for anything else."""
    if spec is True or spec is False or spec is None:
        spec = "default" if spec else "none"
    if not isinstance(spec, str) or spec not in choices:
        raise ValueError(f"{name}: augment must be {expected}, got {spec!r}")
    if spec == "default":
        spec = default
    return None if spec == "none" else spec


def build_augment(spec, default: str, input_shape: tuple[int, ...],
                  mean: Sequence[float], std: Sequence[float], padding: int = 4,
                  name: str = "dataset") -> Callable | None:
    """Turn the ``augment`` option into a callable (or None).

    Crops pad with the normalised value of a black pixel (== zero padding before Normalize).
    """
    if callable(spec):
        return spec
    spec = augment_recipe(spec, default, AUGMENTS, f"a bool, a callable or one of {AUGMENTS}", name)
    if spec is None:
        return None
    if len(input_shape) != 3:
        raise ValueError(f"{name}: augment={spec!r} needs image inputs, got shape {input_shape}")
    _, h, w = input_shape
    parts: list = []
    if "crop" in spec.split("+"):
        parts.append(RandomCropWithPadding((h, w), padding=padding, fill=normalized_fill(mean, std)))
    if "flip" in spec:
        parts.append(RandomHorizontalFlip(0.5))
    if "rrc" in spec:
        parts.append(RandomResizedCrop((h, w)))
    return parts[0] if len(parts) == 1 else Compose(parts)
