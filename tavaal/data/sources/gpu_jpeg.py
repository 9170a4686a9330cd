"""JPEG decoding on the GPU for image folders (nvJPEG through torchvision).

Where ``torchvision.io.decode_jpeg(..., device="cuda")`` is importable and a GPU is visible,
:func:`decode_jpegs` reads a batch of files on the CPU (bytes only), decodes the JPEGs among
them on the GPU in one batched call and resizes them there, so the CPU cores only read files.
Files that are not JPEGs (by their magic bytes) and JPEGs that nvJPEG rejects (CMYK, some
progressive variants, truncated files) are decoded on the CPU by
:func:`tavaal.data.imagefiles.decode_image`, or reported as unreadable exactly as there.

Pixels: the same channel conversion and size as ``decode_image``, resized bilinearly with
antialiasing by torch on the GPU; nvJPEG's IDCT and torch's resize are not Pillow's, so pixels
differ from the CPU decode by a few levels (scores agree to rounding, not bits). The CPU decode
stays the reference.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..imagefiles import decode_image

__all__ = ["gpu_jpeg_unavailable", "is_jpeg", "decode_jpegs", "JPEG_MAGIC"]

JPEG_MAGIC = b"\xff\xd8\xff"  # SOI marker + the first segment's marker byte


def gpu_jpeg_unavailable(device: Optional[torch.device] = None) -> Optional[str]:
    """None when JPEGs can be decoded on ``device`` (default: the current CUDA device), else
    why not (no visible GPU, torchvision missing or without GPU decode)."""
    if device is not None and torch.device(device).type != "cuda":
        return f"device {device} is not a CUDA device"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to torch"
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except Exception as exc:  # ImportError, or a torchvision built against another torch
        return f"torchvision.io.decode_jpeg is not importable ({type(exc).__name__}: {exc})"
    return None


def is_jpeg(data: bytes) -> bool:
    """Whether file contents start like a JPEG (whatever the file's extension)."""
    return data[:3] == JPEG_MAGIC


def decode_jpegs(paths: Sequence[os.PathLike], size: Tuple[int, int], channels: int = 3,
                 device: Optional[torch.device] = None) -> Tuple[List[int], torch.Tensor, List[dict]]:
    """Decode ``paths`` to ``(good, x, skipped)``: ``x`` a uint8 (len(good), channels, H, W)
    tensor on ``device`` (default: the current CUDA device), row k holding ``paths[good[k]]``
    in the order of ``paths``; ``skipped``: ``{"index", "path", "error"}`` for the files neither
    the GPU nor the CPU decoder could read. ``size`` = (H, W); ``channels`` 3 (RGB) or 1.

    Raises RuntimeError naming the reason when GPU decoding is unavailable
    (:func:`gpu_jpeg_unavailable`) and ValueError for ``channels`` other than 1 or 3."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    why = gpu_jpeg_unavailable(device)
    if why is not None:
        raise RuntimeError(f"GPU JPEG decoding is unavailable: {why}; decode on the CPU instead")
    from torchvision.io import ImageReadMode, decode_jpeg

    dev = torch.device(device) if device is not None else torch.device("cuda", torch.cuda.current_device())
    h, w = int(size[0]), int(size[1])
    datas: List[Optional[bytes]] = []
    skipped: List[dict] = []
    for k, p in enumerate(paths):
        try:
            datas.append(Path(p).read_bytes())
        except OSError as exc:
            datas.append(None)
            skipped.append({"index": k, "path": str(p), "error": f"{type(exc).__name__}: {exc}"})
    out: List[Optional[torch.Tensor]] = [None] * len(datas)
    jpeg = [k for k, d in enumerate(datas) if d is not None and is_jpeg(d)]
    on_cpu = [k for k, d in enumerate(datas) if d is not None and not is_jpeg(d)]
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    if jpeg:
        encoded = [torch.frombuffer(bytearray(datas[k]), dtype=torch.uint8) for k in jpeg]
        try:
            decoded = decode_jpeg(encoded, mode=mode, device=dev)
        except Exception:  # noqa: BLE001 - one bad file fails the batch: one by one, the rest on the CPU
            decoded = []
            for e in encoded:
                try:
                    decoded.append(decode_jpeg(e, mode=mode, device=dev))
                except Exception:  # noqa: BLE001 - nvJPEG rejects it: the CPU decoder decides
                    decoded.append(None)
        for k, img in zip(jpeg, decoded):
            if img is None:
                on_cpu.append(k)
            else:
                out[k] = _resize(img, h, w)
    for k in sorted(on_cpu):
        try:
            out[k] = decode_image(paths[k], (h, w), channels).to(dev, non_blocking=True)
        except Exception as exc:  # noqa: BLE001 - the CPU decoder's verdict: unreadable
            skipped.append({"index": k, "path": str(paths[k]), "error": f"{type(exc).__name__}: {exc}"})
    good = [k for k, t in enumerate(out) if t is not None]
    x = torch.stack([out[k] for k in good]) if good else torch.empty((0, channels, h, w), dtype=torch.uint8, device=dev)
    skipped.sort(key=lambda s: s["index"])
    return good, x, skipped


def _resize(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(C, h0, w0) uint8 on the GPU -> (C, h, w) uint8, bilinear with antialiasing (as PIL's)."""
    if img.shape[1:] == (h, w):
        return img
    y = F.interpolate(img[None].float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return y[0].round_().clamp_(0, 255).to(torch.uint8)
