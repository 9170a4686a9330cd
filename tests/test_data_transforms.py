import numpy as np
import pytest
import torch

from tavaal.data import (Augmented, Compose, Normalize, RandomCropWithPadding,
                         RandomHorizontalFlip, RandomResizedCrop, Resize)
from tavaal.data.bundle import ArrayDataset
from tavaal.data.transforms import normalized_fill


def _img(c=3, h=32, w=32):
    return torch.arange(c * h * w, dtype=torch.float32).view(c, h, w)


def test_crop_keeps_shape_and_content():
    x = _img()
    t = RandomCropWithPadding(32, 4, fill=-7.0)
    for seed in range(20):
        y = t(x, generator=torch.Generator().manual_seed(seed))
        assert y.shape == x.shape
        # the crop is a shifted window of the padded image: every non-fill value is from x
        vals = y[y != -7.0]
        assert torch.isin(vals, x).all()


def test_crop_deterministic_and_varies():
    x = _img()
    t = RandomCropWithPadding(32, 4)
    a = t(x, generator=torch.Generator().manual_seed(1))
    b = t(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    outs = {t(x, generator=torch.Generator().manual_seed(s)).sum().item() for s in range(30)}
    assert len(outs) > 5
    # constructor generator and global RNG
    t2 = RandomCropWithPadding(32, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(t2(x), a)
    torch.manual_seed(5)
    g1 = t(x)
    torch.manual_seed(5)
    assert torch.equal(t(x), g1)


def test_crop_all_offsets_reachable_and_fill_per_channel():
    x = torch.zeros(2, 4, 4)
    t = RandomCropWithPadding(4, 1, fill=(1.0, 2.0))
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        y = t(x, generator=g)
        assert set(y[0].unique().tolist()) <= {0.0, 1.0}
        assert set(y[1].unique().tolist()) <= {0.0, 2.0}
        seen.add(y[0].numpy().tobytes())
    assert len(seen) == 9  # (2*1+1)^2 offsets


def test_crop_batch_matches_per_sample_semantics():
    xb = torch.stack([_img(3, 8, 8) + 1000 * i for i in range(6)])
    t = RandomCropWithPadding(8, 2, fill=-1.0)
    out = t(xb, generator=torch.Generator().manual_seed(0))
    assert out.shape == xb.shape
    for i in range(6):  # each sample's window comes from its own image
        vals = out[i][out[i] != -1.0]
        assert torch.isin(vals, xb[i]).all()


def test_flip():
    x = _img(1, 2, 3)
    assert torch.equal(RandomHorizontalFlip(1.0)(x), x.flip(-1))
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    t = RandomHorizontalFlip(0.5)
    g = torch.Generator().manual_seed(0)
    res = [torch.equal(t(x, generator=g), x.flip(-1)) for _ in range(200)]
    assert 60 < sum(res) < 140
    xb = torch.stack([x] * 64)
    out = t(xb, generator=torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, x.flip(-1)) for o in out]
    assert all(torch.equal(o, x) or f for o, f in zip(out, flipped)) and 10 < sum(flipped) < 54
    with pytest.raises(ValueError):
        RandomHorizontalFlip(1.5)


def test_compose_forwards_generator_and_normalize():
    x = _img(3, 8, 8)
    t = Compose([RandomCropWithPadding(8, 2), RandomHorizontalFlip(0.5)])
    a = t(x, generator=torch.Generator().manual_seed(3))
    b = t(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    n = Normalize((1.0, 2.0, 3.0), (2.0, 2.0, 2.0))
    y = n(torch.ones(3, 2, 2))
    assert torch.allclose(y[:, 0, 0], torch.tensor([0.0, -0.5, -1.0]))
    assert normalized_fill((0.5,), (0.25,)) == (-2.0,)


def test_random_resized_crop_and_resize():
    x = torch.rand(3, 20, 30)
    t = RandomResizedCrop((16, 16))
    y = t(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == (3, 16, 16)
    assert torch.equal(y, t(x, generator=torch.Generator().manual_seed(0)))
    assert RandomResizedCrop()(x).shape == x.shape
    from PIL import Image

    img = Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8))
    out = Resize(7)(img)
    assert out.size == (7, 7)


def test_augmented_wrapper():
    ds = ArrayDataset(torch.arange(8, dtype=torch.float32).view(2, 1, 2, 2), np.array([0, 1]))
    aug = Augmented(ds, RandomHorizontalFlip(1.0))
    assert len(aug) == 2
    x, y = aug[1]
    assert y == 1 and torch.equal(x, ds[1][0].flip(-1))
    assert torch.equal(Augmented(ds, None)[0][0], ds[0][0])


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"\(C,H,W\)"):
        RandomHorizontalFlip()(torch.zeros(5))
