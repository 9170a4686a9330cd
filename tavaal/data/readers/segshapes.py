"""Generated street-like scenes for segmentation tests and CPU demos (``--dataset segshapes``).

Each image is a simple street: sky on top, a road trapezoid at the bottom, buildings along
the horizon, and a random number of cars, people and poles drawn as shapes. Colours vary per
image and pixel noise is added, so the classes must be told apart from colour *and* shape
context. Some images carry an "ego vehicle" band at the bottom that is unlabeled (255), as in
Cityscapes. Everything is a deterministic function of ``seed``.

The same scenes can be written to disk in the Cityscapes layout
(:func:`write_cityscapes_layout`, masks as Cityscapes *label ids*) or the segfolder layout
(:func:`write_segfolder_layout`, masks as class indices), which is how the readers are tested.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...losses import IGNORE_INDEX
from ..bundle import DatasetBundle
from ..defaults import resolve_stats
from ..imagefiles import parse_hw
from ..normalization import uint8_scale_shift
from .segfolder import segmentation_augment

__all__ = ["SEGSHAPES_CLASSES", "SEGSHAPES_TO_LABEL_ID", "generate_street_scenes", "ArraySegmentationDataset",
           "load_segshapes", "write_cityscapes_layout", "write_segfolder_layout"]

SEGSHAPES_CLASSES = ("road", "building", "sky", "car", "person", "pole")
# class index -> Cityscapes label id (road 7, building 11, sky 23, car 26, person 24, pole 17)
SEGSHAPES_TO_LABEL_ID = (7, 11, 23, 26, 24, 17)
_EGO_VEHICLE_LABEL_ID = 1  # Cityscapes "ego vehicle": mapped to 255 by the reader
_BASE_COLOURS = np.array([[90, 90, 95], [150, 110, 90], [120, 170, 230], [200, 30, 40], [230, 190, 60],
                          [60, 60, 60]], dtype=np.float64)


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    label = np.full((h, w), 2, dtype=np.uint8)  # sky
    yy, xx = np.mgrid[0:h, 0:w]
    horizon = int(h * rng.uniform(0.35, 0.55))
    # buildings along the horizon
    x = 0
    while x < w:
        bw = int(rng.integers(max(2, w // 10), max(3, w // 4)))
        top = int(rng.uniform(0.05, 0.8) * horizon)
        label[top:horizon, x:x + bw] = 1
        x += bw + int(rng.integers(0, max(1, w // 12)))
    # road: trapezoid widening towards the bottom
    below = yy >= horizon
    half = (w * 0.15) + (yy - horizon) / max(h - horizon, 1) * (w * 0.6)
    centre = w / 2 + rng.uniform(-0.1, 0.1) * w
    road = below & (np.abs(xx - centre) <= half)
    label[below & ~road] = 1  # roadside: buildings/walls
    label[road] = 0
    # poles, cars, people
    for _ in range(int(rng.integers(0, 4))):
        px = int(rng.integers(0, w))
        pw = max(1, w // 60)
        label[int(horizon * rng.uniform(0.2, 0.6)):int(horizon + (h - horizon) * 0.3), px:px + pw] = 5
    for _ in range(int(rng.integers(1, 4))):
        cy = int(rng.uniform(horizon, h - 2))
        scale = 0.3 + (cy - horizon) / max(h - horizon, 1)
        cw, ch = max(3, int(w * 0.18 * scale)), max(2, int(h * 0.12 * scale))
        cx = int(rng.uniform(0, w - cw))
        label[max(cy - ch, 0):cy, cx:cx + cw] = 3
    for _ in range(int(rng.integers(0, 3))):
        cy = int(rng.uniform(horizon, h - 1))
        cx = rng.uniform(0, w)
        ry, rx = max(2.0, h * 0.08), max(1.0, w * 0.012)
        person = ((yy - (cy - ry)) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        label[person] = 4
    colours = np.clip(_BASE_COLOURS + rng.normal(0, 18, _BASE_COLOURS.shape), 0, 255)
    image = colours[label] + rng.normal(0, 12, (h, w, 3))
    shade = 1.0 - 0.25 * (yy / h)[..., None] * rng.uniform(0, 1)
    image = np.clip(image * shade, 0, 255).astype(np.uint8)
    if rng.uniform() < 0.3:  # unlabeled ego-vehicle band
        label[int(h * 0.92):, :] = IGNORE_INDEX
    return image.transpose(2, 0, 1), label


def generate_street_scenes(n: int, height: int = 64, width: int = 128, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes: images uint8 (n, 3, H, W) and labels uint8 (n, H, W) with values in
    ``0..5`` (:data:`SEGSHAPES_CLASSES`) or 255 (unlabeled)."""
    if n < 0 or height < 8 or width < 8:
        raise ValueError(f"need n >= 0 and images of at least 8x8, got n={n}, {height}x{width}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, height, width), dtype=np.uint8)
    labels = np.empty((n, height, width), dtype=np.uint8)
    for i in range(n):
        images[i], labels[i] = _scene(rng, height, width)
    return images, labels


class ArraySegmentationDataset(Dataset):
    """In-memory images uint8 (N, C, H, W) + labels (N, H, W):
    ``ds[i] -> (x float32 normalised (C, H, W), mask int64 (H, W))``; ``get_batch(rows)``."""

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                 mean: Sequence[float], std: Sequence[float], num_classes: int):
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels)
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],) + tuple(self.images.shape[2:]):
            raise ValueError(f"labels must be (N, H, W) = {(self.images.shape[0],) + tuple(self.images.shape[2:])}, "
                             f"got {tuple(self.labels.shape)}")
        bad = (self.labels >= num_classes) & (self.labels != IGNORE_INDEX)
        if bool(bad.any()):
            raise ValueError(f"label values must be in [0, {num_classes}) or {IGNORE_INDEX}; found "
                             f"{sorted(set(self.labels[bad].tolist()))[:10]}")
        self.num_classes = int(num_classes)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self._a, self._b = uint8_scale_shift(self.mean, self.std, tuple(self.images.shape[1:]), batch=True)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(np.array(indices, dtype=np.int64).reshape(-1))
        x = self.images[idx].float().mul_(self._a).add_(self._b)
        return x, self.labels[idx].to(torch.int64)

    def __getitem__(self, index: int):
        x, y = self.get_batch([int(index)])
        return x[0], y[0]

    def __repr__(self) -> str:
        return f"ArraySegmentationDataset(n={len(self)}, image={tuple(self.images.shape[1:])})"


def load_segshapes(data_dir=None, seed: int = 0, *, num_train: int = 240, num_test: int = 60, image_size=(64, 128),
                   crop_size=None, normalization: str = "computed", mean=None, std=None,
                   augment="default") -> DatasetBundle:
    """Generated street scenes (module docstring), ``num_train`` / ``num_test`` images of
    ``image_size`` (H, W), 6 classes, 255 = unlabeled. ``data_dir`` is unused. Options as
    :func:`tavaal.data.readers.segfolder.load_segfolder` (``crop_size``, ``augment``,
    normalisation computed on the training images by default)."""
    h, w = parse_hw(image_size)
    images, labels = generate_street_scenes(num_train + num_test, h, w, seed)
    m, s = resolve_stats(normalization, torch.from_numpy(images[:num_train]), None, mean, std,
                         channels=3, name="segshapes")
    k = len(SEGSHAPES_CLASSES)
    train = ArraySegmentationDataset(images[:num_train], labels[:num_train], m, s, k)
    test = ArraySegmentationDataset(images[num_train:], labels[num_train:], m, s, k)
    crop = parse_hw(crop_size)
    return DatasetBundle(
        name="segshapes", train=train, test=test, num_classes=k, input_shape=(3, h, w),
        augment=segmentation_augment(augment, crop, m, s, name="segshapes"),
        train_targets=np.zeros(0, dtype=np.int64), mean=m, std=s, classes=SEGSHAPES_CLASSES,
        info={"task": "segmentation", "image_size": [h, w], "crop_size": None if crop is None else list(crop),
              "ignore_index": IGNORE_INDEX, "generated": True})


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_cityscapes_layout(root, num_train: int = 6, num_val: int = 3, image_size=(32, 64), seed: int = 0,
                            cities: Sequence[str] = ("aachen", "bremen")) -> Path:
    """Write generated scenes as a Cityscapes tree under ``root`` (``leftImg8bit/{train,val}``
    + ``gtFine/{train,val}`` with ``*_gtFine_labelIds.png``, unlabeled pixels as the ego-vehicle
    id 1); returns ``root``. Train ids of the reader equal ``SEGSHAPES_TO_LABEL_ID``'s Cityscapes classes."""
    root = Path(root)
    h, w = parse_hw(image_size)
    images, labels = generate_street_scenes(num_train + num_val, h, w, seed)
    to_id = np.full(256, _EGO_VEHICLE_LABEL_ID, dtype=np.uint8)
    to_id[: len(SEGSHAPES_TO_LABEL_ID)] = SEGSHAPES_TO_LABEL_ID
    for i in range(num_train + num_val):
        split = "train" if i < num_train else "val"
        city = cities[i % len(cities)]
        stem = f"{city}_{i:06d}_000019"
        _save_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", images[i].transpose(1, 2, 0))
        _save_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", to_id[labels[i]])
        _save_png(root / "gtFine" / split / city / f"{stem}_gtFine_color.png", images[i].transpose(1, 2, 0))
    return root


def write_segfolder_layout(root, num_images: int = 8, image_size=(32, 64), seed: int = 0,
                           image_ext: str = ".jpg") -> Path:
    """Write generated scenes as ``root/images/<name><image_ext>`` + ``root/masks/<name>.png``
    (class indices, 255 unlabeled) + ``root/classes.txt``; returns ``root``."""
    root = Path(root)
    h, w = parse_hw(image_size)
    images, labels = generate_street_scenes(num_images, h, w, seed)
    for i in range(num_images):
        _save_png(root / "images" / f"scene_{i:04d}{image_ext}", images[i].transpose(1, 2, 0))
        _save_png(root / "masks" / f"scene_{i:04d}.png", labels[i])
    (root / "classes.txt").write_text("\n".join(SEGSHAPES_CLASSES) + "\n")
    return root
