"""Segmentation masks <-> Label Studio brush regions (RLE), with the SDK's own codec
(``label_studio_sdk.converter.brush``: ``mask2rle`` / ``decode_rle``).

A mask is a (H, W) uint8 array of class indices, 255 = unlabeled. Each class present becomes one
``brushlabels`` region whose RLE holds that class's pixels (RGBA, alpha 255 on the class).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .connection import require_sdk

__all__ = ["UNLABELED", "mask_to_regions", "regions_to_mask"]

UNLABELED = 255


def mask_to_regions(mask: np.ndarray, classes: Sequence[str], from_name: str, to_name: str) -> List[Dict[str, Any]]:
    """One ``brushlabels`` result per class present in ``mask`` ((H, W) uint8 class indices,
    255 = unlabeled): what a prediction (pre-annotation) carries."""
    require_sdk()
    from label_studio_sdk.converter.brush import mask2rle

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is (H, W), got shape {mask.shape}")
    height, width = mask.shape
    results = []
    for index in np.unique(mask):
        if int(index) == UNLABELED:
            continue
        if int(index) >= len(classes):
            raise ValueError(f"mask value {int(index)} is not a class index (classes: {len(classes)})")
        layer = np.where(mask == index, 255, 0).astype(np.uint8)
        results.append({"from_name": from_name, "to_name": to_name, "type": "brushlabels",
                        "original_width": int(width), "original_height": int(height), "image_rotation": 0,
                        "value": {"format": "rle", "rle": [int(v) for v in mask2rle(layer)],
                                  "brushlabels": [classes[int(index)]]}})
    return results


def regions_to_mask(results: Sequence[Dict[str, Any]], classes: Sequence[str], from_name: Optional[str] = None,
                    shape: Optional[Tuple[int, int]] = None) -> Tuple[Optional[np.ndarray], List[str]]:
    """(mask, problems) of one annotation's brush ``results`` (on ``from_name`` when given): each
    region's pixels get its class index, the rest 255. Problems: a class outside ``classes``, a
    region of a size other than ``shape`` / the others, pixels claimed by two classes. No brush
    region at all: (None, [])."""
    require_sdk()
    from label_studio_sdk.converter.brush import decode_rle

    index_of = {c: k for k, c in enumerate(classes)}
    regions = [r for r in results if isinstance(r, dict) and str(r.get("type", "")).lower() == "brushlabels"
               and (from_name is None or r.get("from_name") == from_name)]
    if not regions:
        return None, []
    problems: List[str] = []
    mask = None
    for region in regions:
        value = region.get("value") or {}
        names = value.get("brushlabels") or []
        if len(names) != 1 or names[0] not in index_of:
            problems.append(f"brush region labeled {names!r}: expected one of the classes {', '.join(classes)}")
            continue
        size = (int(region.get("original_height", -1)), int(region.get("original_width", -1)))
        if shape is not None and size != tuple(shape):
            problems.append(f"brush region {names[0]!r} is {size[1]}x{size[0]}, the image is {shape[1]}x{shape[0]}")
            continue
        if value.get("format", "rle") != "rle" or "rle" not in value:
            problems.append(f"brush region {names[0]!r} has no RLE")
            continue
        pixels = decode_rle(value["rle"])
        if pixels.size != size[0] * size[1] * 4:
            problems.append(f"brush region {names[0]!r}: RLE of {pixels.size} values for a {size[1]}x{size[0]} image")
            continue
        alpha = pixels.reshape(size[0], size[1], 4)[:, :, 3] > 128
        if mask is None:
            mask = np.full(size, UNLABELED, dtype=np.uint8)
        elif mask.shape != size:
            problems.append(f"brush regions of different sizes ({mask.shape} and {size})")
            continue
        clash = alpha & (mask != UNLABELED) & (mask != index_of[names[0]])
        if clash.any():
            problems.append(f"{int(clash.sum())} pixel(s) are painted {names[0]!r} and another class")
            continue
        mask[alpha] = index_of[names[0]]
    return (mask if not problems else None), problems
