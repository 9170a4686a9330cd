"""Segmentation data: images with per-pixel label masks (``--dataset segfolder``), and the
dataset class every segmentation reader (Cityscapes included) builds on.

Layout of a segfolder root (the format most users have)::

    ROOT/images/<name>.jpg|png|...     ROOT/masks/<name>.png        (seeded train/test split)
    ROOT/train/{images,masks}/...      ROOT/test/{images,masks}/... (explicit split)
    ROOT/classes.txt                   one class name per line (or pass classes=...)

A mask has the image's file *stem* (``images/a/b.jpg`` <-> ``masks/a/b.png``; sub-folders are
allowed and mirrored), the image's width and height, and one channel ("L" grayscale or "P"
palette PNG) whose values are class indices ``0 .. K-1``; 255 marks unlabeled pixels
(ignored by the loss and the metrics).

Errors (all raised before training starts, except decoding errors of lazily read files):
images without a mask and masks without an image (:class:`DatasetNotFoundError`, listing
them), masks of another size than their image, multi-channel masks and values outside the
class list (:class:`CorruptDatasetError` naming the file and the values; sizes are checked
for every pair up front from the file headers, values when a mask is decoded, or for all
masks up front with ``validate=True``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...losses import IGNORE_INDEX
from ..bundle import DatasetBundle
from ..defaults import IMAGENET_MEAN, IMAGENET_STD, resolve_stats
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ..seg_transforms import PairedCompose, PairedRandomCrop, PairedRandomHorizontalFlip
from ..transforms import normalized_fill
from .folder import IMAGE_EXTENSIONS, decode_image

log = logging.getLogger(__name__)

__all__ = ["SegmentationDataset", "load_segfolder", "read_mask", "identity_lookup", "segmentation_augment",
           "pair_files", "SEG_AUGMENTS"]

MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".pgm")
SEG_AUGMENTS = ("default", "none", "flip", "crop", "crop+flip")


def identity_lookup(num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Mask value -> label table for masks holding class indices: ``0..K-1`` map to themselves,
    ``ignore_index`` to itself, every other value to -1 (= not allowed)."""
    if not 1 <= int(num_classes) <= 255:
        raise ValueError(f"segmentation masks hold 8-bit values: num_classes must be in [1, 255], got {num_classes}")
    table = np.full(256, -1, dtype=np.int16)
    table[: int(num_classes)] = np.arange(int(num_classes))
    table[ignore_index] = ignore_index
    return table


def _size_of(path: Path) -> tuple[int, int]:
    """(H, W) from the file header (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            w, h = img.size
            return int(h), int(w)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptDatasetError(f"{path}: cannot read the image header ({type(exc).__name__}: {exc})", path) from exc


def read_mask(path: str | Path, lookup: np.ndarray, size: tuple[int, int] | None = None,
              expected_hw: tuple[int, int] | None = None, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Decode a single-channel mask to uint8 labels (H, W) through ``lookup`` (256 entries;
    -1 = value not allowed), checking its size against ``expected_hw`` (the image's (H, W)),
    then resizing (nearest) to ``size``. Raises :class:`CorruptDatasetError` naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                raise CorruptDatasetError(
                    f"{path}: masks must be single-channel PNGs of class indices (mode 'L' or 'P'), got mode "
                    f"{mode!r} (colour-coded masks must be converted to class indices first)", path)
            raw = np.asarray(img)
    except CorruptDatasetError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptDatasetError(f"{path}: cannot decode mask ({type(exc).__name__}: {exc})", path) from exc
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
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


class SegmentationDataset(Dataset):
    """Image files with label masks: ``ds[i] -> (x float32 (C, H, W) normalised, mask int64 (H, W))``.

    Decoded lazily per item (PIL; RGB images), resized to ``image_size`` (bilinear for images,
    nearest for masks) when given. ``get_batch(rows)`` stacks several items. Mask values go
    through ``lookup`` (raw value -> label, -1 = not allowed: :class:`CorruptDatasetError`);
    ``ignore_index`` (255) marks unlabeled pixels. ``cache=True`` keeps decoded uint8 images
    and masks in memory.

    Every image (after resizing) must have the same size so that batches stack; the loaders
    check it up front from the file headers (:meth:`check_sizes`).
    """

    task = "segmentation"

    def __init__(self, images: Sequence[Path], masks: Sequence[Path], lookup: np.ndarray, *,
                 image_size: tuple[int, int] | None, mean: Sequence[float], std: Sequence[float],
                 num_classes: int, ignore_index: int = IGNORE_INDEX, cache: bool = False):
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        self.images = [Path(p) for p in images]
        self.masks = [Path(p) for p in masks]
        self.lookup = np.asarray(lookup, dtype=np.int16)
        if self.lookup.shape != (256,):
            raise ValueError(f"lookup must have 256 entries, got shape {self.lookup.shape}")
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        s = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        m = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        self._a, self._b = 1.0 / (255.0 * s), -m / s
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self._sizes: list[tuple[int, int]] | None = None
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.images)

    def check_sizes(self) -> tuple[int, int]:
        """Read every image and mask header; raise :class:`CorruptDatasetError` for a mask
        whose size differs from its image's, and ValueError when images differ in size and no
        ``image_size`` was given. Returns the common (H, W) after resizing."""
        sizes, bad = [], []
        for img, mask in zip(self.images, self.masks):
            hw, mhw = _size_of(img), _size_of(mask)
            if hw != mhw:
                bad.append(f"  {mask}: {mhw[1]}x{mhw[0]} but {img.name} is {hw[1]}x{hw[0]} (WxH)")
            sizes.append(hw)
        if bad:
            raise CorruptDatasetError(f"{len(bad)} mask(s) differ in size from their image:\n" + "\n".join(bad[:20])
                                      + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""),
                                      paths=[line.split(":")[0].strip() for line in bad])
        self._sizes = sizes
        if self.image_size is not None:
            return self.image_size
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            raise ValueError(f"images have {len(distinct)} different sizes (e.g. {distinct[0]} and {distinct[-1]}, "
                             "as (H, W)); pass image_size=(H, W) to resize them all")
        if not distinct:
            raise ValueError("no images")
        return distinct[0]

    def raw(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 image (3, H, W) and uint8 labels (H, W) of item ``index`` (resized, not normalised)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = decode_image(self.images[index], None)
        hw = tuple(image.shape[-2:])
        if self.image_size is not None and hw != self.image_size:
            image = F.interpolate(image[None].float(), size=self.image_size, mode="bilinear",
                                  align_corners=False)[0].round_().clamp_(0, 255).to(torch.uint8)
        mask = read_mask(self.masks[index], self.lookup, self.image_size, expected_hw=hw,
                         ignore_index=self.ignore_index)
        if self._cache is not None:
            self._cache[index] = (image, mask)
        return image, mask

    def __getitem__(self, index: int):
        image, mask = self.raw(int(index))
        return image.float().mul_(self._a).add_(self._b), mask.to(torch.int64)

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images (B, C, H, W) float32 and masks (B, H, W) int64 of ``indices``."""
        items = [self[int(i)] for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if not items:
            raise ValueError("get_batch needs at least one index")
        return torch.stack([x for x, _ in items]), torch.stack([m for _, m in items])

    def validate(self) -> None:
        """Decode every image and mask; raise :class:`CorruptDatasetError` listing every bad file."""
        bad = []
        for i in range(len(self)):
            try:
                self.raw(i)
            except CorruptDatasetError as exc:
                bad.append(str(exc))
        if bad:
            raise CorruptDatasetError(f"{len(bad)} unreadable or invalid image/mask pair(s):\n  "
                                      + "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20
                                                                else ""))

    def __repr__(self) -> str:
        return f"SegmentationDataset(n={len(self)}, image_size={self.image_size}, classes={self.num_classes})"


def pair_files(image_dir: Path, mask_dir: Path, image_exts=IMAGE_EXTENSIONS, mask_exts=MASK_EXTENSIONS,
               mask_name=None, image_glob: str = "*", mask_glob: str = "*",
               name: str = "segfolder") -> tuple[list[Path], list[Path]]:
    """Images under ``image_dir`` (recursive, sorted) and their masks under ``mask_dir``.

    The mask of ``image_dir/sub/x.jpg`` is ``mask_dir/sub/<mask_name("x")>.<ext>`` (default
    ``mask_name`` = identity: same stem, any mask extension). Only files matching
    ``image_glob`` / ``mask_glob`` are considered. Raises :class:`DatasetNotFoundError`
    listing images without a mask and masks without an image."""
    mask_name = mask_name or (lambda stem: stem)
    images = sorted(p for p in image_dir.rglob(image_glob) if p.is_file() and p.suffix.lower() in image_exts
                    and not p.name.startswith("."))
    masks_by_key = {}
    for m in sorted(mask_dir.rglob(mask_glob)):
        if m.is_file() and m.suffix.lower() in mask_exts and not m.name.startswith("."):
            masks_by_key.setdefault(m.relative_to(mask_dir).with_suffix("").as_posix(), m)
    paired, missing = [], []
    used = set()
    for img in images:
        rel = img.relative_to(image_dir)
        key = (rel.parent / mask_name(img.stem)).as_posix()
        m = masks_by_key.get(key)
        if m is None:
            if not missing:
                first_expected = mask_dir / f"{key}.png"
            missing.append(str(img))
        else:
            paired.append((img, m))
            used.add(key)
    orphans = [str(m) for k, m in masks_by_key.items() if k not in used]
    problems = []
    if missing:
        problems.append(f"{len(missing)} image(s) without a mask (looked for e.g. {first_expected}, or another "
                        f"{'/'.join(e.lstrip('.') for e in mask_exts)} file of that stem): " + ", ".join(missing[:20])
                        + (f" ... and {len(missing) - 20} more" if len(missing) > 20 else ""))
    if orphans:
        problems.append(f"{len(orphans)} mask(s) without an image in {image_dir}: " + ", ".join(orphans[:20])
                        + (f" ... and {len(orphans) - 20} more" if len(orphans) > 20 else ""))
    if problems:
        raise DatasetNotFoundError(f"{name}: mismatched image/mask files:\n  " + "\n  ".join(problems),
                                   missing + orphans)
    return [p for p, _ in paired], [m for _, m in paired]


def segmentation_augment(spec, crop_size, mean: Sequence[float], std: Sequence[float],
                         ignore_index: int = IGNORE_INDEX, name: str = "dataset"):
    """The paired training augmentation for the ``augment`` option: "default" (= "crop+flip"
    when ``crop_size`` is set, else "flip"), "flip", "crop", "crop+flip", "none"/False, or a
    paired callable. Crops pad with black (normalised) pixels and ``ignore_index`` labels."""
    if callable(spec):
        if not getattr(spec, "paired", False):
            raise ValueError(f"{name}: a segmentation augment must take (x, mask) and set .paired = True")
        return spec
    if spec is True:
        spec = "default"
    if spec is False or spec is None:
        spec = "none"
    if spec not in SEG_AUGMENTS:
        raise ValueError(f"{name}: augment must be one of {SEG_AUGMENTS} or a paired callable, got {spec!r}")
    if spec == "default":
        spec = "crop+flip" if crop_size else "flip"
    if spec == "none":
        return None
    parts = []
    if "crop" in spec:
        if not crop_size:
            raise ValueError(f"{name}: augment={spec!r} needs crop_size")
        parts.append(PairedRandomCrop(crop_size, fill=normalized_fill(mean, std), ignore_index=ignore_index))
    if "flip" in spec:
        parts.append(PairedRandomHorizontalFlip(0.5))
    return parts[0] if len(parts) == 1 else PairedCompose(parts)


def _hw(size) -> tuple[int, int] | None:
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


def segmentation_bundle(name: str, train: SegmentationDataset, test: SegmentationDataset, classes: Sequence[str],
                        *, augment, crop_size, validate: bool, info: dict) -> DatasetBundle:
    """Check sizes (and every file with ``validate``) and assemble the bundle.

    ``input_shape`` is the (C, H, W) of un-augmented items (what selection and the WAE see);
    training batches are ``crop_size`` crops when cropping is on. ``train_targets`` is empty:
    segmentation has no per-image class."""
    hw = train.check_sizes()
    test_hw = test.check_sizes() if len(test) else hw
    if validate:
        train.validate()
        test.validate()
    crop = _hw(crop_size)
    aug = segmentation_augment(augment, crop, train.mean, train.std, name=name)
    log.info("%s: %d train / %d test image+mask pairs, %d classes, %dx%d (HxW)", name, len(train), len(test),
             len(classes), hw[0], hw[1])
    info = dict(info)
    info.update({"task": "segmentation", "image_size": list(hw), "test_image_size": list(test_hw),
                 "crop_size": None if crop is None else list(crop), "ignore_index": train.ignore_index})
    return DatasetBundle(name=name, train=train, test=test, num_classes=len(classes), input_shape=(3,) + tuple(hw),
                         augment=aug, train_targets=np.zeros(0, dtype=np.int64), points=None, mean=train.mean,
                         std=train.std, test_targets=None, classes=tuple(classes), info=info)


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
    if normalization == "computed" and mean is None:
        raise ValueError("segfolder: normalization='computed' would decode every image; pass mean=/std= "
                         "(or use 'default' = ImageNet statistics)")
    m, s = resolve_stats(normalization, torch.zeros(1, 3), 1.0, (IMAGENET_MEAN, IMAGENET_STD), mean, std,
                         channels=3, name="segfolder")
    size = _hw(image_size)
    split_dirs = (root / "train" / images_dir).is_dir() and (root / "test" / images_dir).is_dir()
    if split_dirs:
        tr_img, tr_mask = pair_files(root / "train" / images_dir, root / "train" / masks_dir)
        te_img, te_mask = pair_files(root / "test" / images_dir, root / "test" / masks_dir)
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
        tr_img, tr_mask = [img[i] for i in tr], [msk[i] for i in tr]
        te_img, te_mask = [img[i] for i in te], [msk[i] for i in te]
    if not tr_img:
        raise DatasetNotFoundError(f"segfolder: no training images under {root}", [str(root)])
    kw = dict(image_size=size, mean=m, std=s, num_classes=len(names), cache=cache)
    train = SegmentationDataset(tr_img, tr_mask, lookup, **kw)
    test = SegmentationDataset(te_img, te_mask, lookup, **kw)
    return segmentation_bundle("segfolder", train, test, names, augment=augment, crop_size=crop_size,
                               validate=validate,
                               info={"source": str(root), "split": "folders" if split_dirs else "seeded",
                                     "test_fraction": None if split_dirs else test_fraction})
