import numpy as np
import pytest
import torch

from tavaal.data import CorruptDatasetError, DatasetNotFoundError, load_dataset


def test_vectors_with_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(100, 5)).astype(np.float64)
    y = np.repeat(np.arange(4), 25)
    f = tmp_path / "d.npz"
    np.savez(f, X=x, y=y)
    b = load_dataset("npz", data_dir=f, seed=0)
    assert b.input_shape == (5,) and b.num_classes == 4
    assert len(b.train) == 80 and len(b.test) == 20
    assert np.bincount(b.test_targets).tolist() == [5] * 4  # stratified
    xt, _ = b.train.get_batch()
    assert xt.dtype == torch.float32
    assert torch.allclose(xt.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(xt.std(0, unbiased=False), torch.ones(5), atol=1e-4)
    assert b.augment is None
    b2 = load_dataset("npz", path=f, seed=0)
    assert np.array_equal(b.train_targets, b2.train_targets)
    # a folder holding exactly one .npz works too
    assert len(load_dataset("npz", data_dir=tmp_path).train) == 80


@pytest.mark.parametrize("layout, shape", [("NHWC", (20, 6, 7, 3)), ("NCHW", (20, 3, 6, 7)),
                                           ("auto", (20, 6, 7, 3)), ("auto", (20, 3, 6, 7))])
def test_uint8_images_layouts(tmp_path, layout, shape):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    xt = rng.integers(0, 256, size=(5,) + shape[1:], dtype=np.uint8)
    f = tmp_path / "img.npz"
    np.savez(f, X=x, y=np.arange(20) % 2, X_test=xt, y_test=np.arange(5) % 2)
    b = load_dataset("npz", data_dir=f, layout=layout)
    assert b.input_shape == (3, 6, 7)
    assert b.train.data.dtype == torch.uint8
    assert len(b.test) == 5
    xb, _ = b.train.get_batch()
    assert torch.allclose(xb.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    nchw = x if shape[1] == 3 else x.transpose(0, 3, 1, 2)
    m, s = np.array(b.mean).reshape(3, 1, 1), np.array(b.std).reshape(3, 1, 1)
    assert np.allclose(b.train[4][0].numpy(), (nchw[4] / 255.0 - m) / s, atol=1e-5)


def test_gray_images_and_string_labels(tmp_path):
    f = tmp_path / "g.npz"
    np.savez(f, X=np.random.default_rng(0).random((10, 4, 4)).astype(np.float32),
             y=np.array(["cat", "dog"] * 5), X_test=np.zeros((2, 4, 4), np.float32),
             y_test=np.array(["dog", "cat"]))
    b = load_dataset("npz", data_dir=f, augment="crop", padding=1)
    assert b.input_shape == (1, 4, 4) and b.num_classes == 2
    assert b.classes == ("cat", "dog")
    assert b.train_targets.tolist() == [0, 1] * 5 and b.test_targets.tolist() == [1, 0]
    assert b.augment(b.train[0][0]).shape == (1, 4, 4)


def test_ambiguous_layout(tmp_path):
    f = tmp_path / "a.npz"
    np.savez(f, X=np.zeros((4, 3, 5, 3), np.uint8), y=np.zeros(4, int))
    with pytest.raises(ValueError, match="layout='NCHW' or layout='NHWC'"):
        load_dataset("npz", data_dir=f)
    assert load_dataset("npz", data_dir=f, layout="NHWC", test_fraction=0.0).input_shape == (3, 3, 5)


def test_npz_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nope.npz")):
        load_dataset("npz", data_dir=tmp_path / "nope.npz")
    with pytest.raises(DatasetNotFoundError, match="data_dir="):
        load_dataset("npz")
    f = tmp_path / "bad.npz"
    np.savez(f, X=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(CorruptDatasetError, match=r"bad.npz: missing array\(s\) \['y'\]"):
        load_dataset("npz", data_dir=f)
    np.savez(f, X=np.zeros((3, 2)), y=np.zeros(4, int))
    with pytest.raises(CorruptDatasetError, match=r"bad.npz: X has shape \(3, 2\) but y has 4"):
        load_dataset("npz", data_dir=f)
    np.savez(f, X=np.array([[np.nan, 1.0]]), y=np.zeros(1, int))
    with pytest.raises(CorruptDatasetError, match="NaN"):
        load_dataset("npz", data_dir=f)
    np.savez(f, X=np.zeros((3, 2)), y=np.zeros(3, int), X_test=np.zeros((1, 2)))
    with pytest.raises(CorruptDatasetError, match="X_test and y_test"):
        load_dataset("npz", data_dir=f)
    f.write_bytes(b"garbage")
    with pytest.raises(CorruptDatasetError, match="bad.npz: cannot read"):
        load_dataset("npz", data_dir=f)
