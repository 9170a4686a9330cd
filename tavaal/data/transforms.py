"""Data augmentation and normalisation in plain torch (no torchvision needed).

All random transforms act on a ``(C, H, W)`` tensor (one sample) or a ``(B, C, H, W)`` batch
(independent draws per sample), and draw their randomness from a ``torch.Generator``:

* the one given at call time (``t(x, generator=g)``), else
* the one given to the constructor (``RandomHorizontalFlip(0.5, generator=g)``), else
* the global torch RNG (``torch.manual_seed``). This is the right default inside a
  ``DataLoader``: each worker's global RNG is seeded from the loader's base seed.

Same generator state -> same augmentation. :class:`Compose` forwards the call-time
generator to every transform.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["Compose", "Normalize", "RandomCropWithPadding", "RandomHorizontalFlip", "RandomResizedCrop", "Resize",
           "Augmented", "normalized_fill"]

Generator = torch.Generator | None


def as_tuple(v: float | Sequence[float]) -> tuple[float, ...]:
    """A scalar or a sequence as a tuple of floats (per-channel constants)."""
    return (float(v),) if isinstance(v, (int, float)) else tuple(float(x) for x in v)


def normalized_fill(mean: Sequence[float], std: Sequence[float]) -> tuple[float, ...]:
    """Per-channel value that a black raw pixel (0) takes after ``(0 - mean) / std``; the fill
    that reproduces zero-padding *before* Normalize."""
    return tuple((0.0 - m) / s for m, s in zip(as_tuple(mean), as_tuple(std)))


def pad_with_fill(x: torch.Tensor, fill: tuple[float, ...], top: int, left: int, height: int,
                  width: int) -> torch.Tensor:
    """``x`` (..., C, h, w) placed at (``top``, ``left``) of a ``height`` x ``width`` canvas filled
    with ``fill`` (one value or one per channel; ValueError otherwise)."""
    c, h, w = x.shape[-3:]
    if len(fill) not in (1, c):
        raise ValueError(f"fill has {len(fill)} values for {c} channels")
    padded = x.new_empty(x.shape[:-2] + (height, width))
    padded[:] = torch.tensor(fill, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    padded[..., top:top + h, left:left + w] = x
    return padded


def random_crops(tensors: Sequence[torch.Tensor], size: tuple[int, int], generator: Generator
                 ) -> list[torch.Tensor]:
    """The window ``size`` = (h, w) at one uniformly random position per sample (dim 0), the
    same for every tensor of ``tensors`` (batches of equal length and spatial size)."""
    th, tw = size
    h, w = tensors[0].shape[-2:]
    oy = torch.randint(0, h - th + 1, (tensors[0].shape[0],), generator=generator).tolist()
    ox = torch.randint(0, w - tw + 1, (tensors[0].shape[0],), generator=generator).tolist()
    return [torch.stack([t[k, ..., y0:y0 + th, x0:x0 + tw] for k, (y0, x0) in enumerate(zip(oy, ox))])
            for t in tensors]


def _check_image(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects a (C,H,W) or (B,C,H,W) tensor, got {shape}")


class Compose:
    """Apply transforms in order; a call-time generator is forwarded to each of them."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, generator: Generator = None):
        for t in self.transforms:
            x = _call(t, x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


def _call(t: Callable, x, generator: Generator):
    if generator is not None and isinstance(t, (RandomTransform, Compose)):
        return t(x, generator=generator)
    return t(x)


class Normalize:
    """``(x - mean) / std`` per channel (dim -3 of an image) or per feature (vectors)."""

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float):
        self.mean, self.std = as_tuple(mean), as_tuple(std)
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} entries but std has {len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() if not x.is_floating_point() else x
        m = torch.tensor(self.mean, dtype=x.dtype, device=x.device)
        s = torch.tensor(self.std, dtype=x.dtype, device=x.device)
        if x.dim() >= 3:  # images: channel axis is -3
            m, s = m.view(-1, 1, 1), s.view(-1, 1, 1)
        return (x - m) / s

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomTransform:
    """Base of the random augmentations: draws come from the call-time generator, else the
    constructor's, else torch's global RNG (the paired transforms build on it too)."""

    def __init__(self, generator: Generator = None):
        self.generator = generator

    def _gen(self, generator: Generator) -> Generator:
        return generator if generator is not None else self.generator

    def _draw(self, n: int, generator: Generator) -> torch.Tensor:
        return torch.rand(n, generator=self._gen(generator))


class RandomCropWithPadding(RandomTransform):
    """Pad by ``padding`` pixels on every side with ``fill``, then crop ``size`` at a uniformly
    random position (the CIFAR recipe: 32x32 crop of the 4-px zero-padded 40x40 image).

    ``fill`` is a scalar or one value per channel. The data sets apply this transform to
    *normalised* tensors, so their default fill is :func:`normalized_fill` (the value a raw
    black pixel has after normalisation), which equals zero-padding before ``Normalize`` as
    in the official code.
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 4,
                 fill: float | Sequence[float] = 0.0, generator: Generator = None):
        super().__init__(generator)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = int(padding)
        self.fill = as_tuple(fill)

    def __call__(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        _check_image(x, "RandomCropWithPadding")
        single = x.dim() == 3
        xb = x.unsqueeze(0) if single else x
        b, _, h, w = xb.shape
        p = self.padding
        th, tw = self.size
        hp, wp = h + 2 * p, w + 2 * p
        if th > hp or tw > wp:
            raise ValueError(f"crop size {self.size} larger than padded image {(hp, wp)}")
        padded = pad_with_fill(xb, self.fill, p, p, hp, wp)
        gen = self._gen(generator)
        oy = torch.randint(0, hp - th + 1, (b,), generator=gen)
        ox = torch.randint(0, wp - tw + 1, (b,), generator=gen)
        if b == 1:
            out = padded[:, :, int(oy):int(oy) + th, int(ox):int(ox) + tw]
        else:
            # one gather for the batch; its strides (a channels-last-like layout when C == 1) steer
            # the convolution kernels, so the results depend on them: keep this form
            rows = (oy[:, None] + torch.arange(th))[:, :, None]  # (B, th, 1)
            cols = (ox[:, None] + torch.arange(tw))[:, None, :]  # (B, 1, tw)
            bi = torch.arange(b)[:, None, None]
            out = padded.permute(0, 2, 3, 1)[bi, rows, cols].permute(0, 3, 1, 2)
        out = out.contiguous()
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"RandomCropWithPadding(size={self.size}, padding={self.padding}, fill={self.fill})"


class RandomHorizontalFlip(RandomTransform):
    """Mirror the last (width) axis with probability ``p``."""

    def __init__(self, p: float = 0.5, generator: Generator = None):
        super().__init__(generator)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)

    def _flip(self, tensors: Sequence[torch.Tensor], batch: bool, generator: Generator) -> list[torch.Tensor]:
        """Mirror every tensor of ``tensors`` with one draw (per sample of a ``batch``)."""
        if not batch:
            return [t.flip(-1) for t in tensors] if float(self._draw(1, generator)) < self.p else list(tensors)
        flip = self._draw(tensors[0].shape[0], generator) < self.p
        outs = [t.clone() for t in tensors]
        if bool(flip.any()):
            for out, t in zip(outs, tensors):
                out[flip] = t[flip].flip(-1)
        return outs

    def __call__(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        _check_image(x, "RandomHorizontalFlip")
        return self._flip([x], x.dim() == 4, generator)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomResizedCrop(RandomTransform):
    """torchvision-style random resized crop on a tensor: a region with area fraction in
    ``scale`` and aspect ratio in ``ratio`` is cropped and resized (bilinear) to ``size``
    (default: the input size)."""

    def __init__(self, size: int | tuple[int, int] | None = None,
                 scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), generator: Generator = None):
        super().__init__(generator)
        self.size = (size, size) if isinstance(size, int) else (tuple(size) if size else None)
        self.scale = scale
        self.ratio = ratio

    def _box(self, h: int, w: int, gen: Generator) -> tuple[int, int, int, int]:
        area = h * w
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            u = torch.rand(2, generator=gen).tolist()
            target = area * (self.scale[0] + u[0] * (self.scale[1] - self.scale[0]))
            ar = math.exp(log_r[0] + u[1] * (log_r[1] - log_r[0]))
            cw = int(round(math.sqrt(target * ar)))
            ch = int(round(math.sqrt(target / ar)))
            if 0 < cw <= w and 0 < ch <= h:
                i = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
                j = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
                return i, j, ch, cw
        # fallback: central crop with the ratio clamped
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            cw, ch = w, int(round(w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            ch, cw = h, int(round(h * self.ratio[1]))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        _check_image(x, "RandomResizedCrop")
        single = x.dim() == 3
        xb = x.unsqueeze(0) if single else x
        h, w = xb.shape[-2:]
        size = self.size or (h, w)
        gen = self._gen(generator)
        outs = []
        for k in range(xb.shape[0]):
            i, j, ch, cw = self._box(h, w, gen)
            crop = xb[k:k + 1, :, i:i + ch, j:j + cw].float()
            outs.append(F.interpolate(crop, size=size, mode="bilinear", align_corners=False))
        out = torch.cat(outs).to(x.dtype)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class Resize:
    """Resize a PIL image to ``size`` (int -> square ``size x size``, or ``(H, W)``)."""

    def __init__(self, size: int | tuple[int, int], interpolation: str = "bilinear"):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.interpolation = interpolation

    def __call__(self, img):
        from PIL import Image

        modes = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                 "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
        h, w = self.size
        if img.size == (w, h):
            return img
        return img.resize((w, h), modes[self.interpolation])

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, interpolation={self.interpolation!r})"


class Augmented(Dataset):
    """Dataset wrapper applying ``augment`` to ``x`` of each ``(x, y)`` item.

    ``augment=None`` passes items through unchanged. Randomness comes from ``generator`` when
    given (then do not use several DataLoader workers: they would share its sequence), else
    from the global torch RNG."""

    def __init__(self, dataset: Dataset, augment: Callable | None,
                 generator: torch.Generator | None = None):
        self.dataset = dataset
        self.augment = augment
        self.generator = generator

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index):
        x, y = self.dataset[index]
        if self.augment is not None:
            x = _call(self.augment, x, self.generator)
        return x, y

    def __repr__(self) -> str:
        return f"Augmented({self.dataset!r}, {self.augment!r})"
