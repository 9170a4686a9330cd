"""Shared helpers of the labeling-loop tests (tests/test_loop_*.py): small pools on disk, label
files, a directory fingerprint, an oracle that answers from hidden labels."""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Dict, List

import numpy as np

# CPU-sized training settings: a narrow ResNet-18 on 8x8 digits, two steps, a few WAE steps, no
# augmentation (they override the default recipe; without --preset the recipe fills in the rest).
TINY = {"arch": "resnet18-cifar", "width": 8, "epochs": 1, "steps": 2, "batch_size": 32, "wae_iterations": 3,
        "latent_dim": 8, "wae_width": 8, "disc_hidden": 16, "disc_layers": 2, "budget": 20, "subset": 100, "lr": 0.05,
        "num_threads": 1, "augment": "none"}
TINY_FLAGS = ["--arch", "resnet18-cifar", "--width", "8", "--epochs", "1", "--steps", "2", "--batch-size", "32",
              "--wae-iterations", "3", "--latent-dim", "8", "--budget", "20", "--subset", "100", "--lr", "0.05",
              "--set", "wae_width=8", "--set", "disc_hidden=16", "--set", "disc_layers=2", "--set", "num_threads=1",
              "--set", "augment=none", "--no-progress"]


def digits_uint8(n: int = 300):
    """The first ``n`` scikit-learn digits as uint8 (n, 8, 8) images (pixel x 15) and int labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:n] * 15).astype(np.uint8), d.target[:n].astype(np.int64)


def write_png_pool(folder: Path, images: np.ndarray, start: int = 0) -> List[str]:
    """Write grayscale PNGs ``img_<row>.png`` (sorted name order = row order); returns their ids."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for k, img in enumerate(images):
        name = f"img_{start + k:04d}.png"
        Image.fromarray(img, mode="L").save(folder / name)
        ids.append(name)
    return ids


def write_labels_csv(path: Path, pairs, header: bool = True) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(["id", "label"])
        for ident, label in pairs:
            w.writerow([ident, label])
    return path


def fingerprint(directory: Path) -> Dict[str, str]:
    """Relative path -> sha256 of every file under ``directory`` (hidden files included)."""
    out = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(directory))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Oracle:
    """Answers labeling requests from labels the loop never sees (the test's hidden truth)."""

    def __init__(self, truth: Dict[str, str]):
        self._truth = dict(truth)
        self.asked: List[str] = []

    def answer(self, to_label_csv: Path, out: Path) -> Path:
        with open(to_label_csv, newline="") as f:
            ids = [row["id"] for row in csv.DictReader(f)]
        self.asked.extend(ids)
        return write_labels_csv(out, [(i, self._truth[i]) for i in ids])


def tiny_cnn(num_classes: int = 10):
    """A small custom classifier (not a tavaal learner) for the bring-your-own-model tests: the
    Ranker taps ``block1`` and ``block2``; x (B, 1, 8, 8) -> logits (B, num_classes)."""
    return _TinyCNN(num_classes)


def _tiny_cnn_class():
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self, num_classes: int):
            super().__init__()
            self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.head(self.pool(self.block2(self.block1(x))).flatten(1))

    return TinyCNN


_TinyCNN = _tiny_cnn_class()
