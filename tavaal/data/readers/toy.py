"""Bundled data needing no files: the paper's imbalanced two-moons toy (§4.1) and
scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np

from ..bundle import DatasetBundle
from ._common import array_bundle, stratified_split

# Test sets are drawn "the same way from another seed": seed + this offset.
TEST_SEED_OFFSET = 1_000_003


def make_imbalanced_moons(n_majority: int = 500, n_minority: int = 50, noise: float = 0.2,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn ``make_moons`` with ``n_majority`` samples of class 0 (outer moon) and
    ``n_minority`` of class 1 (inner moon), shuffled; float32 (N, 2) and int64 (N,)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=(int(n_majority), int(n_minority)), noise=noise, shuffle=True,
                      random_state=int(seed) % (2 ** 32))
    return x.astype(np.float32), y.astype(np.int64)


def load_moons(data_dir=None, seed: int = 0, *, n_majority: int = 500, n_minority: int = 50,
               noise: float = 0.2, test_majority: int | None = None,
               test_minority: int | None = None, normalization: str = "computed",
               mean=None, std=None) -> DatasetBundle:
    """The paper's toy: make_moons(noise=0.2), 500 class-0 vs 50 class-1 samples (x10
    imbalance, 550 in all); the test set is drawn the same way (same sizes unless
    ``test_majority``/``test_minority``) from seed + 1,000,003. Vectors (D=2) standardised with
    the train mean/std; ``points`` holds the raw train coordinates. ``data_dir`` is ignored."""
    x_tr, y_tr = make_imbalanced_moons(n_majority, n_minority, noise, seed)
    x_te, y_te = make_imbalanced_moons(
        n_majority if test_majority is None else test_majority,
        n_minority if test_minority is None else test_minority, noise, seed + TEST_SEED_OFFSET)
    return array_bundle("moons", x_tr, y_tr, x_te, y_te, 2, channels=2, normalization=normalization,
                        mean=mean, std=std, classes=("0", "1"),
                        info={"noise": noise, "n_majority": n_majority, "n_minority": n_minority,
                              "test_seed": seed + TEST_SEED_OFFSET})


def load_digits(data_dir=None, seed: int = 0, *, test_fraction: float = 0.2,
                flatten: bool = False, normalization: str = "computed", mean=None, std=None,
                augment="default") -> DatasetBundle:
    """scikit-learn's 1,797 8x8 digits as (1, 8, 8) images scaled to [0, 1] (pixel/16),
    a seeded stratified train/test split (``test_fraction`` 0.2 -> 1,438 / 359), normalised
    with the train mean/std; default augmentation a random 8x8 crop of the 1-px padded
    image (no flips). ``flatten=True`` gives 64-D vectors without augmentation."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    y = d.target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    x_tr, x_te = x[tr], x[te]
    if flatten:
        x_tr, x_te = x_tr.reshape(len(tr), -1), x_te.reshape(len(te), -1)
    return array_bundle("digits", x_tr, y[tr], x_te, y[te], 10, channels=None if flatten else 1,
                        normalization=normalization, mean=mean, std=std, augment=augment,
                        default_augment="none" if flatten else "crop", padding=1,
                        classes=[str(i) for i in range(10)],
                        info={"test_fraction": test_fraction, "flatten": flatten})
