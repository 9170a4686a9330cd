"""Models: task learners, Ranker, conditional WAE, discriminator (docs/CONTRACTS.md).

Small widths and batch 2 keep the 224-px cases fast on a 2-core CPU.
"""
import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tavaal.models import (
    ConditionalWAE,
    Discriminator,
    MLPTaskLearner,
    Ranker,
    ResNet18CIFAR,
    ResNet18ImageNet,
    build_task_learner,
    build_wae,
)

B = 2
K = 5


def ceil_half(n, times=1):
    for _ in range(times):
        n = (n + 1) // 2  # 3x3 (or 7x7) stride-2 conv / 3x3 stride-2 max-pool with padding: ceil(n / 2)
    return n


# ============================================================= task learners
@pytest.mark.parametrize("channels,size", [(1, 8), (1, 28), (3, 32), (1, 32), (3, 64), (3, 224)])
def test_resnet18_cifar_shapes(channels, size):
    width = 4
    model = ResNet18CIFAR(K, in_channels=channels, width=width)
    logits, feature, stages = model(torch.randn(B, channels, size, size))
    assert logits.shape == (B, K)
    assert feature.shape == (B, 8 * width) and model.feature_dim == 8 * width
    assert model.stage_channels == [width, 2 * width, 4 * width, 8 * width]
    assert model.num_classes == K
    # stride-1 stem, no max-pool: stage maps H, H/2, H/4, H/8 (28 px: 28, 14, 7, 4 as the official ResNet18fm)
    sizes = [size, ceil_half(size, 1), ceil_half(size, 2), ceil_half(size, 3)]
    assert [tuple(s.shape) for s in stages] == [(B, c, h, h) for c, h in zip(model.stage_channels, sizes)]


def test_resnet18_cifar_32px_stage_maps_match_the_official_network():
    model = ResNet18CIFAR(10)  # width 64
    _, feature, stages = model.eval()(torch.randn(1, 3, 32, 32))
    assert [tuple(s.shape[1:]) for s in stages] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    assert feature.shape == (1, 512)
    # BasicBlocks [2, 2, 2, 2]
    assert [len(layer) for layer in (model.layer1, model.layer2, model.layer3, model.layer4)] == [2, 2, 2, 2]
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize("channels,size", [(3, 64), (1, 64), (3, 224), (1, 224), (3, 32)])
def test_resnet18_imagenet_shapes(channels, size):
    width = 4
    model = ResNet18ImageNet(K, in_channels=channels, width=width)
    logits, feature, stages = model(torch.randn(B, channels, size, size))
    assert logits.shape == (B, K) and feature.shape == (B, 8 * width)
    # 7x7/2 stem + 3x3/2 max-pool: /4 before stage 1 (224 px: 56, 28, 14, 7)
    first = ceil_half(size, 2)
    sizes = [first, ceil_half(first, 1), ceil_half(first, 2), ceil_half(first, 3)]
    assert [tuple(s.shape[2:]) for s in stages] == [(h, h) for h in sizes]
    assert [s.shape[1] for s in stages] == model.stage_channels
    assert any(isinstance(m, nn.MaxPool2d) for m in model.modules())


def test_mlp_task_learner_shapes_and_mid_layer_stage():
    model = MLPTaskLearner(2, 2)  # paper §4.1: Linear(2,64)-ReLU-Linear(64,64)-ReLU-Linear(64,2)
    assert len([m for m in model.modules() if isinstance(m, nn.Linear)]) == 3
    x = torch.randn(7, 2)
    logits, feature, stages = model(x)
    assert logits.shape == (7, 2) and feature.shape == (7, 64)
    assert len(stages) == 1 and stages[0].shape == (7, 64) and model.stage_channels == [64]
    # the Ranker's stage is the activation after the middle (2nd of 3) Linear layer
    mid = F.relu(model.hidden_layers[1](F.relu(model.hidden_layers[0](x))))
    assert torch.equal(stages[0], mid)
    # with unequal widths the stage channels follow the chosen layer
    other = MLPTaskLearner(3, 4, hidden=(16, 8, 32))
    assert other.stage_channels == [8] and other.feature_dim == 32
    assert other(torch.randn(2, 3))[2][0].shape == (2, 8)


def test_mlp_task_learner_flattens_images():
    model = MLPTaskLearner(1 * 8 * 8, 10, hidden=(16, 16))
    logits, feature, stages = model(torch.randn(3, 1, 8, 8))
    assert logits.shape == (3, 10)
    with pytest.raises(ValueError):
        model(torch.randn(3, 10))


@pytest.mark.parametrize(
    "shape,arch,expected",
    [
        ((2,), "auto", MLPTaskLearner),
        ((64,), "auto", MLPTaskLearner),
        ((1, 8, 8), "auto", ResNet18CIFAR),
        ((1, 28, 28), "auto", ResNet18CIFAR),
        ((3, 32, 32), "auto", ResNet18CIFAR),
        ((3, 63, 80), "auto", ResNet18CIFAR),
        ((3, 64, 64), "auto", ResNet18ImageNet),
        ((3, 224, 224), "auto", ResNet18ImageNet),
        ((3, 224, 224), "resnet18-cifar", ResNet18CIFAR),
        ((3, 32, 32), "resnet18-imagenet", ResNet18ImageNet),
        ((1, 8, 8), "mlp", MLPTaskLearner),
    ],
)
def test_build_task_learner_selects_architecture(shape, arch, expected):
    model = build_task_learner(shape, K, arch=arch, width=4)
    assert type(model) is expected
    logits, feature, stages = model(torch.randn(B, *shape))
    assert logits.shape == (B, K) and feature.shape == (B, model.feature_dim)
    assert [s.shape[1] for s in stages] == model.stage_channels


def test_build_task_learner_passes_width_and_dropout():
    model = build_task_learner((3, 32, 32), 10, width=8, dropout=0.3)
    assert model.stage_channels == [8, 16, 32, 64] and model.dropout.p == 0.3
    mlp = build_task_learner((2,), 2, width=16, dropout=0.1)
    assert mlp.stage_channels == [16] and mlp.feature_dim == 16 and mlp.dropout.p == 0.1


def test_build_task_learner_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown arch"):
        build_task_learner((3, 32, 32), 10, arch="vgg")
    with pytest.raises(ValueError, match="image"):
        build_task_learner((10,), 10, arch="resnet18-cifar")
    with pytest.raises(ValueError):
        build_task_learner((32, 32), 10)
    with pytest.raises(ValueError):
        build_task_learner((3, 32, 32), 10, dropout=1.0)
    with pytest.raises(ValueError):
        ResNet18CIFAR(10, in_channels=3, width=4)(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 64, 64), (2,)])
def test_task_learner_eval_is_deterministic_and_dropout_only_acts_in_train_mode(shape):
    model = build_task_learner(shape, K, width=8, dropout=0.5)
    x = torch.randn(4, *shape)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # MC-dropout: only model.dropout in train mode -> same feature, different logits
    model.dropout.train()
    with torch.no_grad():
        c, d = model(x), model(x)
    assert torch.equal(c[1], a[1]) and torch.equal(d[1], a[1])
    assert not torch.equal(c[0], d[0])


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64), (2,)])
def test_task_learner_and_ranker_gradients_flow(shape):
    model = build_task_learner(shape, K, width=4)
    ranker = Ranker(model.stage_channels, interm_dim=8)
    logits, _, stages = model(torch.randn(4, *shape))
    loss = F.cross_entropy(logits, torch.arange(4) % K) + ranker(stages).pow(2).mean()
    loss.backward()
    for name, p in list(model.named_parameters()) + list(ranker.named_parameters()):
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_task_learners_are_scriptable():
    x = torch.randn(2, 1, 28, 28)
    model = ResNet18CIFAR(K, in_channels=1, width=4).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(model)
        torch.jit.script(MLPTaskLearner(2, 2))
    assert torch.allclose(scripted(x)[0], model(x)[0], atol=1e-6)


# ==================================================================== Ranker
@pytest.mark.parametrize(
    "shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64), (3, 224, 224), (2,), (20,)]
)
def test_ranker_on_each_task_learner(shape):
    model = build_task_learner(shape, K, width=4)
    ranker = Ranker(model.stage_channels)
    out = ranker(model(torch.randn(B, *shape))[2])
    assert out.shape == (B,)
    assert len(ranker.fcs) == len(model.stage_channels)
    assert ranker.linear.in_features == 128 * len(model.stage_channels)


def test_ranker_computes_gap_fc_relu_concat_linear():
    ranker = Ranker([3, 5], interm_dim=4)
    s1, s2 = torch.randn(2, 3, 7, 7), torch.randn(2, 5, 4, 4)
    h1 = F.relu(ranker.fcs[0](s1.mean(dim=(2, 3))))
    h2 = F.relu(ranker.fcs[1](s2.mean(dim=(2, 3))))
    expected = ranker.linear(torch.cat([h1, h2], 1)).squeeze(1)
    assert torch.allclose(ranker([s1, s2]), expected, atol=1e-6)
    # 2-D stages pass without pooling
    v = torch.randn(2, 3)
    r2 = Ranker([3], interm_dim=4)
    assert torch.allclose(r2([v]), r2.linear(F.relu(r2.fcs[0](v))).squeeze(1), atol=1e-6)


def test_ranker_official_shapes_for_cifar_resnet():
    ranker = Ranker([64, 128, 256, 512])
    assert [fc.in_features for fc in ranker.fcs] == [64, 128, 256, 512]
    assert all(fc.out_features == 128 for fc in ranker.fcs)
    assert ranker.linear.in_features == 512 and ranker.linear.out_features == 1


def test_ranker_validates_stages():
    ranker = Ranker([4, 8])
    with pytest.raises(ValueError, match="stages"):
        ranker([torch.randn(2, 4, 3, 3)])
    with pytest.raises(ValueError, match="channels"):
        ranker([torch.randn(2, 4, 3, 3), torch.randn(2, 9, 3, 3)])
    with pytest.raises(ValueError):
        Ranker([])


def test_ranker_is_scriptable():
    ranker = Ranker([4, 8], interm_dim=16)
    stages = [torch.randn(3, 4, 5, 5), torch.randn(3, 8, 3, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(ranker)
    assert torch.allclose(scripted(stages), ranker(stages), atol=1e-6)


# ====================================================================== WAE
WAE_SHAPES = [
    ((1, 8, 8), "conv32"),
    ((1, 28, 28), "conv32"),
    ((3, 28, 28), "conv32"),
    ((3, 32, 32), "conv32"),
    ((1, 32, 32), "conv32"),
    ((3, 40, 48), "conv32"),
    ((3, 64, 64), "conv64"),
    ((1, 64, 64), "conv64"),
    ((3, 224, 224), "conv64"),
    ((3, 100, 72), "conv64"),
    ((2,), "mlp"),
    ((64,), "mlp"),
]


@pytest.mark.parametrize("shape,variant", WAE_SHAPES)
@pytest.mark.parametrize("rank_conditioned", [True, False])
def test_wae_output_shapes(shape, variant, rank_conditioned):
    d = 6
    wae = build_wae(shape, d, rank_conditioned=rank_conditioned, base_channels=4, hidden_dim=16)
    assert wae.variant == variant
    x = torch.randn(B, *shape)
    recon, z, mu, logvar = wae(x, torch.rand(B))
    assert recon.shape == x.shape
    assert z.shape == mu.shape == logvar.shape == (B, d)
    mu2, logvar2 = wae.encode(x)
    assert mu2.shape == logvar2.shape == (B, d)


def test_wae_conv32_is_the_vaal_network_at_32px():
    wae = ConditionalWAE((3, 32, 32), latent_dim=32, rank_conditioned=True)  # base_channels 128
    convs = [m for m in wae.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (3, 128, (4, 4), (2, 2), (1, 1)),
        (128, 256, (4, 4), (2, 2), (1, 1)),
        (256, 512, (4, 4), (2, 2), (1, 1)),
        (512, 1024, (4, 4), (2, 2), (1, 1)),
    ]
    assert all(c.bias is None for c in convs)
    assert wae.fc_mu.in_features == 4096 and wae.fc_logvar.in_features == 4096  # 1024 x 2 x 2
    first = wae.decoder[0]
    assert isinstance(first, nn.Linear) and (first.in_features, first.out_features) == (33, 1024 * 4 * 4)
    deconvs = [m for m in wae.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in deconvs] == [
        (1024, 512, (4, 4)),
        (512, 256, (4, 4)),
        (256, 128, (4, 4)),
        (128, 3, (1, 1)),
    ]
    # VAAL: decoder sees z only
    assert ConditionalWAE((3, 32, 32), 32, rank_conditioned=False, base_channels=8).decoder[0].in_features == 32


def _first_conv_output_size(wae, x):
    sizes = []
    conv = next(m for m in wae.encoder if isinstance(m, nn.Conv2d))
    handle = conv.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[2:])))
    wae.encode(x)
    handle.remove()
    return sizes[0]


def test_wae_conv64_keeps_full_resolution_and_adds_stages():
    # 64 px: the WAE-pytorch 64x64 layout: 4 stride-2 convs to 4x4 (flatten 8b*16), decoder seed 8x8
    b = 4
    w64 = build_wae((3, 64, 64), 8, base_channels=b)
    assert sum(isinstance(m, nn.Conv2d) for m in w64.encoder) == 4
    assert w64.fc_mu.in_features == 8 * b * 4 * 4
    assert w64.decoder[0].out_features == 8 * b * 8 * 8
    # 224 px: 5 stride-2 convs (224 -> 7), first conv at 112 px (no resize to 32), decoder seed 14x14
    w224 = build_wae((3, 224, 224), 8, base_channels=b)
    assert sum(isinstance(m, nn.Conv2d) for m in w224.encoder) == 5
    assert w224.fc_mu.in_features == 8 * b * 7 * 7
    assert w224.decoder[0].out_features == 8 * b * 14 * 14
    assert _first_conv_output_size(w224, torch.randn(1, 3, 224, 224)) == (112, 112)
    # the 32-px network resizes inputs to 32 (the VAAL authors' ImageNet choice) only if asked
    w28 = build_wae((1, 28, 28), 8, base_channels=b)
    assert _first_conv_output_size(w28, torch.randn(1, 1, 28, 28)) == (16, 16)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 20, 32)])
def test_wae_conv32_pad_fit(shape):
    wae = build_wae(shape, 4, base_channels=4, input_fit="pad")
    x = torch.randn(B, *shape)
    assert wae(x, torch.rand(B))[0].shape == x.shape


def test_wae_rejects_bad_configurations():
    with pytest.raises(ValueError, match="pad"):
        build_wae((3, 40, 40), 4, input_fit="pad")
    with pytest.raises(ValueError, match="conv64"):
        build_wae((1, 8, 8), 4, variant="conv64")
    with pytest.raises(ValueError, match="image"):
        build_wae((10,), 4, variant="conv32")
    with pytest.raises(ValueError):
        build_wae((3, 32, 32), 4, variant="resnet")
    with pytest.raises(ValueError):
        build_wae((32, 32), 4)
    wae = build_wae((3, 32, 32), 4, base_channels=4)
    with pytest.raises(ValueError, match="shape"):
        wae.encode(torch.randn(2, 3, 28, 28))


def test_wae_variant_override_conv32_on_large_images_and_mlp_on_images():
    w = build_wae((3, 64, 64), 4, base_channels=4, variant="conv32")
    x = torch.randn(B, 3, 64, 64)
    assert w(x, torch.rand(B))[0].shape == x.shape
    assert _first_conv_output_size(w, x) == (16, 16)  # resized to 32 first
    m = build_wae((1, 8, 8), 4, variant="mlp", hidden_dim=16)
    assert m(torch.randn(B, 1, 8, 8), torch.rand(B))[0].shape == (B, 1, 8, 8)


def test_wae_mlp_is_two_layer_encoder_and_decoder():
    wae = build_wae((2,), 3, hidden_dim=16)
    enc_linears = [m for m in wae.encoder if isinstance(m, nn.Linear)] + [wae.fc_mu]
    dec_linears = [m for m in wae.decoder if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in enc_linears] == [(2, 16), (16, 3)]
    assert [(m.in_features, m.out_features) for m in dec_linears] == [(4, 16), (16, 2)]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (5,)])
def test_rank_conditioning_changes_reconstruction_not_mu(shape):
    wae = build_wae(shape, 8, rank_conditioned=True, base_channels=4, hidden_dim=16).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        rec_lo, z_lo, mu_lo, lv_lo = wae(x, torch.full((3,), 0.1))
        rec_hi, z_hi, mu_hi, lv_hi = wae(x, torch.full((3,), 0.9))
    assert torch.equal(mu_lo, mu_hi) and torch.equal(lv_lo, lv_hi) and torch.equal(z_lo, z_hi)
    assert (rec_lo - rec_hi).abs().max().item() > 1e-4  # the decoder uses r
    # r (B,) and (B, 1) are the same thing, appended as the last decoder input column
    with torch.no_grad():
        assert torch.equal(wae(x, torch.full((3, 1), 0.1))[0], rec_lo)
    inp = wae.decoder_input(mu_lo, torch.tensor([0.1, 0.2, 0.3]))
    assert inp.shape == (3, 9) and torch.allclose(inp[:, -1], torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(inp[:, :-1], mu_lo)


def test_rank_conditioned_wae_requires_r():
    wae = build_wae((3, 32, 32), 8, base_channels=4)
    with pytest.raises(ValueError, match="rank"):
        wae(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError):
        wae(torch.randn(2, 3, 32, 32), torch.rand(3))


@pytest.mark.parametrize("shape", [(3, 32, 32), (5,)])
def test_vaal_wae_ignores_r(shape):
    wae = build_wae(shape, 8, rank_conditioned=False, base_channels=4, hidden_dim=16).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        a = wae(x, torch.full((3,), 0.1))[0]
        b = wae(x, torch.full((3,), 0.9))[0]
        c = wae(x)[0]
    assert torch.equal(a, b) and torch.equal(a, c)
    assert wae.decoder_input(torch.zeros(3, 8), None).shape == (3, 8)


def test_reparameterisation_in_train_mode_uses_torch_generators():
    wae = build_wae((3, 32, 32), 8, base_channels=4).train()
    x, r = torch.randn(4, 3, 32, 32), torch.rand(4)
    gen = torch.Generator().manual_seed(123)
    _, z, mu, logvar = wae(x, r, generator=gen)
    eps = torch.randn(4, 8, generator=torch.Generator().manual_seed(123))
    assert torch.allclose(z, mu + eps * torch.exp(0.5 * logvar), atol=1e-6)
    assert not torch.allclose(z, mu)
    # global seeding reproduces the sample
    torch.manual_seed(7)
    z1 = wae.reparameterize(mu.detach(), logvar.detach())
    torch.manual_seed(7)
    z2 = wae.reparameterize(mu.detach(), logvar.detach())
    assert torch.equal(z1, z2)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 224, 224), (5,)])
def test_wae_eval_mode_is_deterministic_and_z_is_mu(shape):
    wae = build_wae(shape, 8, base_channels=4, hidden_dim=16).eval()
    x, r = torch.randn(B, *shape), torch.rand(B)
    with torch.no_grad():
        rec1, z1, mu1, _ = wae(x, r)
        rec2, z2, mu2, _ = wae(x, r)
        assert torch.equal(rec1, rec2) and torch.equal(z1, mu1) and torch.equal(mu1, mu2)
        assert torch.equal(wae.encode_mean(x), mu1)
        # batch composition does not matter in eval mode (running BN statistics)
        assert torch.allclose(wae.encode_mean(x[:1]), mu1[:1], atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64), (5,)])
def test_wae_gradients_flow(shape):
    wae = build_wae(shape, 8, base_channels=4, hidden_dim=16).train()
    x = torch.randn(4, *shape)
    recon, _, mu, logvar = wae(x, torch.rand(4))
    loss = F.mse_loss(recon, x) + (mu.pow(2) + logvar.exp() - logvar).mean()
    loss.backward()
    for name, p in wae.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_wae_init_follows_the_official_kaiming_init():
    wae = build_wae((3, 32, 32), 8, base_channels=16)
    conv = wae.encoder[3]  # Conv2d(16, 32, 4): kaiming-normal fan-in std = sqrt(2 / (16 * 16))
    assert isinstance(conv, nn.Conv2d)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (16 * 16)), rel=0.1)
    bns = [m for m in wae.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)
    assert torch.all(wae.decoder[0].bias == 0)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 224, 224), (5,)])
def test_mean_encoder_traces_to_mu(shape):
    wae = build_wae(shape, 8, base_channels=4, hidden_dim=16).eval()
    enc = wae.mean_encoder()
    assert not enc.training
    x = torch.randn(B, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(enc, x)
    other = torch.randn(3, *shape)
    with torch.no_grad():
        assert torch.allclose(traced(other), wae.encode_mean(other), atol=1e-5)


# ============================================================ Discriminator
@pytest.mark.parametrize("num_layers", [3, 5])
@pytest.mark.parametrize("rank_conditioned", [True, False])
def test_discriminator_layers_and_input_dims(num_layers, rank_conditioned):
    d = 8
    disc = Discriminator(d, hidden_dim=16, num_layers=num_layers, rank_conditioned=rank_conditioned)
    assert len(disc.layers) == num_layers and all(isinstance(m, nn.Linear) for m in disc.layers)
    dims = [(m.in_features, m.out_features) for m in disc.layers]
    assert dims[0] == (d + (1 if rank_conditioned else 0), 16) and dims[-1] == (16, 1)
    mu, r = torch.randn(4, d), torch.rand(4)
    p = disc(r, mu)
    assert p.shape == (4,) and torch.all((p > 0) & (p < 1))
    assert torch.allclose(p, torch.sigmoid(disc.logits(r, mu)))


def test_discriminator_default_is_the_paper_five_layer_mlp():
    disc = Discriminator(64)
    assert [(m.in_features, m.out_features) for m in disc.layers] == [
        (65, 512), (512, 512), (512, 512), (512, 512), (512, 1)
    ]


def test_discriminator_uses_r_as_last_column_only_when_rank_conditioned():
    mu = torch.randn(4, 8)
    disc = Discriminator(8, hidden_dim=16, num_layers=3)
    assert torch.equal(disc.inputs(torch.arange(4.0), mu)[:, -1], torch.arange(4.0))
    assert not torch.allclose(disc(torch.zeros(4), mu), disc(torch.full((4,), 5.0), mu))
    with pytest.raises(ValueError):
        disc(None, mu)
    vaal = Discriminator(8, hidden_dim=16, num_layers=3, rank_conditioned=False)
    assert torch.equal(vaal(None, mu), vaal(torch.rand(4), mu))
    with pytest.raises(ValueError):
        Discriminator(8, num_layers=1)
    with pytest.raises(ValueError):
        disc(torch.rand(4), torch.randn(4, 7))


def test_discriminator_gradients_flow_to_mu_and_parameters():
    disc = Discriminator(8, hidden_dim=16, num_layers=5)
    mu = torch.randn(4, 8, requires_grad=True)
    disc(torch.rand(4), mu).log().mean().backward()
    assert mu.grad is not None and mu.grad.abs().sum() > 0
    assert all(p.grad is not None for p in disc.parameters())


def test_discriminator_is_scriptable():
    disc = Discriminator(8, hidden_dim=16, num_layers=3)
    mu, r = torch.randn(3, 8), torch.rand(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(disc)
    assert torch.allclose(scripted(r, mu), disc(r, mu))
