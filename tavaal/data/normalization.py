"""The one uint8 normalisation: raw pixel values to ``(x / 255 - mean) / std`` as one multiply-add.

Every place that turns stored uint8 samples into model inputs (in-memory data sets, image files,
row-source training views, the scorer, the exported normalisation graph) takes its constants
from :func:`uint8_scale_shift`, so they agree to the bit.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

__all__ = ["uint8_scale_shift", "channel_constants"]


def channel_constants(mean: Optional[Sequence[float]], std: Optional[Sequence[float]],
                      channels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``mean``/``std`` as float32 tensors of ``channels`` values each: one value is repeated
    for every channel, None gives mean 0 / std 1. Raises ValueError when the number of values is
    neither 1 nor ``channels``."""
    c = int(channels)
    m = torch.tensor(list(mean) if mean is not None else [0.0] * c, dtype=torch.float32).reshape(-1)
    s = torch.tensor(list(std) if std is not None else [1.0] * c, dtype=torch.float32).reshape(-1)
    if m.numel() == 1 and c > 1:
        m, s = m.expand(c).clone(), s.expand(c).clone()
    if m.numel() != c or s.numel() != c:
        raise ValueError(f"mean/std need {c} values (one per channel/feature), got {m.numel()} and {s.numel()}")
    return m, s


def uint8_scale_shift(mean: Optional[Sequence[float]], std: Optional[Sequence[float]],
                      sample_shape: Sequence[int], *, batch: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` float32 with ``x.float() * scale + shift == (x / 255 - mean) / std``.

    ``sample_shape`` is one sample's shape, channels (images) or features (vectors) first;
    ``mean``/``std`` hold one value per channel, or one value for all (None: mean 0, std 1,
    i.e. ``x / 255``). The constants have shape ``(C, 1, ...)`` broadcasting against one sample,
    or ``(1, C, 1, ...)`` against a batch when ``batch``. Raises ValueError when the number of
    values is neither 1 nor C."""
    c = int(sample_shape[0]) if len(sample_shape) else 1
    m, s = channel_constants(mean, std, c)
    view = ((1,) if batch else ()) + (c,) + (1,) * max(len(sample_shape) - 1, 0)
    return (1.0 / (255.0 * s)).view(view), (-m / s).view(view)
