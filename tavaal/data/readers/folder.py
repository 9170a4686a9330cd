"""Class-per-folder image trees (``root/<class>/*.jpg``) and Caltech-101.

A class-folder data set is the image-folder row source (:class:`~tavaal.data.sources.ImageFolderSource`)
plus labels (the class folder of each file) and a split; images are decoded lazily, per read
(:func:`split_view`). Splits: ``root/train/<class>`` and ``root/test/<class>`` when both exist,
else a seeded per-class split holding out ``test_fraction`` of each class.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bundle import DatasetBundle
from ..defaults import build_augment
from ..errors import CorruptDatasetError, DatasetNotFoundError
from ..imagefiles import IMAGE_EXTENSIONS
from ..sources import ImageFolderSource, ItemwiseView, SourceDataset
from ..sources.images import find_unreadable, list_image_files
from ._common import data_root, folder_stats, stratified_split

log = logging.getLogger(__name__)

CALTECH_URL = "https://data.caltech.edu/records/mzrjq-6wc02"
CALTECH_DIR = "101_ObjectCategories"
CALTECH_BACKGROUND = "BACKGROUND_Google"
# The paper: 8,125 train / 1,019 test of 9,144 images.
CALTECH_TEST_FRACTION = 1019 / 9144


def scan_class_folders(root: Path, extensions=IMAGE_EXTENSIONS, exclude: Sequence[str] = ()
                       ) -> dict[str, list[Path]]:
    """``{class_name: image paths}`` for every visible sub-folder of ``root`` (sorted by name),
    each holding the images :func:`~tavaal.data.sources.images.list_image_files` finds under it
    (the one image-folder layout rule: recursive, sorted by path)."""
    return {d.name: [Path(f) for f in list_image_files(d, extensions)] for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".") and d.name not in exclude}


def split_view(root: Path, files: Sequence[Path], targets: np.ndarray, image_size: int, mean, std,
               cache: bool) -> ItemwiseView:
    """One split of a class-folder data set: the image-folder row source of ``files`` (rows in
    that order) decoded to RGB ``image_size`` squares, as the training view with its labels,
    read item by item (a DataLoader decodes and augments per sample). Benchmark data sets are
    strict: an unreadable file raises :class:`CorruptDatasetError` naming it when read."""
    source = ImageFolderSource(root, (3, int(image_size), int(image_size)), files=files, cache=cache)
    return ItemwiseView(SourceDataset(source, mean, std, targets=np.asarray(targets, dtype=np.int64),
                                      on_unreadable="error"))


def _build(name: str, root: Path, seed: int, image_size: int, test_fraction: float,
           normalization: str, mean, std, augment, validate: bool, cache: bool,
           exclude: Sequence[str] = (), extensions=IMAGE_EXTENSIONS) -> DatasetBundle:
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
    tr_map = scan_class_folders(root / "train" if split_dirs else root, exts, exclude)
    te_map = scan_class_folders(root / "test", exts, exclude) if split_dirs else {}
    classes = sorted(set(tr_map) | set(te_map))
    if not classes:
        raise DatasetNotFoundError(
            f"{name}: expected class folders {root}/<class>/*.jpg|png|... (or {root}/train/<class>/ "
            f"and {root}/test/<class>/), found no sub-folders in {root}", [str(root)])
    empty = [c for c in classes if not tr_map.get(c) and not te_map.get(c)]
    if empty:
        raise DatasetNotFoundError(
            f"{name}: class folder(s) without images ({', '.join(exts)}): "
            f"{', '.join(str((root / 'train' if split_dirs else root) / c) for c in empty[:10])}",
            [str(root / c) for c in empty])

    def flatten(m):
        files = [f for c in classes for f in m.get(c, [])]
        return files, np.asarray([i for i, c in enumerate(classes) for _ in m.get(c, [])], dtype=np.int64)

    if split_dirs:
        (tr_files, y_tr), (te_files, y_te) = flatten(tr_map), flatten(te_map)
    else:
        files, ys = flatten(tr_map)
        tr, te = stratified_split(ys, test_fraction, seed)
        tr_files, y_tr = [files[i] for i in tr], ys[tr]
        te_files, y_te = [files[i] for i in te], ys[te]
    m, s = folder_stats(name, normalization, mean, std)
    train = split_view(root, tr_files, y_tr, image_size, m, s, cache)
    test = split_view(root, te_files, y_te, image_size, m, s, cache)
    if validate:
        bad = [(str(root / ident), reason) for view in (train, test)
               for ident, reason in find_unreadable(view.source, progress=False)]
        if bad:
            lines = "\n".join(f"  {p}: {r}" for p, r in bad)
            raise CorruptDatasetError(f"{name}: {len(bad)} unreadable image(s) under {root}:\n{lines}",
                                      paths=[p for p, _ in bad])
    input_shape = (3, int(image_size), int(image_size))
    aug = build_augment(augment, "flip", input_shape, m, s, name=name)
    log.info("%s: %d train / %d test images in %d classes from %s", name, len(train), len(test),
             len(classes), root)
    return DatasetBundle(
        name=name, train=train, test=test, num_classes=len(classes), input_shape=input_shape,
        augment=aug, train_targets=y_tr, mean=m, std=s, test_targets=y_te,
        classes=tuple(classes),
        info={"source": str(root), "split": "folders" if split_dirs else "seeded",
              "test_fraction": None if split_dirs else test_fraction, "image_size": image_size})


def load_folder(data_dir=None, seed: int = 0, *, image_size: int = 224,
                test_fraction: float = 0.2, normalization: str = "default", mean=None, std=None,
                augment="default", validate: bool = False, cache: bool = False,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> DatasetBundle:
    """Any class-per-folder image tree at ``data_dir`` (required). ImageNet mean/std by
    default; default augmentation horizontal flip (``augment="flip+rrc"`` adds a random
    resized crop)."""
    if data_dir is None:
        raise DatasetNotFoundError("folder: pass data_dir=<root> holding <root>/<class>/*.jpg|png|...")
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"folder: expected an image folder {root} holding <class>/*.jpg|png|... sub-folders "
            "(or train/<class>/ and test/<class>/)", [str(root)])
    return _build("folder", root, seed, image_size, test_fraction, normalization, mean, std,
                  augment, validate, cache, extensions=extensions)


def find_caltech101(data_dir) -> Path:
    root = data_root(data_dir)
    for cand in (root / CALTECH_DIR, root / "caltech101" / CALTECH_DIR, root / "caltech-101" / CALTECH_DIR,
                 root / "caltech101", root):
        if cand.is_dir() and ((cand / "train").is_dir() or (cand / "accordion").is_dir()
                              or (cand / "Faces").is_dir() or cand.name == CALTECH_DIR):
            return cand
    raise DatasetNotFoundError(
        f"caltech101: expected the folder {root / CALTECH_DIR} (or {root / 'caltech101' / CALTECH_DIR}) "
        "holding one sub-folder of images per category (accordion/, airplanes/, ...); download "
        f"caltech-101.zip from {CALTECH_URL} and extract 101_ObjectCategories.tar.gz into {root}",
        [str(root / CALTECH_DIR)])


def load_caltech101(data_dir=None, seed: int = 0, *, image_size: int = 224,
                    test_fraction: float = CALTECH_TEST_FRACTION,
                    include_background: bool = True, normalization: str = "default",
                    mean=None, std=None, augment="default", validate: bool = False,
                    cache: bool = False) -> DatasetBundle:
    """Caltech-101 from ``101_ObjectCategories/<class>/*.jpg``, resized to 224x224, ImageNet
    mean/std, random horizontal flips. Without train/test folders a seeded per-class split
    holds out 1,019/9,144 of the images (the paper's 8,125 / 1,019 split of all 9,144 images,
    which count the ``BACKGROUND_Google`` folder: ``include_background=False`` drops it)."""
    root = find_caltech101(data_dir)
    exclude = () if include_background else (CALTECH_BACKGROUND,)
    bundle = _build("caltech101", root, seed, image_size, test_fraction, normalization, mean,
                    std, augment, validate, cache, exclude=exclude)
    bundle.info["include_background"] = include_background
    return bundle
