import numpy as np
import pytest
import torch

from tavaal.data import DATASETS, DatasetBundle, get_spec, load_dataset


def test_moons():
    b = load_dataset("moons", seed=0)
    assert isinstance(b, DatasetBundle)
    assert b.num_classes == 2 and b.input_shape == (2,)
    assert np.bincount(b.train_targets).tolist() == [500, 50]
    assert np.bincount(b.test_targets).tolist() == [500, 50]
    assert b.points.shape == (550, 2) and b.augment is None
    x, _ = b.train.get_batch()
    assert x.dtype == torch.float32 and x.shape == (550, 2)
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    # points are the raw coordinates
    raw = torch.from_numpy(b.points)
    assert torch.allclose((raw - torch.tensor(b.mean)) / torch.tensor(b.std), x, atol=1e-5)
    xt, _ = b.test.get_batch()
    assert not torch.equal(xt, x)  # test set drawn from another seed
    assert torch.equal(load_dataset("moons", seed=0).train.get_batch()[0], x)
    assert not torch.equal(load_dataset("moons", seed=1).train.get_batch()[0], x)
    small = load_dataset("moons", n_majority=40, n_minority=4, test_majority=10, test_minority=10)
    assert np.bincount(small.train_targets).tolist() == [40, 4]
    assert np.bincount(small.test_targets).tolist() == [10, 10]


def test_digits():
    b = load_dataset("digits", seed=0)
    assert b.input_shape == (1, 8, 8) and b.num_classes == 10
    assert len(b.train) + len(b.test) == 1797
    assert len(b.test) == round(1797 * 0.2)
    tr_frac = np.bincount(b.train_targets) / len(b.train)
    te_frac = np.bincount(b.test_targets) / len(b.test)
    assert np.abs(tr_frac - te_frac).max() < 0.01  # stratified
    x, _ = b.train.get_batch()
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std(unbiased=False)) - 1) < 1e-3
    # augmentation: 8x8 crop of the 1-px padded image, no flips
    aug = b.augment
    assert aug.padding == 1 and aug.size == (8, 8)
    xi = b.train[0][0]
    assert aug(xi, generator=torch.Generator().manual_seed(0)).shape == (1, 8, 8)
    c = load_dataset("digits", seed=0)
    assert np.array_equal(c.train_targets, b.train_targets)
    d = load_dataset("digits", seed=1)
    assert not np.array_equal(d.train_targets, b.train_targets)
    f = load_dataset("digits", flatten=True)
    assert f.input_shape == (64,) and f.augment is None and f.train[0][0].shape == (64,)


def test_registry_names_and_errors():
    for name in ("moons", "digits", "cifar10", "cifar100", "cifar10-imb", "svhn",
                 "fashionmnist", "caltech101", "folder", "npz"):
        assert name in DATASETS
    assert get_spec("cifar10im").name == "cifar10-imb"
    assert get_spec("CIFAR10_IMB").name == "cifar10-imb"
    assert get_spec("cifar100").mean == get_spec("cifar10").mean
    assert "imbalance_ratio" in get_spec("cifar10-imb").options
    assert get_spec("cifar10-imb").options["imbalance_ratio"] == 10
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*available: caltech101, cifar10"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown option.*bogus.*valid options"):
        load_dataset("moons", bogus=1)
    with pytest.raises(ValueError, match="normalization"):
        load_dataset("moons", normalization="zscore")
    with pytest.raises(ValueError, match="augment"):
        load_dataset("digits", augment="mixup")


def test_bundle_helpers():
    b = load_dataset("digits")
    aug = b.augmented_train(torch.Generator().manual_seed(0))
    assert len(aug) == len(b.train)
    assert aug[0][0].shape == (1, 8, 8)
    assert b.class_counts().sum() == len(b.train)
    assert "digits" in b.summary()
    loader = torch.utils.data.DataLoader(aug, batch_size=32)
    xb, yb = next(iter(loader))
    assert xb.shape == (32, 1, 8, 8) and yb.dtype == torch.int64
