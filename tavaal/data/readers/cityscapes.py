"""Cityscapes (Cordts et al. 2016) for semantic segmentation, TA-VAAL §4.4 (``--dataset cityscapes``).

Expected layout (the official ``leftImg8bit_trainvaltest.zip`` + ``gtFine_trainvaltest.zip``
extracted into one folder)::

    ROOT/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    ROOT/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

``ROOT`` is ``data_dir``, ``$TAVAAL_DATA_DIR`` or ``./data`` (also tried: ``<that>/cityscapes``).
The 2,975 ``train`` images are the pool, the 500 ``val`` images the test set (the public
``test`` split has no labels). Label ids are mapped to the 19 training classes of the
benchmark (and of DRN and the paper); every other id (void, unlabeled, ego vehicle,
parking, rail track, guard rail, bridge, tunnel, pole group, caravan, trailer, ...) becomes 255
and is ignored by the loss and the metrics. A mask value above 33 is not a Cityscapes label
id and raises :class:`CorruptDatasetError`. ``label_files="labelTrainIds"`` reads
``*_gtFine_labelTrainIds.png`` files made by cityscapesScripts instead (values 0-18, 255).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...losses import IGNORE_INDEX
from ..bundle import DatasetBundle
from ..errors import DatasetNotFoundError
from ..imagefiles import identity_lookup, parse_hw
from ._common import data_root, folder_stats
from .segfolder import pair_files, segmentation_bundle

__all__ = ["CITYSCAPES_CLASSES", "LABEL_TO_TRAIN_ID", "cityscapes_lookup", "find_cityscapes", "load_cityscapes"]

CITYSCAPES_URL = "https://www.cityscapes-dataset.com/downloads/"

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")

# labelId -> trainId of the 19 evaluated classes (cityscapesScripts' labels.py); the other
# ids 0..33 map to 255 (ignored).
LABEL_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                     26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
NUM_LABEL_IDS = 34  # ids 0 .. 33 exist in *_labelIds.png (license plate, -1, is not stored)


def cityscapes_lookup(label_files: str = "labelIds") -> np.ndarray:
    """256-entry table mask value -> train id (255 = ignore, -1 = not a valid value)."""
    if label_files == "labelTrainIds":
        return identity_lookup(len(CITYSCAPES_CLASSES))
    if label_files != "labelIds":
        raise ValueError(f"cityscapes: label_files must be 'labelIds' or 'labelTrainIds', got {label_files!r}")
    table = np.full(256, -1, dtype=np.int16)
    table[:NUM_LABEL_IDS] = IGNORE_INDEX
    for label_id, train_id in LABEL_TO_TRAIN_ID.items():
        table[label_id] = train_id
    return table


def find_cityscapes(data_dir) -> Path:
    """The folder holding ``leftImg8bit/`` and ``gtFine/``; raises DatasetNotFoundError saying what to get."""
    root = data_root(data_dir)
    for cand in (root, root / "cityscapes", root / "Cityscapes"):
        if (cand / "leftImg8bit").is_dir() and (cand / "gtFine").is_dir():
            return cand
    raise DatasetNotFoundError(
        f"cityscapes: expected {root}/leftImg8bit/{{train,val}}/<city>/*_leftImg8bit.png and "
        f"{root}/gtFine/{{train,val}}/<city>/*_gtFine_labelIds.png (or the same under {root / 'cityscapes'}); "
        f"download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from {CITYSCAPES_URL} "
        f"(free registration) and extract both into {root}",
        [str(root / "leftImg8bit"), str(root / "gtFine")])


def _split(root: Path, split: str, label_files: str) -> tuple[list[Path], list[Path]]:
    image_dir, mask_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    missing = [str(d) for d in (image_dir, mask_dir) if not d.is_dir()]
    if missing:
        raise DatasetNotFoundError(f"cityscapes: the {split!r} split is missing: {', '.join(missing)}", missing)
    suffix = f"_gtFine_{label_files}"
    images, masks = pair_files(image_dir, mask_dir, mask_name=lambda stem: stem.removesuffix("_leftImg8bit") + suffix,
                               image_glob="*_leftImg8bit.png", mask_glob=f"*{suffix}.png", name="cityscapes")
    if not images:
        raise DatasetNotFoundError(f"cityscapes: no *_leftImg8bit.png images in {image_dir}/<city>/", [str(image_dir)])
    return images, masks


def load_cityscapes(data_dir=None, seed: int = 0, *, image_size=None, crop_size=412,
                    label_files: str = "labelIds", normalization: str = "default", mean=None, std=None,
                    augment="default", validate: bool = False, cache: bool = False) -> DatasetBundle:
    """Cityscapes train (pool) / val (test) with the 19 train ids (module docstring).

    Options: ``image_size`` (resize every pair to (H, W), e.g. (512, 1024); default native),
    ``crop_size`` (random paired training crops, 412 as the paper's Table 1; None = whole
    images), ``label_files`` ("labelIds" or "labelTrainIds"), ``normalization``/``mean``/
    ``std`` (ImageNet statistics by default), ``augment`` ("default" = crop + flip),
    ``validate`` (decode every file up front), ``cache`` (keep decoded pairs in memory).
    ``seed`` is unused (the split is fixed)."""
    root = find_cityscapes(data_dir)
    lookup = cityscapes_lookup(label_files)
    m, s = folder_stats("cityscapes", normalization, mean, std)
    size = parse_hw(image_size)
    return segmentation_bundle("cityscapes", _split(root, "train", label_files), _split(root, "val", label_files),
                               lookup, CITYSCAPES_CLASSES, image_size=size, mean=m, std=s, augment=augment,
                               crop_size=crop_size, validate=validate, cache=cache,
                               info={"source": str(root), "split": "train/val", "label_files": label_files})
