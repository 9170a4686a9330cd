"""Segmentation models: DRN shapes, the Ranker on DRN stages with the dense per-image target,
and the WAE / discriminator at the paper's 412x412 crops."""
import pytest
import torch
from torch import nn

from tavaal.losses import per_sample_cross_entropy, ranking_loss
from tavaal.models import Discriminator, Ranker, build_wae
from tavaal.models.drn import DRN_ARCHS, DRNSeg, build_drn


def _convs(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("h, w", [(64, 128), (37, 50)])
def test_small_drn_returns_full_resolution_logits_pooled_feature_and_four_stages(h, w):
    model = build_drn("drn-d-small", num_classes=5)
    logits, feature, stages = model(torch.randn(2, 3, h, w))
    assert logits.shape == (2, 5, h, w)
    assert feature.shape == (2, model.feature_dim) == (2, 8 * 16)
    assert [s.shape[1] for s in stages] == model.stage_channels == [16, 32, 64, 128]
    ceil = lambda n, k: -(-n // k)  # noqa: E731
    assert stages[0].shape[-2:] == (ceil(h, 4), ceil(w, 4))  # level 3: output stride 4
    for s in stages[1:]:
        assert s.shape[-2:] == (ceil(h, 8), ceil(w, 8))  # levels 4-6: output stride 8, dilated after
    assert model.dense is True


def test_drn_d_22_has_the_papers_layer_counts_and_widths():
    model = build_drn("drn-d-22", num_classes=19)
    # 22 weighted layers: 1 + 1 + 1 + 4 x (2 blocks x 2 convs) + 1 + 1 = 21 convs + the classifier,
    # plus the 1x1 shortcuts of the 4 residual levels (not counted in the name).
    shortcuts = [c for c in _convs(model) if c.kernel_size == (1, 1) and c is not model.classifier]
    assert len(_convs(model)) - len(shortcuts) == 22
    assert model.stage_channels == [64, 128, 256, 512] and model.feature_dim == 512
    dilations = {c.dilation[0] for c in model.level6.modules() if isinstance(c, nn.Conv2d) and c.kernel_size == (3, 3)}
    assert dilations == {4}
    n_params = sum(p.numel() for p in model.parameters())
    assert 15e6 < n_params < 17e6  # DRN-D-22 is a ~16M-parameter network


def test_drn_validates_its_arguments_and_inputs():
    with pytest.raises(ValueError, match="unknown DRN arch"):
        build_drn("drn-z", 3)
    with pytest.raises(ValueError, match="layers"):
        DRNSeg(3, layers=(1, 1, 1))
    model = build_drn("drn-d-small", 3)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="8x8"):
        model(torch.randn(1, 3, 4, 32))
    assert set(DRN_ARCHS) == {"drn-d-22", "drn-d-small"}


def test_ranker_on_drn_stages_learns_from_the_dense_per_image_loss():
    torch.manual_seed(0)
    model = build_drn("drn-d-small", num_classes=4)
    ranker = Ranker(model.stage_channels, interm_dim=16)
    x = torch.randn(4, 3, 32, 48)
    target = torch.randint(0, 4, (4, 32, 48))
    target[0, :16] = 255
    logits, _, stages = model(x)
    per_image = per_sample_cross_entropy(logits, target)
    pred = ranker(stages)
    assert pred.shape == (4,) and per_image.shape == (4,)
    loss = ranking_loss(pred, per_image)
    loss.backward()
    assert all(p.grad is not None for p in ranker.parameters())
    assert model.level3[0].conv1.weight.grad is not None  # eq. 2: L_R reaches the backbone


def test_mc_dropout_switches_the_dropout2d_before_the_classifier():
    model = build_drn("drn-d-small", num_classes=3, dropout=0.5).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(model(x)[0], model(x)[0])
    model.dropout.train()
    assert not torch.equal(model(x)[0], model(x)[0])


def test_wae_for_412_crops_has_six_stride_2_stages_and_latent_128():
    wae = build_wae((3, 412, 412), 128, rank_conditioned=True, base_channels=4)
    assert wae.variant == "conv64"
    downs = [m for m in wae.encoder if isinstance(m, nn.Conv2d)]
    assert len(downs) == 6 and all(m.stride == (2, 2) for m in downs)  # 412 -> 6 px
    x = torch.randn(2, 3, 412, 412)
    recon, z, mu, logvar = wae(x, torch.rand(2))
    assert recon.shape == x.shape and mu.shape == (2, 128) and z.shape == (2, 128)
    disc = Discriminator(128, hidden_dim=32, num_layers=5, rank_conditioned=True)
    assert disc.layers[0].in_features == 129  # mu plus the normalised rank, last
    assert disc(torch.sigmoid(torch.randn(2)), mu).shape == (2,)


def test_downscaled_wae_input_resizes_large_frames_to_its_canvas_and_back():
    wae = build_wae((3, 96, 192), 16, rank_conditioned=True, base_channels=4, canvas_size=64)
    assert wae.variant == "conv64" and wae._canvas == (64, 64)
    assert len([m for m in wae.encoder if isinstance(m, nn.Conv2d)]) == 4  # built for 64 px, not 96x192
    x = torch.randn(2, 3, 96, 192)
    recon, _, mu, _ = wae(x, torch.rand(2))
    assert recon.shape == x.shape and mu.shape == (2, 16)
    with pytest.raises(ValueError, match="canvas_size"):
        build_wae((8,), 4, canvas_size=64)
