import numpy as np
import pytest
import torch

scipy_io = pytest.importorskip("scipy.io")

from tavaal.data import CorruptDatasetError, DatasetNotFoundError, load_dataset  # noqa: E402


def _write(path, n, rng, labels=None):
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1) if labels is None else np.asarray(labels)
    scipy_io.savemat(str(path), {"X": x, "y": y.reshape(-1, 1).astype(np.uint8)})
    return x, y


@pytest.fixture
def svhn_dir(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path / "train_32x32.mat", 30, rng)
    _write(tmp_path / "test_32x32.mat", 10, rng)
    return tmp_path


def test_svhn(svhn_dir):
    b = load_dataset("svhn", data_dir=svhn_dir)
    assert len(b.train) == 30 and len(b.test) == 10
    assert b.input_shape == (3, 32, 32) and b.num_classes == 10
    # label 10 means digit 0
    assert b.train_targets.tolist() == [(i % 10 + 1) % 10 for i in range(30)]
    assert b.augment is None  # official code: no augmentation
    from scipy.io import loadmat

    raw = loadmat(str(svhn_dir / "train_32x32.mat"))["X"]
    assert torch.equal(b.train.data[3], torch.from_numpy(raw[..., 3].transpose(2, 0, 1).copy()))
    x, _ = b.train[0]
    assert x.dtype == torch.float32
    c = load_dataset("svhn", data_dir=svhn_dir, normalization="computed", augment="crop")
    xb, _ = c.train.get_batch()
    assert torch.allclose(xb.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert c.augment(x).shape == x.shape


def test_svhn_missing(tmp_path):
    _write(tmp_path / "train_32x32.mat", 2, np.random.default_rng(0))
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("svhn", data_dir=tmp_path)
    assert "test_32x32.mat" in str(ei.value) and str(tmp_path) in str(ei.value)
    assert ei.value.missing == [str(tmp_path / "test_32x32.mat")]


def test_svhn_corrupt(svhn_dir):
    (svhn_dir / "test_32x32.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(CorruptDatasetError, match="test_32x32.mat: cannot read"):
        load_dataset("svhn", data_dir=svhn_dir)


def test_svhn_wrong_shape(svhn_dir):
    scipy_io.savemat(str(svhn_dir / "test_32x32.mat"),
                     {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(CorruptDatasetError, match=r"test_32x32.mat: 'X' must have shape \(32, 32, 3, N\)"):
        load_dataset("svhn", data_dir=svhn_dir)
    scipy_io.savemat(str(svhn_dir / "test_32x32.mat"), {"images": np.zeros((2, 2))})
    with pytest.raises(CorruptDatasetError, match="expected variables 'X' and 'y'"):
        load_dataset("svhn", data_dir=svhn_dir)
