import numpy as np
import pytest
import torch
from PIL import Image

from tavaal.data import CorruptDatasetError, DatasetNotFoundError, SourceDataset, load_dataset
from tavaal.data.sources import ImageFolderSource, find_unreadable
from tavaal.data.defaults import IMAGENET_MEAN


def _img(path, size=(20, 12), mode="RGB", value=None, fmt=None):
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
    Image.fromarray(arr, mode=mode).save(path, format=fmt)


def _tree(root, counts=(9, 5, 20), corrupt=True):
    for k, n in enumerate(counts):
        d = root / f"class_{k}"
        d.mkdir(parents=True)
        for i in range(n):
            ext = "png" if i % 2 else "jpg"
            _img(d / f"im_{i:03d}.{ext}", mode="L" if i == 0 else "RGB")
    (root / "class_0" / "notes.txt").write_text("ignored")
    if corrupt:
        (root / "class_1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return root


def test_folder_seeded_split_lazy(tmp_path):
    root = _tree(tmp_path / "imgs", corrupt=False)
    b = load_dataset("folder", data_dir=root, image_size=16, test_fraction=0.25, seed=3)
    assert b.classes == ("class_0", "class_1", "class_2")
    assert b.num_classes == 3 and b.input_shape == (3, 16, 16)
    assert len(b.train) + len(b.test) == 34
    assert len(b.test) == round(34 * 0.25)
    assert np.bincount(b.test_targets, minlength=3).tolist() == [2, 1, 5]  # largest remainder
    assert isinstance(b.train.view, SourceDataset) and isinstance(b.train.source, ImageFolderSource)
    x, y = b.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and isinstance(y, int)
    assert b.mean == IMAGENET_MEAN
    # same seed -> same split, files disjoint between train and test
    c = load_dataset("folder", data_dir=root, image_size=16, test_fraction=0.25, seed=3)
    assert c.train.source.ids == b.train.source.ids
    assert not set(b.train.source.ids) & set(b.test.source.ids)
    d = load_dataset("folder", data_dir=root, image_size=16, test_fraction=0.25, seed=4)
    assert d.test.source.ids != b.test.source.ids
    # augmentation: horizontal flip by default, optional random resized crop
    assert type(b.augment).__name__ == "RandomHorizontalFlip"
    e = load_dataset("folder", data_dir=root, image_size=16, augment="flip+rrc")
    assert e.augment(x).shape == x.shape


def test_folder_normalisation_value(tmp_path):
    root = tmp_path / "flat"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    _img(root / "a" / "x.png", value=255)
    _img(root / "b" / "y.png", value=0)
    b = load_dataset("folder", data_dir=root, image_size=8, test_fraction=0.0, mean=(0.5,), std=(0.5,))
    x, y = b.train[0]
    assert y == 0 and torch.allclose(x, torch.ones(3, 8, 8))
    x, y = b.train[1]
    assert y == 1 and torch.allclose(x, -torch.ones(3, 8, 8))


def test_folder_split_folders(tmp_path):
    _tree(tmp_path / "train", counts=(3, 2), corrupt=False)
    _tree(tmp_path / "test", counts=(1, 1), corrupt=False)
    b = load_dataset("folder", data_dir=tmp_path, image_size=8)
    assert len(b.train) == 5 and len(b.test) == 2
    assert b.info["split"] == "folders"


def test_corrupt_image_raises_on_access(tmp_path):
    root = _tree(tmp_path / "imgs")
    b = load_dataset("folder", data_dir=root, image_size=8, test_fraction=0.0)
    bad = [i for i, ident in enumerate(b.train.source.ids) if ident.endswith("broken.jpg")]
    assert len(bad) == 1
    with pytest.raises(CorruptDatasetError, match="broken.jpg: cannot decode image") as ei:
        b.train[bad[0]]
    assert ei.value.path == str(root / "class_1" / "broken.jpg")
    report = find_unreadable(b.train.source, workers=0, progress=False)
    assert [ident for ident, _ in report] == ["class_1/broken.jpg"]


def test_validate_lists_every_bad_file(tmp_path):
    root = _tree(tmp_path / "imgs")
    (root / "class_2" / "empty.png").write_bytes(b"")
    p = root / "class_0" / "cut.png"
    _img(p, size=(64, 64))
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CorruptDatasetError) as ei:
        load_dataset("folder", data_dir=root, image_size=8, validate=True)
    msg = str(ei.value)
    assert "3 unreadable image(s)" in msg
    for name in ("broken.jpg", "empty.png", "cut.png"):
        assert name in msg
    assert len(ei.value.paths) == 3


def test_folder_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nope")):
        load_dataset("folder", data_dir=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="found no sub-folders"):
        load_dataset("folder", data_dir=tmp_path / "empty")
    (tmp_path / "empty" / "cls").mkdir()
    with pytest.raises(DatasetNotFoundError, match="without images.*cls"):
        load_dataset("folder", data_dir=tmp_path / "empty")


def test_caltech101(tmp_path):
    cats = tmp_path / "caltech101" / "101_ObjectCategories"
    _tree(cats, counts=(30, 12, 50), corrupt=False)
    (cats / "BACKGROUND_Google").mkdir()
    for i in range(8):
        _img(cats / "BACKGROUND_Google" / f"b{i}.jpg")
    b = load_dataset("caltech101", data_dir=tmp_path, image_size=32)
    assert b.num_classes == 4 and "BACKGROUND_Google" in b.classes
    n = 100
    assert len(b.train) + len(b.test) == n
    assert len(b.test) == round(n * 1019 / 9144)
    assert b.input_shape == (3, 32, 32)
    nb = load_dataset("caltech101", data_dir=tmp_path, image_size=32, include_background=False)
    assert nb.num_classes == 3 and len(nb.train) + len(nb.test) == 92
    assert b.train[0][0].shape == (3, 32, 32)


def test_caltech101_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("caltech101", data_dir=tmp_path)
    assert str(tmp_path / "101_ObjectCategories") in str(ei.value)


def test_paper_sized_caltech_split():
    from tavaal.data.readers._common import stratified_split

    rng = np.random.default_rng(0)
    counts = np.concatenate([[800, 798, 435, 468], rng.integers(31, 60, size=97), [0]])
    counts[-1] = 9144 - counts.sum()
    y = np.repeat(np.arange(102), counts)
    tr, te = stratified_split(y, 1019 / 9144, seed=0)
    assert len(tr) == 8125 and len(te) == 1019
    assert np.all(np.bincount(y[tr], minlength=102) >= 1)
