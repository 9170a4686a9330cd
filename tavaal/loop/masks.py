"""Mask files as labels (segmentation): reading a folder of returned masks, storing them.

A label is a mask file with its image's path and stem (``images/a/b.jpg`` <-> ``MASKS/a/b.png``;
any of .png/.bmp/.tif/.pgm), the image's width and height, one channel ("L" or "P" PNG) of
class indices ``0..K-1`` and 255 for unlabeled pixels (decoded by
:func:`tavaal.data.imagefiles.read_mask`). Every merged mask is stored *inside* the work
directory as a class-index PNG ``WORKDIR/masks/<id stem>.png`` (so the annotators' folder may
change or disappear afterwards); ``state.json`` maps each labeled id to that file and keeps
the sha256 of its decoded labels and its per-class pixel counts.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..data.errors import CorruptDatasetError
from ..data.imagefiles import MASK_EXTENSIONS, identity_lookup, image_hw, read_mask
from ..losses import IGNORE_INDEX
from ..rundir import atomic_write_bytes
from .classes import check_class_list
from .errors import LoopError
from .state import MASKS_DIR

__all__ = ["MaskLabel", "read_mask_folder", "stored_mask_path", "write_masks", "check_mask_classes"]


@dataclass
class MaskLabel:
    """One checked mask: the pool ``id`` it labels, the decoded labels (``labels``, uint8 (H, W):
    class indices, 255 = unlabeled), their ``sha256`` and the per-class pixel counts (``pixels``,
    K ints)."""

    id: str
    labels: np.ndarray
    sha256: str
    pixels: List[int]


def _digest(labels: np.ndarray) -> str:
    h = hashlib.sha256(f"{labels.shape[0]}x{labels.shape[1]}:".encode())
    h.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _stem_key(rel: str) -> str:
    """``a/b.jpg`` -> ``a/b`` (the image <-> mask pairing key)."""
    return Path(rel).with_suffix("").as_posix()


def stored_mask_path(ident: str) -> str:
    """Where the mask of pool id ``ident`` is stored, relative to the work directory."""
    return f"{MASKS_DIR}/{_stem_key(ident)}.png"


def write_masks(root: Path, masks: Sequence[MaskLabel]) -> None:
    """Store ``masks`` as single-channel ("L") class-index PNGs under the work directory ``root``
    (each write atomic)."""
    for m in masks:
        target = root / stored_mask_path(m.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        png = io.BytesIO()
        Image.fromarray(m.labels, mode="L").save(png, format="PNG")
        atomic_write_bytes(target, png.getvalue())


def check_mask_classes(classes: Optional[Sequence[str]]) -> List[str]:
    """The class list of a mask work directory (mask value i = ``classes[i]``). Raises
    :class:`LoopError` when it is missing, has fewer than 2 or repeated names, or more than 255."""
    if classes is None:
        raise LoopError("--classes is required with --masks: mask value i is class i (give the names in that "
                        "order, comma-separated or @classes.txt with one per line)")
    names = [str(c) for c in classes]
    check_class_list(names)
    if len(names) > 255:
        raise LoopError(f"at most 255 classes fit 8-bit masks (255 = unlabeled), got {len(names)}")
    return names


def read_mask_folder(folder, source, num_classes: int, *,
                     existing: Optional[Dict[str, str]] = None) -> Tuple[Dict[str, MaskLabel], List[str]]:
    """Check every mask file under ``folder`` (recursive) against the image-folder pool
    ``source`` and the class list (values ``0..num_classes-1``, 255 = unlabeled).

    Returns (id -> :class:`MaskLabel` of the usable masks, problems): one line per mask without
    an image in the pool (or matching several images), per duplicate mask of one image, per
    mask of another size than its image, colour / multi-channel or undecodable mask, per mask
    with values outside the class list, and per id whose mask differs from the one already
    merged (``existing``: id -> sha256). Raises :class:`LoopError` when ``folder`` is not a
    folder or holds no mask file."""
    folder = Path(folder)
    if not folder.is_dir():
        hint = (" (a work directory with masks takes a FOLDER of mask PNGs named like the images, or pulls brush "
                "annotations from Label Studio: --label-studio URL --project ID)") if folder.is_file() else ""
        raise LoopError(f"masks folder {folder} does not exist or is not a folder{hint}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MASK_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise LoopError(f"masks folder {folder} holds no mask files ({'/'.join(e.lstrip('.') for e in MASK_EXTENSIONS)}"
                        "; single-channel class indices, named like their images)")
    by_stem: Dict[str, List[str]] = {}
    for ident in source.ids:
        by_stem.setdefault(_stem_key(ident), []).append(ident)
    lookup = identity_lookup(num_classes)
    existing = existing or {}
    accepted: Dict[str, MaskLabel] = {}
    problems: List[str] = []
    seen: Dict[str, Path] = {}
    for path in files:
        rel = path.relative_to(folder).as_posix()
        key = _stem_key(rel)
        images = by_stem.get(key, [])
        if not images:
            problems.append(f"{rel}: no image {key}.* in the pool (a mask must have the path and stem of a pool "
                            "image)")
            continue
        if len(images) > 1:
            problems.append(f"{rel}: matches several pool images ({', '.join(images)}); give them distinct stems")
            continue
        ident = images[0]
        if key in seen:
            problems.append(f"{rel}: a second mask for {ident} (also {seen[key].relative_to(folder).as_posix()})")
            continue
        seen[key] = path
        try:
            hw = image_hw(Path(source.path) / ident)
            labels = read_mask(path, lookup, None, expected_hw=hw).numpy()
        except CorruptDatasetError as exc:
            problems.append(str(exc))
            continue
        digest = _digest(labels)
        if ident in existing and existing[ident] != digest:
            problems.append(f"{rel}: {ident} is already labeled with a different mask; relabeling conflicts")
            continue
        valid = labels[labels != IGNORE_INDEX]
        pixels = np.bincount(valid.astype(np.int64), minlength=num_classes)[:num_classes]
        accepted[ident] = MaskLabel(ident, labels, digest, [int(v) for v in pixels])
    return accepted, problems
