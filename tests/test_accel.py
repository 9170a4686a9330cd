"""GPU-speed training (tavaal.training.accel): what it does on CUDA, and that it changes
nothing on CPU unless asked for.

CPU tests pin the semantics: device augmentation = the CPU transforms on the same random
draws, device loss sums = per-batch Python sums, the default CPU path = the plain fp32 loop
bit for bit, explicit bf16 runs under autocast. GPU tests (marked ``gpu``) check the same on
CUDA."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tavaal.config import RunConfig, resolve_config
from tavaal.data import load_dataset
from tavaal.data.bundle import ArrayDataset
from tavaal.data.transforms import Compose, RandomCropWithPadding, RandomHorizontalFlip, RandomResizedCrop
from tavaal.losses import ranking_loss
from tavaal.training import (build_adversarial_models, build_task_models, evaluate_accuracy,
                             train_adversarial_models, train_task_models)
from tavaal.training.accel import (Accel, DeviceAugment, DeviceBatchLoader, LossMeter, accel_of,
                                   crop_with_padding, hflip)
from tavaal.training.inference import predict
from tavaal.training.loaders import BatchLoader, make_loader
from tavaal.training.task import _optimizer, batch_loss, detach_epoch

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _images(b=6, c=3, h=8, w=8, seed=0):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _small_config(**over) -> RunConfig:
    # the convolutional digits recipe: the bf16 tests watch a Conv2d in the learner and the WAE
    base = dict(epochs=2, batch_size=32, wae_iterations=6, lr_schedule="multistep", milestones=[1])
    base.update(over)
    return resolve_config("digits-resnet", base)


# ----------------------------------------------------------------------------- resolution
def test_cpu_default_is_inactive():
    accel = Accel.resolve("cpu")
    assert accel.dtype is None and not accel.channels_last and not accel.device_data
    assert accel.sync_every == 1 and not accel.active
    with accel.autocast():
        assert not torch.is_autocast_enabled("cpu")
    assert Accel.from_config(RunConfig(), "cpu") == accel


def test_cuda_default_is_bf16_channels_last_device_data():
    accel = Accel.resolve("cuda")  # resolution only: nothing touches the device
    assert accel.dtype is torch.bfloat16 and accel.channels_last and accel.device_data
    assert accel.sync_every > 1
    opt_out = Accel.resolve("cuda", precision="fp32")
    assert opt_out.dtype is None and opt_out.channels_last
    plain = Accel.from_config(RunConfig(precision="fp32", accel=False), "cuda")
    assert not plain.active and plain.sync_every == 1


def test_explicit_bf16_applies_on_cpu_too():
    accel = Accel.resolve("cpu", precision="bf16")
    assert accel.dtype is torch.bfloat16 and not accel.channels_last
    with accel.autocast():
        assert torch.is_autocast_enabled("cpu")


def test_bad_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        Accel.resolve("cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_config("moons", {"precision": "half"})


def test_models_remember_their_accel():
    model = torch.nn.Linear(2, 2)
    assert accel_of(model, "cpu") == Accel.resolve("cpu")
    Accel.resolve("cpu", precision="bf16").prepare(model, None)
    assert accel_of(model, "cpu").dtype is torch.bfloat16
    assert accel_of(model, "cuda").device.type == "cuda"
    assert "_tavaal_accel" not in str(model.state_dict().keys())


# ----------------------------------------------------------------------------- loss accounting
def test_loss_meter_sums_equal_the_per_batch_python_sum_exactly():
    rng = np.random.default_rng(0)
    batches = [torch.tensor(v, dtype=torch.float32) for v in rng.gamma(2.0, 1.3, size=97)]
    ranks = [None if i % 5 == 0 else torch.tensor(float(i) / 7, dtype=torch.float32) for i in range(97)]
    meter = LossMeter()
    task_sum, rank_sum = 0.0, 0.0
    for t, r in zip(batches, ranks):
        meter.add(task=t, ranker=r)
        task_sum += float(t)
        rank_sum += 0.0 if r is None else float(r)
    sums = meter.sums(("task", "ranker", "never"))
    assert sums == {"task": task_sum, "ranker": rank_sum, "never": 0.0}


# ----------------------------------------------------------------------------- device augmentation
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
def test_crop_with_padding_equals_pad_then_slice_per_item(dtype):
    x = (_images(5) * 40 + 100).clamp(0, 255).to(dtype)
    oy = torch.tensor([0, 8, 3, 5, 1])
    ox = torch.tensor([8, 0, 4, 2, 7])
    fill = (1.0, 2.0, 3.0)
    out = crop_with_padding(x, oy, ox, (8, 8), 4, fill)
    assert out.shape == x.shape and out.dtype == dtype
    for i in range(5):
        padded = torch.stack([F.pad(x[i, ch].float(), (4, 4, 4, 4), value=fill[ch]) for ch in range(3)]).to(dtype)
        assert torch.equal(out[i], padded[:, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8])


def test_a_given_crop_offset_gives_the_per_item_transforms_tensor():
    x = _images(4)
    t = RandomCropWithPadding(8, padding=2, fill=(-1.0, 0.5, 2.0))
    for i in range(4):
        expected = t(x[i], generator=torch.Generator().manual_seed(10 + i))
        g = torch.Generator().manual_seed(10 + i)  # the draws the transform made: row, then column
        oy, ox = torch.randint(0, 5, (1,), generator=g), torch.randint(0, 5, (1,), generator=g)
        got = crop_with_padding(x[i:i + 1], oy, ox, (8, 8), 2, t.fill)[0]
        assert torch.equal(got, expected)


def test_hflip_mirrors_exactly_the_masked_items():
    x = _images(4)
    mask = torch.tensor([True, False, False, True])
    out = hflip(x, mask)
    for i in range(4):
        assert torch.equal(out[i], x[i].flip(-1) if mask[i] else x[i])


@pytest.mark.parametrize("transform", [
    RandomCropWithPadding(8, padding=4, fill=(0.1, 0.2, 0.3)),
    RandomHorizontalFlip(0.5),
    Compose([RandomCropWithPadding(8, padding=1, fill=-0.5), RandomHorizontalFlip(0.5)]),
])
def test_device_augment_on_cpu_equals_the_cpu_transform_on_the_same_draws(transform):
    x = _images(16)
    device_version = DeviceAugment.from_transform(transform)
    assert device_version is not None
    for seed in range(3):
        expected = transform(x, generator=torch.Generator().manual_seed(seed))
        got = device_version(x, generator=torch.Generator().manual_seed(seed))
        assert got.shape == x.shape and got.dtype == x.dtype
        assert torch.equal(got, expected)


def test_transforms_without_a_device_version_are_not_translated():
    assert DeviceAugment.from_transform(None) is None
    assert DeviceAugment.from_transform(RandomResizedCrop(8)) is None
    assert DeviceAugment.from_transform(Compose([RandomHorizontalFlip(), lambda x: x])) is None


# ----------------------------------------------------------------------------- device-resident loader
def _array_dataset(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    return ArrayDataset(data, np.arange(n) % 10, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))


@pytest.mark.parametrize("drop_last", [False, True])
def test_device_batch_loader_gives_the_batch_loaders_batches(drop_last):
    ds = _array_dataset()
    indices = np.arange(3, 37)
    aug = Compose([RandomCropWithPadding(8, padding=4, fill=(-2.0, -2.0, -2.0)), RandomHorizontalFlip(0.5)])
    plain = BatchLoader(ds, indices, 8, shuffle=True, augment=aug, seed=5, drop_last=drop_last)
    device = DeviceBatchLoader(ds, indices, 8, shuffle=True, augment=DeviceAugment.from_transform(aug), seed=5,
                               drop_last=drop_last, device="cpu")
    assert len(device) == len(plain)
    for _ in range(2):  # two epochs: the permutation advances the same way
        torch.manual_seed(123)  # both augment from the global RNG of the batch's device
        expected = list(plain)
        torch.manual_seed(123)
        got = list(device)
        assert len(got) == len(expected)
        for (xe, ye, ie), (xg, yg, ig) in zip(expected, got):
            assert torch.equal(ig, ie) and torch.equal(yg, ye)
            assert xg.dtype == torch.float32 and torch.equal(xg, xe)


def test_device_loader_only_for_in_memory_data_sets():
    assert DeviceBatchLoader.supports(_array_dataset())
    assert not DeviceBatchLoader.supports(torch.utils.data.TensorDataset(torch.zeros(3, 2)))
    with pytest.raises(TypeError, match="in-memory"):
        DeviceBatchLoader(torch.utils.data.TensorDataset(torch.zeros(3, 2)), [0, 1], 2, shuffle=False)


def test_accel_loader_falls_back_to_the_plain_loader():
    ds = _array_dataset()
    assert type(Accel.resolve("cpu").loader(ds, range(10), 4, shuffle=True)) is BatchLoader
    cuda = Accel.resolve("cuda")  # fallbacks decided before anything touches the device
    assert type(cuda.loader(ds, range(10), 4, shuffle=True, augment=RandomResizedCrop(8))) is BatchLoader
    assert not isinstance(cuda.loader(ds, range(10), 4, shuffle=True, num_workers=1), DeviceBatchLoader)
    tensors = torch.utils.data.TensorDataset(torch.zeros(10, 2), torch.zeros(10))
    assert not isinstance(cuda.loader(tensors, range(10), 4, shuffle=False), DeviceBatchLoader)


# ----------------------------------------------------------------------------- CPU results unchanged
def test_cpu_default_training_is_the_plain_fp32_loop_bit_for_bit(digits):
    """train_task_models on CPU (default precision/accel) == a plain loop over the same
    building blocks: same weights, same reported loss."""
    config = _small_config()
    labeled = np.arange(0, 96)
    torch.manual_seed(0)
    models = build_task_models(config, digits.input_shape, digits.num_classes, with_ranker=True)
    history = train_task_models(models, digits.train, labeled, config, ranker_loss="ranking",
                                augment=digits.augment, seed=1)

    torch.manual_seed(0)
    ref = build_task_models(config, digits.input_shape, digits.num_classes, with_ranker=True)
    ref.train()
    loader = make_loader(digits.train, labeled, config.batch_size, shuffle=True, augment=digits.augment, seed=1)
    optimizers = [_optimizer(config, ref.backbone.parameters()), _optimizer(config, ref.ranker.parameters())]
    schedulers = [torch.optim.lr_scheduler.MultiStepLR(o, config.milestones, config.lr_gamma) for o in optimizers]
    for epoch in range(config.epochs):
        total, batches = 0.0, 0
        for x, y, _ in loader:
            loss, task_loss, _ = batch_loss(ref, x, y, ranking_loss, eta=config.eta,
                                            detach_ranker=epoch > detach_epoch(config))
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in optimizers:
                o.step()
            total += float(task_loss.detach())
            batches += 1
        for s in schedulers:
            s.step()

    assert history["task_loss"] == total / batches
    for (name, p), q in zip(models.backbone.named_parameters(), ref.backbone.parameters()):
        assert torch.equal(p, q), name
    for p, q in zip(models.ranker.parameters(), ref.ranker.parameters()):
        assert torch.equal(p, q)


def test_cpu_default_equals_explicit_fp32_plain(digits):
    labeled, unlabeled = np.arange(0, 64), np.arange(64, 160)
    results = []
    for over in ({}, {"precision": "fp32", "accel": False}):
        config = _small_config(steps=5, **over)
        torch.manual_seed(0)
        task = build_task_models(config, digits.input_shape, digits.num_classes, with_ranker=True)
        h = train_task_models(task, digits.train, labeled, config, ranker_loss="ranking", augment=digits.augment)
        adv = build_adversarial_models(config, digits.input_shape, rank_conditioned=True)
        losses = train_adversarial_models(adv, digits.train, labeled, unlabeled, config, task=task)
        results.append((h, losses, [p.detach().clone() for p in adv.wae.parameters()]))
    (h0, l0, w0), (h1, l1, w1) = results
    assert h0 == h1 and l0 == l1
    assert all(torch.equal(a, b) for a, b in zip(w0, w1))


# ----------------------------------------------------------------------------- bf16 on request
def _record_dtypes(module: torch.nn.Module, sink: list):
    conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    return conv.register_forward_hook(lambda m, i, o: sink.append(o.dtype))


def test_bf16_autocast_runs_on_cpu_when_requested(digits):
    config = _small_config(precision="bf16", steps=4)
    labeled, unlabeled = np.arange(0, 64), np.arange(64, 128)
    torch.manual_seed(0)
    task = build_task_models(config, digits.input_shape, digits.num_classes, with_ranker=True)
    seen: list = []
    hook = _record_dtypes(task.backbone, seen)
    history = train_task_models(task, digits.train, labeled, config, ranker_loss="ranking", augment=digits.augment)
    assert seen and set(seen) == {torch.bfloat16}  # training and the Ranker fit both ran in bf16
    assert all(p.dtype == torch.float32 for p in task.backbone.parameters())  # master weights stay fp32
    assert np.isfinite(history["task_loss"]) and np.isfinite(history["ranker_loss"])

    seen.clear()
    out = predict(digits.train, unlabeled, backbone=task.backbone, ranker=task.ranker, outputs=("logits", "rank"))
    assert set(seen) == {torch.bfloat16} and out["logits"].dtype == torch.float32  # inference as trained
    assert not torch.equal(out["rank"], out["rank"].bfloat16().float())  # the Ranker head ran in fp32: no bf16 ties
    assert 0.0 <= evaluate_accuracy(task.backbone, digits.test) <= 1.0
    hook.remove()

    adv = build_adversarial_models(config, digits.input_shape, rank_conditioned=True)
    wae_seen: list = []
    hook = _record_dtypes(adv.wae, wae_seen)
    losses = train_adversarial_models(adv, digits.train, labeled, unlabeled, config, task=task)
    hook.remove()
    assert set(wae_seen) == {torch.bfloat16}
    assert all(np.isfinite(v) for k, v in losses.items() if k != "diagnostics")


# ----------------------------------------------------------------------------- on the GPU
@pytest.mark.gpu
def test_gpu_device_loader_matches_the_cpu_loader_without_augmentation():
    ds = _array_dataset(n=300)
    plain = BatchLoader(ds, np.arange(300), 64, shuffle=True, seed=3)
    device = Accel.resolve("cuda").loader(ds, np.arange(300), 64, shuffle=True, seed=3)
    assert isinstance(device, DeviceBatchLoader)
    for (xe, ye, ie), (xg, yg, ig) in zip(plain, device):
        assert xg.is_cuda and yg.is_cuda and ig.is_cuda
        assert torch.equal(ig.cpu(), ie) and torch.equal(yg.cpu(), ye)
        assert torch.allclose(xg.cpu(), xe, rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_gpu_crop_and_flip_equal_the_cpu_ops_for_the_same_offsets():
    x = _images(64, h=32, w=32)
    g = torch.Generator().manual_seed(0)
    oy, ox = torch.randint(0, 9, (64,), generator=g), torch.randint(0, 9, (64,), generator=g)
    mask = torch.rand(64, generator=g) < 0.5
    fill = (-2.4, -2.4, -2.2)
    cpu = hflip(crop_with_padding(x, oy, ox, (32, 32), 4, fill), mask)
    gpu = hflip(crop_with_padding(x.cuda(), oy.cuda(), ox.cuda(), (32, 32), 4, fill), mask.cuda())
    assert torch.equal(gpu.cpu(), cpu)
    aug = DeviceAugment.from_transform(Compose([RandomCropWithPadding(32, 4, fill), RandomHorizontalFlip()]))
    out = aug(x.cuda())
    assert out.is_cuda and out.shape == x.shape


@pytest.mark.gpu
def test_gpu_training_is_bf16_channels_last_and_finite(digits):
    config = _small_config(steps=30, device="cuda")
    labeled, unlabeled = np.arange(0, 200), np.arange(200, 600)
    torch.manual_seed(0)
    task = build_task_models(config, digits.input_shape, digits.num_classes, with_ranker=True)
    seen: list = []
    hook = _record_dtypes(task.backbone, seen)
    history = train_task_models(task, digits.train, labeled, config, ranker_loss="ranking",
                                augment=digits.augment, device="cuda")
    hook.remove()
    assert set(seen) == {torch.bfloat16} and np.isfinite(history["task_loss"])
    conv = next(m for m in task.backbone.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert 0.0 <= evaluate_accuracy(task.backbone, digits.test, device="cuda") <= 1.0
    adv = build_adversarial_models(config, digits.input_shape, rank_conditioned=True)
    losses = train_adversarial_models(adv, digits.train, labeled, unlabeled, config, task=task, device="cuda")
    assert all(np.isfinite(v) for k, v in losses.items() if k != "diagnostics")
    mu = predict(digits.train, unlabeled, wae=adv.wae, outputs=("mu",), device="cuda")["mu"]
    assert mu.shape == (400, config.latent_dim) and mu.dtype == torch.float32 and not mu.is_cuda
