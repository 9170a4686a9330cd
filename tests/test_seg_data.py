"""Segmentation readers (Cityscapes layout, images + masks folder), paired transforms, errors.

Data is generated street scenes written to disk in each layout (tavaal.data.readers.segshapes).
"""
import numpy as np
import pytest
import torch
from PIL import Image

from tavaal.data import load_dataset
from tavaal.data.defaults import IMAGENET_MEAN, IMAGENET_STD
from tavaal.data.errors import CorruptDatasetError, DatasetNotFoundError
from tavaal.data.readers.cityscapes import CITYSCAPES_CLASSES, LABEL_TO_TRAIN_ID, cityscapes_lookup
from tavaal.data.readers.segshapes import (SEGSHAPES_CLASSES, SEGSHAPES_TO_LABEL_ID, generate_street_scenes,
                                           write_cityscapes_layout, write_segfolder_layout)
from tavaal.data.seg_transforms import PairedCompose, PairedRandomCrop, PairedRandomHorizontalFlip


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    return write_cityscapes_layout(tmp_path_factory.mktemp("cs"), num_train=6, num_val=3, image_size=(32, 64))


def _train_id(segshapes_class: str) -> int:
    label_id = SEGSHAPES_TO_LABEL_ID[SEGSHAPES_CLASSES.index(segshapes_class)]
    return LABEL_TO_TRAIN_ID[label_id]


# ------------------------------------------------------------------------- Cityscapes
def test_label_ids_map_to_the_19_train_ids_and_everything_else_to_255():
    table = cityscapes_lookup()
    assert [int(table[i]) for i in (7, 8, 11, 26, 33)] == [0, 1, 2, 13, 18]
    for void in (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30):
        assert table[void] == 255
    assert sorted(int(v) for v in set(table[:34].tolist()) - {255}) == list(range(19))
    assert (table[34:] == -1).all()  # not Cityscapes label ids


def test_cityscapes_reader_pairs_train_and_val_and_maps_labels(cityscapes_root):
    bundle = load_dataset("cityscapes", cityscapes_root, crop_size=None)
    assert (len(bundle.train), len(bundle.test)) == (6, 3)
    assert bundle.num_classes == 19 and bundle.classes == CITYSCAPES_CLASSES
    assert bundle.input_shape == (3, 32, 64)
    assert bundle.info["task"] == "segmentation"
    _, labels = generate_street_scenes(9, 32, 64, 0)
    for i in (0, 5):
        x, mask = bundle.train[i]
        assert x.shape == (3, 32, 64) and x.dtype == torch.float32
        assert mask.shape == (32, 64) and mask.dtype == torch.int64
        expected = np.full(labels[i].shape, 255)
        for k, name in enumerate(SEGSHAPES_CLASSES):
            expected[labels[i] == k] = _train_id(name)
        np.testing.assert_array_equal(mask.numpy(), expected)  # ego band (label id 1) -> 255
    assert any(bool((bundle.train[i][1] == 255).any()) for i in range(6))  # unlabeled pixels survive


def test_cityscapes_image_size_resizes_images_bilinear_and_masks_nearest(cityscapes_root):
    bundle = load_dataset("cityscapes", cityscapes_root, image_size=(16, 32), crop_size=None)
    x, mask = bundle.train[0]
    assert x.shape == (3, 16, 32) and mask.shape == (16, 32)
    full = load_dataset("cityscapes", cityscapes_root, crop_size=None).train[0][1]
    assert set(mask.unique().tolist()) <= set(full.unique().tolist())  # nearest: no new label values


@pytest.mark.parametrize("name", ["cityscapes", "segfolder"])
def test_image_folder_statistics_are_imagenet_or_given_never_computed(cityscapes_root, tmp_path, name):
    root = cityscapes_root if name == "cityscapes" else write_segfolder_layout(tmp_path / "sf", num_images=4)
    bundle = load_dataset(name, root, crop_size=None)
    assert (tuple(bundle.mean), tuple(bundle.std)) == (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD))
    given = load_dataset(name, root, crop_size=None, normalization="computed", mean=(0.5,) * 3, std=(0.25,) * 3)
    assert (tuple(given.mean), tuple(given.std)) == ((0.5,) * 3, (0.25,) * 3)
    with pytest.raises(ValueError, match=f"{name}: normalization='computed' would decode every image; pass mean="):
        load_dataset(name, root, normalization="computed")


def test_missing_cityscapes_tree_says_what_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="gtFine_trainvaltest.zip"):
        load_dataset("cityscapes", tmp_path)


def test_image_without_its_mask_is_reported_by_name(tmp_path):
    root = write_cityscapes_layout(tmp_path / "cs", num_train=3, num_val=1, image_size=(16, 32))
    victim = next((root / "gtFine" / "train").rglob("*_labelIds.png"))
    victim.unlink()
    with pytest.raises(DatasetNotFoundError, match="without a mask \\(looked for e.g. .*_gtFine_labelIds.png") as err:
        load_dataset("cityscapes", root)
    assert victim.name.replace("_gtFine_labelIds", "_leftImg8bit") in str(err.value)


def test_value_that_is_no_cityscapes_label_id_is_rejected(tmp_path):
    root = write_cityscapes_layout(tmp_path / "cs", num_train=2, num_val=1, image_size=(16, 32))
    victim = sorted((root / "gtFine" / "train").rglob("*_labelIds.png"))[0]
    arr = np.array(Image.open(victim))
    arr[0, 0] = 77
    Image.fromarray(arr).save(victim)
    bundle = load_dataset("cityscapes", root)
    with pytest.raises(CorruptDatasetError, match="77"):
        bundle.train[0]
    with pytest.raises(CorruptDatasetError, match="outside the class list"):
        load_dataset("cityscapes", root, validate=True)


# -------------------------------------------------------------------------- segfolder
def test_segfolder_reads_images_with_same_stem_masks_and_class_list(tmp_path):
    root = write_segfolder_layout(tmp_path / "sf", num_images=10, image_size=(24, 40), image_ext=".png")
    bundle = load_dataset("segfolder", root, test_fraction=0.2, seed=3)
    assert (len(bundle.train), len(bundle.test)) == (8, 2)
    assert bundle.classes == SEGSHAPES_CLASSES and bundle.num_classes == 6
    images, labels = generate_street_scenes(10, 24, 40, 0)
    name = bundle.train.source.ids[0]
    i = int(name.split("_")[1].split(".")[0])
    x, mask = bundle.train[0]
    np.testing.assert_array_equal(mask.numpy(), labels[i].astype(np.int64))
    raw = bundle.train.source.read_rows([0])[0]
    np.testing.assert_array_equal(raw.numpy(), images[i])  # lossless PNG round trip


def test_segfolder_explicit_split_folders_and_classes_option(tmp_path):
    write_segfolder_layout(tmp_path / "train", num_images=4, image_size=(16, 32), seed=1)
    write_segfolder_layout(tmp_path / "test", num_images=2, image_size=(16, 32), seed=2)
    bundle = load_dataset("segfolder", tmp_path, classes="a,b,c,d,e,f")
    assert (len(bundle.train), len(bundle.test)) == (4, 2)
    assert bundle.classes == ("a", "b", "c", "d", "e", "f")
    assert bundle.info["split"] == "folders"


def test_segfolder_errors_are_actionable(tmp_path):
    root = write_segfolder_layout(tmp_path / "sf", num_images=4, image_size=(16, 32))
    # label values outside the class list: 3 classes declared, masks use 0..5
    bundle = load_dataset("segfolder", root, classes=3, test_fraction=0.0)
    with pytest.raises(CorruptDatasetError, match=r"mask values 3, 4, 5 are outside the class list \(allowed values: 0-2, 255"):
        for i in range(len(bundle.train)):
            bundle.train[i]
    # a mask of the wrong size
    small = root / "masks" / "scene_0001.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(small)
    with pytest.raises(CorruptDatasetError, match="differ in size") as err:
        load_dataset("segfolder", root)
    assert "scene_0001.png" in str(err.value)
    # a colour mask
    Image.fromarray(np.zeros((16, 32, 3), dtype=np.uint8)).save(small)
    with pytest.raises(CorruptDatasetError, match="single-channel"):
        load_dataset("segfolder", root, validate=True)
    # an orphan mask and a missing class list
    Image.fromarray(np.zeros((16, 32), dtype=np.uint8)).save(root / "masks" / "ghost.png")
    with pytest.raises(DatasetNotFoundError, match="mask\\(s\\) without an image.*ghost.png"):
        load_dataset("segfolder", root)
    (root / "masks" / "ghost.png").unlink()
    (root / "classes.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="classes.txt"):
        load_dataset("segfolder", root)


def test_segfolder_images_of_different_sizes_need_image_size(tmp_path):
    root = write_segfolder_layout(tmp_path / "sf", num_images=3, image_size=(16, 32))
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(root / "images" / "odd.png")
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(root / "masks" / "odd.png")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("segfolder", root, test_fraction=0.0)
    bundle = load_dataset("segfolder", root, test_fraction=0.0, image_size=(16, 16))
    assert bundle.input_shape == (3, 16, 16)
    assert all(bundle.train[i][0].shape == (3, 16, 16) for i in range(len(bundle.train)))


# ------------------------------------------------------------------ paired transforms
def _coded_pair(h=12, w=20, c=3):
    """An image whose every pixel encodes its (row, col), and a mask with the same code."""
    code = torch.arange(h * w).view(h, w)
    return code.float().expand(c, h, w).clone(), code.clone()


def test_random_crop_keeps_image_and_mask_aligned_single_and_batch():
    x, m = _coded_pair()
    crop = PairedRandomCrop((5, 7))
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        xc, mc = crop(x, m, generator=g)
        assert xc.shape == (3, 5, 7) and mc.shape == (5, 7)
        assert torch.equal(xc[0].long(), mc)
        seen.add(int(mc[0, 0]))
    assert len(seen) > 1  # positions vary
    xb, mb = crop(torch.stack([x, x + 0]), torch.stack([m, m]), generator=g)
    assert xb.shape == (2, 3, 5, 7) and torch.equal(xb[:, 0].long(), mb)


def test_crop_larger_than_image_pads_image_with_fill_and_mask_with_ignore():
    x, m = _coded_pair(4, 4, c=1)
    xc, mc = PairedRandomCrop(6, fill=-1.0)(x, m)
    assert xc.shape == (1, 6, 6) and mc.shape == (6, 6)
    assert ((xc[0] == -1.0) == (mc == 255)).all()
    assert int((mc == 255).sum()) == 36 - 16


def test_flip_mirrors_image_and_mask_together():
    x, m = _coded_pair()
    xf, mf = PairedRandomHorizontalFlip(1.0)(x, m)
    assert torch.equal(mf, m.flip(-1)) and torch.equal(xf[0].long(), mf)
    g = torch.Generator().manual_seed(0)
    xb, mb = PairedRandomHorizontalFlip(0.5)(torch.stack([x] * 8), torch.stack([m] * 8), generator=g)
    flipped = [torch.equal(mb[k], m.flip(-1)) for k in range(8)]
    assert any(flipped) and not all(flipped)
    assert torch.equal(xb[:, 0].long(), mb)


def test_compose_is_reproducible_with_a_generator_and_rejects_unpaired_transforms():
    x, m = _coded_pair()
    aug = PairedCompose([PairedRandomCrop(6), PairedRandomHorizontalFlip()])
    a = aug(x, m, generator=torch.Generator().manual_seed(5))
    b = aug(x, m, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[1], b[1]) and torch.equal(a[0][0].long(), a[1])
    with pytest.raises(TypeError):
        PairedCompose([lambda x: x])
    with pytest.raises(ValueError, match="mask"):
        aug(x, m[:5])


def test_reader_augmentation_is_paired_crop_and_flip(cityscapes_root):
    bundle = load_dataset("cityscapes", cityscapes_root, crop_size=(16, 24))
    assert getattr(bundle.augment, "paired", False)
    x, m = bundle.train.get_batch([0, 1, 2])
    xa, ma = bundle.augment(x, m)
    assert xa.shape == (3, 3, 16, 24) and ma.shape == (3, 16, 24)


def test_segshapes_generates_all_classes_and_ignore_pixels_deterministically():
    a = load_dataset("segshapes", num_train=20, num_test=5)
    b = load_dataset("segshapes", num_train=20, num_test=5)
    xa, ya = a.train.get_batch(range(20))
    xb, yb = b.train.get_batch(range(20))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert set(ya.unique().tolist()) == {0, 1, 2, 3, 4, 5, 255}
    assert a.input_shape == (3, 64, 128) and a.num_classes == 6


class _CodedPairs(torch.utils.data.Dataset):
    """Items whose image pixels encode (item, row, col) and whose mask holds the same code."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        code = torch.arange(12 * 20).view(12, 20) + 1000 * i
        return code.float().expand(3, 12, 20).clone(), code


class _CodedBatches(_CodedPairs):
    def get_batch(self, rows):
        items = [self[int(i)] for i in rows]
        return torch.stack([x for x, _ in items]), torch.stack([m for _, m in items])


@pytest.mark.parametrize("dataset", [_CodedPairs(), _CodedBatches()], ids=["per-item", "get_batch"])
def test_training_loaders_crop_and_flip_image_and_mask_together(dataset):
    from tavaal.training.loaders import make_loader

    augment = PairedCompose([PairedRandomCrop((6, 9)), PairedRandomHorizontalFlip(0.5)])
    torch.manual_seed(0)
    batches = list(make_loader(dataset, [0, 1, 2, 3], 2, shuffle=True, augment=augment, seed=1))
    assert len(batches) == 2
    for x, y, idx in batches:
        assert x.shape == (2, 3, 6, 9) and y.shape == (2, 6, 9)
        assert torch.equal(x[:, 0].long(), y)  # same crop window, same flip
        assert ((y // 1000) == idx.view(-1, 1, 1)).all()  # the mask belongs to its image
