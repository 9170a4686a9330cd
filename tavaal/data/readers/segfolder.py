"""Segmentation data: images with per-pixel label masks (``--dataset segfolder``), and the
splits and bundle every segmentation reader (Cityscapes included) builds on.

Layout of a segfolder root (the format most users have)::

    ROOT/images/<name>.jpg|png|...     ROOT/masks/<name>.png        (seeded train/test split)
    ROOT/train/{images,masks}/...      ROOT/test/{images,masks}/... (explicit split)
    ROOT/classes.txt                   one class name per line (or pass classes=...)

A mask has the image's file *stem* (``images/a/b.jpg`` <-> ``masks/a/b.png``; sub-folders are
allowed and mirrored), the image's width and height, and one channel ("L" grayscale or "P"
palette PNG) whose values are class indices ``0 .. K-1``; 255 marks unlabeled pixels
(ignored by the loss and the metrics).

Errors: images without a mask and masks without an image (:class:`DatasetNotFoundError`, listing
them, up front); masks of another size than their image (checked up front from the file headers),
multi-channel masks and values outside the class list (checked when a mask is decoded, or for all
masks up front with ``validate=True``): :class:`CorruptDatasetError` naming the file and the values.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ...losses import IGNORE_INDEX
from ..bundle import DatasetBundle
from ..defaults import augment_recipe
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ..imagefiles import MASK_EXTENSIONS, identity_lookup, image_hw, is_image_file, parse_hw
from ..sources import ImageFolderSource, MaskSourceDataset
from ..seg_transforms import PairedCompose, PairedRandomCrop, PairedRandomHorizontalFlip
from ..transforms import normalized_fill
from ._common import folder_stats

log = logging.getLogger(__name__)

__all__ = ["segmentation_split", "validate_split", "pair_sizes", "load_segfolder", "segmentation_augment",
           "pair_files", "SEG_AUGMENTS"]

SEG_AUGMENTS = ("default", "none", "flip", "crop", "crop+flip")


def _some(items: Sequence[str], sep: str, more: str, n: int = 20) -> str:
    """The first ``n`` of ``items`` joined by ``sep``, then ``<more>... and K more`` for the rest."""
    return sep.join(items[:n]) + (f"{more}... and {len(items) - n} more" if len(items) > n else "")


def pair_sizes(images: Sequence[Path], masks: Sequence[Path]) -> list[tuple[int, int]]:
    """(H, W) of every image from the file headers; raises :class:`CorruptDatasetError` listing
    the masks whose size differs from their image's."""
    sizes, bad = [], []
    for img, mask in zip(images, masks):
        hw, mhw = image_hw(img), image_hw(mask)
        if hw != mhw:
            bad.append(f"  {mask}: {mhw[1]}x{mhw[0]} but {Path(img).name} is {hw[1]}x{hw[0]} (WxH)")
        sizes.append(hw)
    if bad:
        raise CorruptDatasetError(f"{len(bad)} mask(s) differ in size from their image:\n" + _some(bad, "\n", "\n  "),
                                  paths=[line.split(":")[0].strip() for line in bad])
    return sizes


def segmentation_split(images: Sequence[Path], masks: Sequence[Path], lookup: np.ndarray, *,
                       image_size: tuple[int, int] | None, mean: Sequence[float], std: Sequence[float],
                       cache: bool = False, hw: tuple[int, int] | None = None) -> MaskSourceDataset:
    """One split of image files with label masks, read by the one image-folder reader: the
    :class:`~tavaal.data.sources.ImageFolderSource` of ``images`` (rows in that order) decoded to
    RGB (H, W) and the training view :class:`~tavaal.data.sources.MaskSourceDataset` with every
    row's mask (values through the 256-entry ``lookup``; resized nearest; 255 = unlabeled). A
    benchmark data set is strict: an unreadable pair raises (``on_unreadable="error"``).

    (H, W) is ``image_size``, else the images' common size from their headers, else (no images)
    ``hw``: ValueError when the sizes differ (pass image_size), :class:`CorruptDatasetError` for a
    mask whose size differs from its image's. ``cache`` keeps decoded images in memory."""
    sizes = pair_sizes(images, masks)
    if image_size is not None:
        hw = (int(image_size[0]), int(image_size[1]))
    elif sizes:
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            raise ValueError(f"images have {len(distinct)} different sizes (e.g. {distinct[0]} and {distinct[-1]}, "
                             "as (H, W)); pass image_size=(H, W) to resize them all")
        hw = distinct[0]
    root = Path(os.path.commonpath([str(Path(p).parent) for p in images])) if images else Path(".")
    source = ImageFolderSource(root, (3,) + tuple(hw), files=list(images), cache=cache)
    return MaskSourceDataset(source, mean, std, masks={row: Path(m) for row, m in enumerate(masks)},
                             lookup=lookup, ignore_index=IGNORE_INDEX, on_unreadable="error")


def validate_split(view: MaskSourceDataset) -> None:
    """Decode every image and mask of a split once; raise :class:`CorruptDatasetError` listing
    every unreadable or invalid pair."""
    try:
        view.drop_unreadable(np.arange(len(view)), progress=False)
    except CorruptDatasetError:
        pass  # every bad pair is in view.skipped, listed below
    bad = [f"{s['id']}: {s['error']}" for s in view.skipped]
    if bad:
        raise CorruptDatasetError(f"{len(bad)} unreadable or invalid image/mask pair(s):\n  "
                                  + _some(bad, "\n  ", "\n  "))


def pair_files(image_dir: Path, mask_dir: Path, mask_name=None, image_glob: str = "*", mask_glob: str = "*",
               name: str = "segfolder") -> tuple[list[Path], list[Path]]:
    """Images under ``image_dir`` (recursive, sorted) and their masks under ``mask_dir``.

    The mask of ``image_dir/sub/x.jpg`` is ``mask_dir/sub/<mask_name("x")>.<ext>`` (default
    ``mask_name`` = identity: same stem, any mask extension). Only files matching
    ``image_glob`` / ``mask_glob`` are considered. Raises :class:`DatasetNotFoundError`
    listing images without a mask and masks without an image."""
    mask_name = mask_name or (lambda stem: stem)
    images = sorted(p for p in image_dir.rglob(image_glob) if p.is_file() and is_image_file(p.name))
    masks_by_key = {}
    for m in sorted(mask_dir.rglob(mask_glob)):
        if m.is_file() and is_image_file(m.name, MASK_EXTENSIONS):
            masks_by_key.setdefault(m.relative_to(mask_dir).with_suffix("").as_posix(), m)
    keys = [(img.relative_to(image_dir).parent / mask_name(img.stem)).as_posix() for img in images]
    missing = [str(img) for img, key in zip(images, keys) if key not in masks_by_key]
    used = set(keys)
    orphans = [str(m) for k, m in masks_by_key.items() if k not in used]
    problems = []
    if missing:
        first_expected = mask_dir / f"{next(k for k in keys if k not in masks_by_key)}.png"
        problems.append(f"{len(missing)} image(s) without a mask (looked for e.g. {first_expected}, or another "
                        f"{'/'.join(e.lstrip('.') for e in MASK_EXTENSIONS)} file of that stem): "
                        + _some(missing, ", ", " "))
    if orphans:
        problems.append(f"{len(orphans)} mask(s) without an image in {image_dir}: " + _some(orphans, ", ", " "))
    if problems:
        raise DatasetNotFoundError(f"{name}: mismatched image/mask files:\n  " + "\n  ".join(problems),
                                   missing + orphans)
    return images, [masks_by_key[k] for k in keys]


def segmentation_augment(spec, crop_size, mean: Sequence[float], std: Sequence[float], name: str = "dataset"):
    """The paired training augmentation for the ``augment`` option: "default" (= "crop+flip"
    when ``crop_size`` is set, else "flip"), "flip", "crop", "crop+flip", "none"/False, or a
    paired callable. Crops pad with black (normalised) pixels and 255 (unlabeled) labels."""
    if callable(spec):
        if not getattr(spec, "paired", False):
            raise ValueError(f"{name}: a segmentation augment must take (x, mask) and set .paired = True")
        return spec
    spec = augment_recipe(spec, "crop+flip" if crop_size else "flip", SEG_AUGMENTS,
                          f"one of {SEG_AUGMENTS} or a paired callable", name)
    if spec is None:
        return None
    parts = []
    if "crop" in spec:
        if not crop_size:
            raise ValueError(f"{name}: augment={spec!r} needs crop_size")
        parts.append(PairedRandomCrop(crop_size, fill=normalized_fill(mean, std)))
    if "flip" in spec:
        parts.append(PairedRandomHorizontalFlip(0.5))
    return parts[0] if len(parts) == 1 else PairedCompose(parts)


def segmentation_bundle(name: str, train_pairs, test_pairs, lookup: np.ndarray, classes: Sequence[str], *,
                        image_size: tuple[int, int] | None, mean: Sequence[float], std: Sequence[float], augment,
                        crop_size, validate: bool, cache: bool, info: dict) -> DatasetBundle:
    """The splits of the ``(images, masks)`` file lists ``train_pairs`` / ``test_pairs``
    (:func:`segmentation_split`; the test split at the training (H, W) unless ``image_size``),
    every file checked with ``validate``, as a bundle; ``mean``/``std`` are recorded as given.

    ``input_shape`` is the (C, H, W) of un-augmented items (what selection and the WAE see);
    training batches are ``crop_size`` crops when cropping is on. ``train_targets`` is empty:
    segmentation has no per-image class."""
    train = segmentation_split(*train_pairs, lookup, image_size=image_size, mean=mean, std=std, cache=cache)
    hw = tuple(train.sample_shape[1:])
    test = segmentation_split(*test_pairs, lookup, image_size=image_size, mean=mean, std=std, cache=cache, hw=hw)
    test_hw = tuple(test.sample_shape[1:]) if len(test) else hw
    if validate:
        validate_split(train)
        validate_split(test)
    crop = parse_hw(crop_size)
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    aug = segmentation_augment(augment, crop, mean, std, name=name)
    log.info("%s: %d train / %d test image+mask pairs, %d classes, %dx%d (HxW)", name, len(train), len(test),
             len(classes), hw[0], hw[1])
    info = {**info, "task": "segmentation", "image_size": list(hw), "test_image_size": list(test_hw),
            "crop_size": None if crop is None else list(crop), "ignore_index": train.ignore_index}
    return DatasetBundle(name=name, train=train, test=test, num_classes=len(classes), input_shape=(3,) + tuple(hw),
                         augment=aug, train_targets=np.zeros(0, dtype=np.int64), mean=mean, std=std,
                         classes=tuple(classes), info=info)


def _read_classes(root: Path, classes) -> list[str]:
    if classes is None:
        path = root / "classes.txt"
        if not path.is_file():
            raise DatasetNotFoundError(
                f"segfolder: name the classes: pass classes='road,car,...' (or a list, or their number) or write "
                f"{path} with one class name per line (mask value i = line i)", [str(path)])
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    elif isinstance(classes, (int, np.integer)):
        names = [str(i) for i in range(int(classes))]
    elif isinstance(classes, str):
        names = [c.strip() for c in classes.split(",") if c.strip()]
    else:
        names = [str(c) for c in classes]
    if not names:
        raise ValueError("segfolder: the class list is empty")
    if len(names) > 255:
        raise ValueError(f"segfolder: at most 255 classes fit 8-bit masks (255 = ignore), got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"segfolder: duplicate class names in {names}")
    return names


def load_segfolder(data_dir=None, seed: int = 0, *, classes=None, image_size=None, crop_size=None,
                   test_fraction: float = 0.2, images_dir: str = "images", masks_dir: str = "masks",
                   normalization: str = "default", mean=None, std=None, augment="default",
                   validate: bool = False, cache: bool = False) -> DatasetBundle:
    """Images + same-named label masks at ``data_dir`` (layout in the module docstring).

    Options: ``classes`` (names, comma string or count; default ``classes.txt``),
    ``image_size`` (resize every pair to (H, W); required when sizes differ), ``crop_size``
    (random training crops, paired with the mask), ``test_fraction`` (seeded split when there
    are no train/ and test/ folders), ``images_dir``/``masks_dir`` (folder names),
    ``normalization``/``mean``/``std`` (ImageNet statistics by default), ``augment``
    ("default" = crop (if crop_size) + horizontal flip), ``validate`` (decode everything up
    front), ``cache`` (keep decoded pairs in memory)."""
    if data_dir is None:
        raise DatasetNotFoundError("segfolder: pass data_dir=<root> holding images/ and masks/ (same file stems)")
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise DatasetNotFoundError(f"segfolder: expected a folder {root} holding {images_dir}/ and {masks_dir}/ "
                                   f"(or train/ and test/ with both)", [str(root)])
    names = _read_classes(root, classes)
    lookup = identity_lookup(len(names))
    m, s = folder_stats("segfolder", normalization, mean, std)
    size = parse_hw(image_size)
    split_dirs = (root / "train" / images_dir).is_dir() and (root / "test" / images_dir).is_dir()
    if split_dirs:
        train = pair_files(root / "train" / images_dir, root / "train" / masks_dir)
        test = pair_files(root / "test" / images_dir, root / "test" / masks_dir)
    else:
        for d in (images_dir, masks_dir):
            if not (root / d).is_dir():
                raise DatasetNotFoundError(f"segfolder: expected {root / d}/ (images in {images_dir}/, label masks "
                                           f"with the same stems in {masks_dir}/)", [str(root / d)])
        img, msk = pair_files(root / images_dir, root / masks_dir)
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"segfolder: test_fraction must be in [0, 1), got {test_fraction}")
        perm = np.random.default_rng(seed).permutation(len(img))
        n_test = int(round(len(img) * test_fraction))
        te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        train = [img[i] for i in tr], [msk[i] for i in tr]
        test = [img[i] for i in te], [msk[i] for i in te]
    if not train[0]:
        raise DatasetNotFoundError(f"segfolder: no training images under {root}", [str(root)])
    return segmentation_bundle("segfolder", train, test, lookup, names, image_size=size, mean=m, std=s,
                               augment=augment, crop_size=crop_size, validate=validate, cache=cache,
                               info={"source": str(root), "split": "folders" if split_dirs else "seeded",
                                     "test_fraction": None if split_dirs else test_fraction})
