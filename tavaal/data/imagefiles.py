"""Image and mask files: the one image decoder, the one mask decoder and their extension lists.

Every reader of image files (the class-folder and segmentation data sets, the image-folder row
source, the labeling loop's mask folders) decodes through :func:`decode_image` and
:func:`read_mask` and recognises files by :data:`IMAGE_EXTENSIONS` / :data:`MASK_EXTENSIONS`.

Resize policy (one for the whole package): :func:`decode_image` converts to the requested
channels (PIL ``convert("L")`` or ``convert("RGB")``; alpha is dropped, palettes expanded) and
then resizes *plainly* to (H, W) with bilinear interpolation -- the aspect ratio is not kept and
nothing is padded or cropped. Masks are resized with nearest-neighbour interpolation.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..losses import IGNORE_INDEX
from .errors import CorruptDatasetError
from .transforms import Resize

__all__ = ["IMAGE_EXTENSIONS", "MASK_EXTENSIONS", "decode_image", "image_hw", "image_mode", "parse_hw",
           "read_mask", "identity_lookup", "is_image_file"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".pgm")

PathLike = Union[str, Path]


def is_image_file(name: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> bool:
    """True for a visible file name (no leading ".") with one of ``extensions`` (any case)."""
    return not name.startswith(".") and Path(name).suffix.lower() in extensions


def _decode_errors():
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def decode_image(path: PathLike, size: Optional[Tuple[int, int]], channels: int = 3) -> torch.Tensor:
    """Decode ``path`` to a uint8 (C, H, W) tensor (``channels`` 3: RGB, 1: grayscale),
    bilinearly resized to ``size`` = (H, W) if given (see the module's resize policy); a
    writable array. Raises :class:`CorruptDatasetError` naming the file when PIL cannot decode
    it (truncated, empty, not an image) and ValueError for ``channels`` other than 1 or 3."""
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if size is not None:
                img = Resize(size)(img)
            arr = np.atleast_3d(np.array(img, dtype=np.uint8))  # a writable copy (asarray of PIL is read-only)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    except _decode_errors() as exc:
        raise CorruptDatasetError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})",
                                  path) from exc


def image_hw(path: PathLike) -> Tuple[int, int]:
    """(H, W) of an image file read from its header (no decoding). Raises
    :class:`CorruptDatasetError` naming the file when the header cannot be read."""
    return image_mode(path)[1:]


def image_mode(path: PathLike) -> Tuple[int, int, int]:
    """``(channels, H, W)`` an image file decodes to by default, from its header: 1 for
    grayscale modes ("L", "LA", "1", "I", "F" and the 16-bit "I;16" variants), 3 for everything else (RGB,
    RGBA, P, CMYK, ...). Raises :class:`CorruptDatasetError` like :func:`image_hw`."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            gray = img.mode in ("L", "LA", "La", "1", "I", "F") or img.mode.startswith("I;")
            return (1 if gray else 3), int(h), int(w)
    except _decode_errors() as exc:
        raise CorruptDatasetError(f"{path}: cannot read the image header ({type(exc).__name__}: {exc})",
                                  path) from exc


def parse_hw(size) -> Optional[Tuple[int, int]]:
    """An image size option as (H, W): None stays None; an int ``S`` is (S, S); a string
    ``"HxW"`` / ``"H,W"`` or a sequence of one or two ints. Raises ValueError otherwise."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if isinstance(size, str):
        parts = size.lower().replace("x", ",").split(",")
        size = [int(p) for p in parts if p.strip()]
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be an int or (H, W), got {size}")
    return size


def identity_lookup(num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Mask value -> label table for masks holding class indices: ``0..K-1`` map to themselves,
    ``ignore_index`` to itself, every other value to -1 (= not allowed)."""
    if not 1 <= int(num_classes) <= 255:
        raise ValueError(f"segmentation masks hold 8-bit values: num_classes must be in [1, 255], got {num_classes}")
    table = np.full(256, -1, dtype=np.int16)
    table[: int(num_classes)] = np.arange(int(num_classes))
    table[ignore_index] = ignore_index
    return table


def read_mask(path: PathLike, lookup: np.ndarray, size: Optional[Tuple[int, int]] = None,
              expected_hw: Optional[Tuple[int, int]] = None, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Decode a single-channel mask to uint8 labels (H, W) through ``lookup`` (256 entries;
    -1 = value not allowed), checking its size against ``expected_hw`` (the image's (H, W)),
    then resizing (nearest) to ``size``. Raises :class:`CorruptDatasetError` naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            mode = img.mode
            raw = np.asarray(img) if mode in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1") else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptDatasetError(f"{path}: cannot decode mask ({type(exc).__name__}: {exc})", path) from exc
    if raw is None:
        raise CorruptDatasetError(f"{path}: masks must be single-channel PNGs of class indices (mode 'L' or 'P'), got "
                                  f"mode {mode!r} (colour-coded masks must be converted to class indices first)", path)
    if raw.ndim != 2:
        raise CorruptDatasetError(f"{path}: mask must be 2-D (H, W), got shape {raw.shape}", path)
    if expected_hw is not None and tuple(raw.shape) != tuple(expected_hw):
        raise CorruptDatasetError(
            f"{path}: mask is {raw.shape[1]}x{raw.shape[0]} (WxH) but its image is {expected_hw[1]}x{expected_hw[0]}",
            path)
    raw = raw.astype(np.int64)
    if raw.size and (raw.min() < 0 or raw.max() > 255):
        raise CorruptDatasetError(f"{path}: mask values must be 8-bit (0..255), found range [{raw.min()}, {raw.max()}]",
                                  path)
    labels = lookup[raw]
    if (labels < 0).any():
        bad = np.unique(raw[labels < 0])
        allowed = np.flatnonzero(lookup >= 0)
        shown = ", ".join(str(v) for v in bad[:20]) + (f" (+{len(bad) - 20} more)" if len(bad) > 20 else "")
        raise CorruptDatasetError(
            f"{path}: mask values {shown} are outside the class list (allowed values: "
            f"{_ranges(allowed)}; {ignore_index} marks unlabeled pixels)", path)
    out = torch.from_numpy(labels.astype(np.uint8))
    if size is not None and tuple(out.shape) != tuple(size):
        out = F.interpolate(out[None, None].float(), size=size, mode="nearest")[0, 0].to(torch.uint8)
    return out


def _ranges(values: np.ndarray) -> str:
    """'0-18, 255' style listing of sorted ints."""
    parts = []
    for _, run in itertools.groupby(enumerate(values), key=lambda item: item[1] - item[0]):
        run = [v for _, v in run]
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(parts)
