"""The dataset registry: names -> loaders and their documented defaults."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from .bundle import DatasetBundle
from .defaults import (CIFAR10_MEAN, CIFAR10_STD, FASHIONMNIST_MEAN, FASHIONMNIST_STD,
                       IMAGENET_MEAN, IMAGENET_STD, MNIST_MEAN, MNIST_STD, SVHN_MEAN, SVHN_STD)
from .readers import cifar, cityscapes, folder, idx, npz, segfolder, segshapes, svhn, toy

__all__ = ["DatasetSpec", "DATASETS", "ALIASES", "load_dataset", "available_datasets", "get_spec"]


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set is and how it is loaded by default.

    ``mean``/``std`` are the default normalisation constants (None: computed on the training
    set); ``augmentation`` names the default training augmentation; ``files`` says what is
    expected on disk (None: bundled/generated)."""

    name: str
    loader: Callable[..., DatasetBundle]
    description: str
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    augmentation: str
    files: str | None

    @property
    def options(self) -> dict[str, Any]:
        """The loader's keyword options with their defaults."""
        return {p.name: p.default for p in inspect.signature(self.loader).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in [
    DatasetSpec("moons", toy.load_moons, "scikit-learn make_moons, noise 0.2, 500 vs 50 (x10 imbalance)",
                (2,), 2, None, None, "none", None),
    DatasetSpec("digits", toy.load_digits, "scikit-learn 8x8 digits, 1,438 / 359 stratified split",
                (1, 8, 8), 10, None, None, "crop 8 pad 1", None),
    DatasetSpec("cifar10", cifar.load_cifar10, "CIFAR-10, 50,000 / 10,000 32x32 images",
                (3, 32, 32), 10, CIFAR10_MEAN, CIFAR10_STD, "crop 32 pad 4 + hflip",
                "cifar-10-batches-py/{data_batch_1..5,test_batch}"),
    DatasetSpec("cifar10-imb", cifar.load_cifar10_imbalanced,
                "CIFAR-10 with the first 5 classes reduced by imbalance_ratio (10 or 100)",
                (3, 32, 32), 10, CIFAR10_MEAN, CIFAR10_STD, "crop 32 pad 4 + hflip",
                "cifar-10-batches-py/{data_batch_1..5,test_batch}"),
    DatasetSpec("cifar100", cifar.load_cifar100, "CIFAR-100, 50,000 / 10,000 32x32 images",
                (3, 32, 32), 100, CIFAR10_MEAN, CIFAR10_STD, "crop 32 pad 4 + hflip",
                "cifar-100-python/{train,test}"),
    DatasetSpec("svhn", svhn.load_svhn, "SVHN cropped digits, 73,257 / 26,032 (no extra)",
                (3, 32, 32), 10, SVHN_MEAN, SVHN_STD, "none", "{train,test}_32x32.mat"),
    DatasetSpec("fashionmnist", idx.load_fashionmnist, "Fashion-MNIST, 60,000 / 10,000 28x28",
                (1, 28, 28), 10, FASHIONMNIST_MEAN, FASHIONMNIST_STD, "none",
                "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"),
    DatasetSpec("mnist", idx.load_mnist, "MNIST, 60,000 / 10,000 28x28",
                (1, 28, 28), 10, MNIST_MEAN, MNIST_STD, "none",
                "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"),
    DatasetSpec("caltech101", folder.load_caltech101,
                "Caltech-101 (9,144 images incl. background), seeded 8,125 / 1,019 split, 224x224",
                (3, 224, 224), None, IMAGENET_MEAN, IMAGENET_STD, "hflip",
                "101_ObjectCategories/<class>/*.jpg"),
    DatasetSpec("folder", folder.load_folder, "any class-per-folder image tree <root>/<class>/*",
                None, None, IMAGENET_MEAN, IMAGENET_STD, "hflip", "<root>/<class>/*.jpg|png|..."),
    DatasetSpec("npz", npz.load_npz, "user arrays X, y [, X_test, y_test] in one .npz file",
                None, None, None, None, "none", "<file>.npz"),
    DatasetSpec("cityscapes", cityscapes.load_cityscapes,
                "Cityscapes semantic segmentation, 2,975 train (pool) / 500 val (test), 19 train ids, 255 ignored",
                None, 19, IMAGENET_MEAN, IMAGENET_STD, "paired crop 412 + hflip",
                "leftImg8bit/{train,val}/<city>/*_leftImg8bit.png + gtFine/{train,val}/<city>/*_gtFine_labelIds.png"),
    DatasetSpec("segfolder", segfolder.load_segfolder,
                "segmentation: images/ + masks/ with the same file stems (class-index PNGs, 255 = ignore)",
                None, None, IMAGENET_MEAN, IMAGENET_STD, "paired crop (crop_size) + hflip",
                "<root>/images/*.jpg|png + <root>/masks/*.png + classes.txt"),
    DatasetSpec("segshapes", segshapes.load_segshapes,
                "generated street scenes for segmentation (6 classes, 255 unlabeled), 240 / 60 images of 64x128",
                (3, 64, 128), 6, None, None, "hflip (+ paired crop with crop_size)", None),
]}

ALIASES: dict[str, str] = {
    "cifar10im": "cifar10-imb", "cifar10-imbalanced": "cifar10-imb", "cifar10imb": "cifar10-imb",
    "imbalanced-cifar10": "cifar10-imb", "fmnist": "fashionmnist", "fashion-mnist": "fashionmnist",
    "caltech": "caltech101", "caltech-101": "caltech101", "imagefolder": "folder",
    "toy": "moons", "segmentation-folder": "segfolder", "seg-folder": "segfolder",
}


def available_datasets() -> list[str]:
    return sorted(DATASETS)


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        close = difflib.get_close_matches(key, list(DATASETS) + list(ALIASES), n=1)
        hint = f" (did you mean {ALIASES.get(close[0], close[0])!r}?)" if close else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; available: {', '.join(available_datasets())}")
    return key


def get_spec(name: str) -> DatasetSpec:
    return DATASETS[_canonical(name)]


def load_dataset(name: str, data_dir=None, seed: int = 0, **options) -> DatasetBundle:
    """Load data set ``name`` (see ``DATASETS``; aliases such as ``cifar10im`` accepted).

    ``data_dir``: the folder holding the files (default ``$TAVAAL_DATA_DIR`` or ``./data``;
    for ``folder`` the image root, for ``npz`` the file). ``seed`` fixes every random choice
    made while building the data set (splits, imbalance sampling, moons), not augmentation.
    Missing files raise :class:`DatasetNotFoundError` (fetch them first with
    :func:`tavaal.data.download.download_dataset`). ``options`` are the loader's keyword options
    (``DATASETS[name].options``); unknown ones raise ValueError."""
    spec = get_spec(name)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(f"{spec.name}: unknown option(s) {', '.join(unknown)}; valid options: "
                         f"{', '.join(sorted(spec.options))}")
    bundle = spec.loader(data_dir, int(seed), **options)
    bundle.info.setdefault("seed", int(seed))
    bundle.info.setdefault("options", dict(options))
    return bundle
