import gzip
import struct

import numpy as np
import pytest
import torch

from tavaal.data import CorruptDatasetError, DatasetNotFoundError, load_dataset
from tavaal.data.defaults import FASHIONMNIST_MEAN


def _idx(arr: np.ndarray) -> bytes:
    return struct.pack(">I", 0x0800 | arr.ndim) + b"".join(
        struct.pack(">I", d) for d in arr.shape) + arr.astype(np.uint8).tobytes()


def _write(folder, gz=True, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte"
            data = _idx(arr)
            if gz:
                with gzip.open(folder / (name + ".gz"), "wb") as f:
                    f.write(data)
            else:
                (folder / name).write_bytes(data)
        out[split] = (x, y)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_fashionmnist(tmp_path, gz):
    raw = _write(tmp_path, gz=gz)
    b = load_dataset("fashionmnist", data_dir=tmp_path)
    assert len(b.train) == 30 and len(b.test) == 10
    assert b.input_shape == (1, 28, 28) and b.num_classes == 10
    assert b.train_targets.tolist() == (np.arange(30) % 10).tolist()
    assert torch.equal(b.train.data[:, 0], torch.from_numpy(raw["train"][0]))
    assert b.mean == FASHIONMNIST_MEAN
    x, y = b.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert b.augment is None
    assert b.classes[9] == "Ankle boot"


def test_fashionmnist_torchvision_layout_and_mnist(tmp_path):
    _write(tmp_path / "FashionMNIST" / "raw")
    assert len(load_dataset("fmnist", data_dir=tmp_path).train) == 30
    _write(tmp_path / "mnist", gz=False)
    b = load_dataset("mnist", data_dir=tmp_path, normalization="computed", augment="crop")
    xb, _ = b.train.get_batch()
    assert abs(float(xb.mean())) < 1e-4
    assert b.augment.padding == 2


def test_idx_missing(tmp_path):
    _write(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("fashionmnist", data_dir=tmp_path)
    msg = str(ei.value)
    assert "t10k-labels-idx1-ubyte[.gz]" in msg and str(tmp_path) in msg
    assert "missing t10k-labels-idx1-ubyte" in msg


def test_idx_bad_magic(tmp_path):
    _write(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    data = bytearray(p.read_bytes())
    data[2] = 0x0D  # float data type
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError, match=r"train-images-idx3-ubyte: bad IDX magic number 0x00000d03"):
        load_dataset("fashionmnist", data_dir=tmp_path)


def test_idx_wrong_ndim(tmp_path):
    _write(tmp_path, gz=False)
    # labels file where the images should be
    (tmp_path / "train-images-idx3-ubyte").write_bytes((tmp_path / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(CorruptDatasetError, match="1-D data, expected 3-D"):
        load_dataset("fashionmnist", data_dir=tmp_path)


def test_idx_truncated(tmp_path):
    _write(tmp_path, gz=True)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(CorruptDatasetError, match=r"t10k-images-idx3-ubyte.gz: header says shape \(10, 28, 28\)"):
        load_dataset("fashionmnist", data_dir=tmp_path)
    p.write_bytes(p.read_bytes()[:40])  # truncated gzip stream
    with pytest.raises(CorruptDatasetError, match="t10k-images-idx3-ubyte.gz: cannot read"):
        load_dataset("fashionmnist", data_dir=tmp_path)


def test_idx_count_mismatch(tmp_path):
    _write(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(29, np.uint8)))
    with pytest.raises(CorruptDatasetError, match="30 images but .*train-labels-idx1-ubyte has 29 labels"):
        load_dataset("fashionmnist", data_dir=tmp_path)
