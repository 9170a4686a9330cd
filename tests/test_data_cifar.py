import pickle

import numpy as np
import pytest
import torch

from tavaal.data import CorruptDatasetError, DatasetNotFoundError, load_dataset
from tavaal.data.defaults import CIFAR10_MEAN, CIFAR10_STD

PER_CLASS_BATCH = 4  # images per class per training batch -> 20 per class in 5 batches


def _write(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _batch(n_per_class, num_classes, label_key, rng):
    labels = np.repeat(np.arange(num_classes), n_per_class)
    rng.shuffle(labels)
    data = rng.integers(0, 256, size=(labels.size, 3072), dtype=np.uint8)
    return {b"batch_label": b"x", label_key: labels.tolist(), b"data": data}


@pytest.fixture
def cifar10_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for i in range(1, 6):
        _write(d / f"data_batch_{i}", _batch(PER_CLASS_BATCH, 10, b"labels", rng))
    _write(d / "test_batch", _batch(2, 10, b"labels", rng))
    _write(d / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return tmp_path


@pytest.fixture
def cifar100_dir(tmp_path):
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for split, n in (("train", 2), ("test", 1)):
        b = _batch(n, 100, b"fine_labels", rng)
        b[b"coarse_labels"] = [y // 5 for y in b[b"fine_labels"]]
        _write(d / split, b)
    return tmp_path


def test_cifar10_shapes_and_defaults(cifar10_dir):
    b = load_dataset("cifar10", data_dir=cifar10_dir)
    assert b.num_classes == 10 and b.input_shape == (3, 32, 32)
    assert len(b.train) == 200 and len(b.test) == 20
    assert b.train.data.dtype == torch.uint8  # compact storage
    x, y = b.train[0]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and isinstance(y, int)
    assert b.mean == CIFAR10_MEAN and b.std == CIFAR10_STD
    raw = b.train.data[0].float() / 255
    expected = (raw - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-5)
    assert b.train_targets.dtype == np.int64
    assert np.bincount(b.train_targets).tolist() == [20] * 10
    assert b.classes == tuple(f"c{i}" for i in range(10))
    # augmentation: crop + flip keep the shape, deterministic with a generator
    assert b.augment is not None
    a1 = b.augment(x, generator=torch.Generator().manual_seed(0))
    a2 = b.augment(x, generator=torch.Generator().manual_seed(0))
    assert a1.shape == x.shape and torch.equal(a1, a2)
    # the padding is a raw black pixel after normalisation
    pad = b.augment.transforms[0].fill
    assert np.allclose(pad, [-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD)])
    xb, yb = b.train.get_batch([0, 1])
    assert torch.allclose(xb[0], x) and yb.dtype == torch.int64


def test_cifar10_folder_given_directly(cifar10_dir):
    b = load_dataset("cifar10", data_dir=cifar10_dir / "cifar-10-batches-py")
    assert len(b.train) == 200


def test_cifar10_computed_normalisation(cifar10_dir):
    b = load_dataset("cifar10", data_dir=cifar10_dir, normalization="computed")
    x, _ = b.train.get_batch()
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
    b = load_dataset("cifar10", data_dir=cifar10_dir, normalization="none", augment=False)
    assert b.augment is None and b.mean == (0.0, 0.0, 0.0)
    assert 0 <= b.train[0][0].min() and b.train[0][0].max() <= 1


def test_cifar100(cifar100_dir):
    b = load_dataset("cifar100", data_dir=cifar100_dir)
    assert b.num_classes == 100 and len(b.train) == 200 and len(b.test) == 100
    assert b.mean == CIFAR10_MEAN  # official code uses CIFAR-10 statistics
    assert sorted(set(b.train_targets.tolist())) == list(range(100))
    c = load_dataset("cifar100", data_dir=cifar100_dir, label_type="coarse")
    assert c.num_classes == 20 and c.train_targets.max() == 19


@pytest.mark.parametrize("ratio, expected", [(10, 2), (100, 1), (4, 5)])
def test_cifar10_imbalanced_counts(cifar10_dir, ratio, expected):
    b = load_dataset("cifar10-imb", data_dir=cifar10_dir, imbalance_ratio=ratio)
    counts = np.bincount(b.train_targets, minlength=10)
    assert counts[:5].tolist() == [expected] * 5
    assert counts[5:].tolist() == [20] * 5
    assert len(b.train) == 5 * expected + 100
    assert np.bincount(b.test_targets).tolist() == [2] * 10  # balanced test set
    src = b.train.source_indices
    full = load_dataset("cifar10", data_dir=cifar10_dir)
    assert torch.equal(b.train.data, full.train.data[torch.from_numpy(src)])


def test_cifar10_imbalanced_sampling(cifar10_dir):
    full = load_dataset("cifar10", data_dir=cifar10_dir)
    a = load_dataset("cifar10-imb", data_dir=cifar10_dir, seed=0, imbalance_ratio=10)
    b = load_dataset("cifar10-imb", data_dir=cifar10_dir, seed=0, imbalance_ratio=10)
    c = load_dataset("cifar10-imb", data_dir=cifar10_dir, seed=1, imbalance_ratio=10)
    assert np.array_equal(a.train.source_indices, b.train.source_indices)
    assert not np.array_equal(a.train.source_indices, c.train.source_indices)
    f = load_dataset("cifar10im", data_dir=cifar10_dir, imbalance_ratio=10, imbalance_sampling="first")
    for k in range(5):
        first = np.flatnonzero(full.train_targets == k)[:2]
        assert np.isin(first, f.train.source_indices).all()
    odd = load_dataset("cifar10-imb", data_dir=cifar10_dir, imbalance_ratio=10,
                       reduced_classes=(0, 2, 4, 6, 8))
    assert np.bincount(odd.train_targets).tolist() == [2, 20] * 5
    with pytest.raises(ValueError, match="imbalance_sampling"):
        load_dataset("cifar10-imb", data_dir=cifar10_dir, imbalance_sampling="best")


def test_cifar10_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("cifar10", data_dir=tmp_path)
    msg = str(ei.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg
    assert "data_batch_1..data_batch_5 and test_batch" in msg
    assert "cifar-10-python.tar.gz" in msg and "https://www.cs.toronto.edu/~kriz/cifar.html" in msg
    assert isinstance(ei.value, FileNotFoundError)


def test_cifar10_one_batch_missing(cifar10_dir):
    (cifar10_dir / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing: data_batch_4"):
        load_dataset("cifar10", data_dir=cifar10_dir)


def test_cifar100_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"cifar-100-python with train and test"):
        load_dataset("cifar100", data_dir=tmp_path)


def test_cifar10_truncated_pickle(cifar10_dir):
    p = cifar10_dir / "cifar-10-batches-py" / "data_batch_3"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(CorruptDatasetError, match="data_batch_3.*truncated") as ei:
        load_dataset("cifar10", data_dir=cifar10_dir)
    assert ei.value.path == str(p)


def test_cifar10_wrong_shape(cifar10_dir):
    p = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    _write(p, {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]})
    with pytest.raises(CorruptDatasetError, match=r"test_batch.*\(N, 3072\)"):
        load_dataset("cifar10", data_dir=cifar10_dir)
    _write(p, {b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]})
    with pytest.raises(CorruptDatasetError, match=r"test_batch: 3 images but labels"):
        load_dataset("cifar10", data_dir=cifar10_dir)
    _write(p, {b"data": np.zeros((3, 3072), np.uint8)})
    with pytest.raises(CorruptDatasetError, match=r"test_batch: missing key 'labels'"):
        load_dataset("cifar10", data_dir=cifar10_dir)
    _write(p, {b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]})
    with pytest.raises(CorruptDatasetError, match=r"test_batch: labels must be in \[0, 10\)"):
        load_dataset("cifar10", data_dir=cifar10_dir)


def test_pickle_cannot_run_code(cifar10_dir):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = cifar10_dir / "cifar-10-batches-py" / "data_batch_1"
    _write(p, {b"data": Evil(), b"labels": []})
    with pytest.raises(CorruptDatasetError, match=r"data_batch_1: .*refusing to load global .*print"):
        load_dataset("cifar10", data_dir=cifar10_dir)


def test_unknown_option(cifar10_dir):
    with pytest.raises(ValueError, match="unknown option.*imbalance_ratio"):
        load_dataset("cifar10", data_dir=cifar10_dir, imbalance_ratio=10)
