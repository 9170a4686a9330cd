"""Losses of TA-VAAL (paper eqs. 1, 4, 5, 6) and Learning Loss, checked against hand arithmetic.

Notation: sigma = sigmoid, softplus(a) = log(1 + e^a); -log sigma(d) = softplus(-d) and
-log(1 - sigma(d)) = softplus(d). Constants used below:
  softplus(-1) = log(1 + e^-1) = 0.3132616875
  softplus(3)  = log(1 + e^3)  = 3.0485873516
  log 2 = 0.6931471806
"""
import math

import pytest
import torch
from torch import nn

from tavaal.losses import (
    discriminator_loss,
    discriminator_loss_from_logits,
    flip_pairs,
    gaussian_kl,
    margin_ranking_loss,
    ranking_loss,
    vae_adversarial_loss,
    vae_adversarial_loss_from_logits,
    wae_loss,
)

SP_M1 = math.log1p(math.exp(-1.0))  # softplus(-1) = -log sigma(1)
SP_3 = math.log1p(math.exp(3.0))  # softplus(3) = -log sigma(-3)
LOG2 = math.log(2.0)


def t(values, requires_grad=False):
    return torch.tensor(values, dtype=torch.float32, requires_grad=requires_grad)


# ---------------------------------------------------------------------------- pairing
def test_flip_pairs_pairs_i_with_b_minus_1_minus_i():
    # B = 4: pairs (0, 3), (1, 2).  pred diffs: 10-40 = -30, 20-30 = -10
    diff, target_diff = flip_pairs(t([10.0, 20.0, 30.0, 40.0]), t([1.0, 5.0, 2.0, 0.0]))
    assert diff.tolist() == [-30.0, -10.0]
    assert target_diff.tolist() == [1.0, 3.0]  # 1-0, 5-2


def test_flip_pairs_odd_batch_leaves_middle_out():
    # B = 5: pairs (0, 4), (1, 3); sample 2 unused
    diff, _ = flip_pairs(t([1.0, 2.0, 99.0, 4.0, 5.0]), t([0.0, 0.0, 0.0, 0.0, 0.0]))
    assert diff.tolist() == [-4.0, -2.0]


def test_flip_pairs_accepts_column_vectors():
    a, b = flip_pairs(t([[1.0], [2.0]]), t([[3.0], [1.0]]))
    assert a.tolist() == [-1.0] and b.tolist() == [2.0]


@pytest.mark.parametrize("fn", [ranking_loss, margin_ranking_loss])
@pytest.mark.parametrize("n", [0, 1])
def test_ranking_losses_reject_batches_without_a_pair(fn, n):
    with pytest.raises(ValueError, match="at least 2"):
        fn(torch.zeros(n), torch.zeros(n))


@pytest.mark.parametrize("fn", [ranking_loss, margin_ranking_loss])
def test_ranking_losses_reject_mismatched_shapes(fn):
    with pytest.raises(ValueError):
        fn(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError):
        fn(torch.zeros(2, 2), torch.zeros(2, 2))


# ------------------------------------------------------------------ eq. (1) ranking loss
def test_ranking_loss_b2_by_hand():
    # pair (0, 1): d = 2 - 1 = 1; l0 = 0.5 > l1 = 0.2 -> I = 1; loss = -log sigma(1) = softplus(-1)
    loss = ranking_loss(t([2.0, 1.0]), t([0.5, 0.2]))
    assert loss.item() == pytest.approx(SP_M1, rel=1e-6)


def test_ranking_loss_b4_by_hand():
    # pred [0, 1, 2, 3], target [1, 2, 3, 0]
    # pair (0, 3): d = 0 - 3 = -3, l0 = 1 > l3 = 0 -> I = 1 -> -log sigma(-3) = softplus(3) = 3.04859
    # pair (1, 2): d = 1 - 2 = -1, l1 = 2 < l2 = 3 -> I = 0 -> -log(1 - sigma(-1)) = softplus(-1) = 0.31326
    # mean over the 2 pairs = (3.04859 + 0.31326) / 2 = 1.68093
    pred, target = t([0.0, 1.0, 2.0, 3.0]), t([1.0, 2.0, 3.0, 0.0])
    assert ranking_loss(pred, target).item() == pytest.approx((SP_3 + SP_M1) / 2, rel=1e-6)
    assert ranking_loss(pred, target, reduction="sum").item() == pytest.approx(SP_3 + SP_M1, rel=1e-6)
    per_pair = ranking_loss(pred, target, reduction="none")
    assert per_pair.shape == (2,)
    assert per_pair.tolist() == pytest.approx([SP_3, SP_M1], rel=1e-6)


def test_ranking_loss_odd_batch_ignores_middle_sample():
    # B = 3: only pair (0, 2): d = 0.5 - (-0.5) = 1, l0 = 2 > l2 = 1 -> I = 1 -> softplus(-1)
    pred, target = t([0.5, 100.0, -0.5]), t([2.0, -7.0, 1.0])
    assert ranking_loss(pred, target).item() == pytest.approx(SP_M1, rel=1e-6)
    # whatever the middle sample's values, the loss is the same
    assert ranking_loss(t([0.5, -3.0, -0.5]), t([2.0, 50.0, 1.0])).item() == pytest.approx(SP_M1, rel=1e-6)


def test_ranking_loss_ties_count_as_not_greater():
    # l_i == l_j -> I = 0 -> loss = softplus(d); d = 0 gives log 2, d = 1 gives softplus(1)
    assert ranking_loss(t([0.0, 0.0]), t([1.0, 1.0])).item() == pytest.approx(LOG2, rel=1e-6)
    assert ranking_loss(t([1.0, 0.0]), t([1.0, 1.0])).item() == pytest.approx(math.log1p(math.e), rel=1e-6)


def test_ranking_loss_gradient_by_hand_and_target_detached():
    # d loss / d d = sigma(d) - I = sigma(1) - 1 = -0.268941; d d / d pred0 = 1, d d / d pred1 = -1
    pred = t([2.0, 1.0], requires_grad=True)
    target = t([0.5, 0.2], requires_grad=True)
    ranking_loss(pred, target).backward()
    g = 1.0 / (1.0 + math.e) - 0.0  # sigma(1) - 1 = -1 / (1 + e)
    assert pred.grad.tolist() == pytest.approx([-g, g], rel=1e-5)
    assert target.grad is None  # the target is detached: no gradient into the task loss


def test_ranking_loss_is_stable_for_large_differences():
    # d = 200, I = 0 -> softplus(200) = 200 (BCELoss on sigmoid(d) would clamp at 100)
    loss = ranking_loss(t([100.0, -100.0]), t([0.0, 1.0]))
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(200.0, rel=1e-6)
    # correctly ranked with a large gap -> ~0
    assert ranking_loss(t([100.0, -100.0]), t([1.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)


def test_ranking_loss_matches_the_official_bce_on_sigmoid_formulation():
    # official code: nn.BCELoss()(sigmoid(l_hat_i - l_hat_j), sign(clamp(l_i - l_j, min=0)))
    g = torch.Generator().manual_seed(3)
    pred, target = torch.randn(10, generator=g), torch.rand(10, generator=g)
    target[2] = target[7]  # include a tie
    diff = pred[:5] - pred.flip(0)[:5]
    ind = torch.sign(torch.clamp(target[:5] - target.flip(0)[:5], min=0))
    expected = nn.BCELoss()(torch.sigmoid(diff), ind)
    assert ranking_loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-5)


# ------------------------------------------------------ Learning Loss margin ranking loss
def test_margin_loss_b2_by_hand():
    # l0 > l1 -> I = +1.  loss = max(0, -I * d + 1)
    # d = 0.5 -> max(0, 0.5) = 0.5 ; d = 1 -> max(0, 0) = 0 ; d = 3 -> max(0, -2) = 0 ; d = -1 -> 2
    assert margin_ranking_loss(t([1.5, 1.0]), t([0.5, 0.2])).item() == pytest.approx(0.5)
    assert margin_ranking_loss(t([2.0, 1.0]), t([0.5, 0.2])).item() == pytest.approx(0.0)
    assert margin_ranking_loss(t([4.0, 1.0]), t([0.5, 0.2])).item() == pytest.approx(0.0)
    assert margin_ranking_loss(t([0.0, 1.0]), t([0.5, 0.2])).item() == pytest.approx(2.0)


def test_margin_loss_zero_when_every_pair_is_ranked_by_the_margin():
    # B = 4, pairs (0,3), (1,2): l0 > l3 and d = 5 - 0 = 5 >= 1; l1 < l2 and d = 1 - 3 = -2 <= -1
    pred, target = t([5.0, 1.0, 3.0, 0.0], requires_grad=True), t([0.9, 0.1, 0.8, 0.2])
    loss = margin_ranking_loss(pred, target)
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad.abs().sum().item() == 0.0  # no gradient once the margin is met


def test_margin_loss_b4_by_hand_and_margin_argument():
    # pred [0, 1, 2, 3], target [1, 2, 3, 0]
    # pair (0, 3): d = -3, I = +1 -> max(0, 3 + xi);  pair (1, 2): d = -1, I = -1 -> max(0, -1 + xi)
    # xi = 1:   (4 + 0) / 2 = 2.0         (paper: (2/B) * sum over B/2 pairs = 2/4 * 4 = 2)
    # xi = 0.5: (3.5 + 0) / 2 = 1.75
    # xi = 2:   (5 + 1) / 2 = 3.0
    pred, target = t([0.0, 1.0, 2.0, 3.0]), t([1.0, 2.0, 3.0, 0.0])
    assert margin_ranking_loss(pred, target).item() == pytest.approx(2.0)
    assert margin_ranking_loss(pred, target, margin=0.5).item() == pytest.approx(1.75)
    assert margin_ranking_loss(pred, target, margin=2.0).item() == pytest.approx(3.0)
    assert margin_ranking_loss(pred, target, reduction="none").tolist() == pytest.approx([4.0, 0.0])


def test_margin_loss_ties_count_as_minus_one_and_target_detached():
    # tie -> I = -1; d = 0 -> max(0, 0 + 1) = 1; gradient d/d pred0 = -I * 1 = +1, pred1 = -1
    pred, target = t([0.0, 0.0], requires_grad=True), t([2.0, 2.0], requires_grad=True)
    loss = margin_ranking_loss(pred, target)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert pred.grad.tolist() == pytest.approx([1.0, -1.0])
    assert target.grad is None


def test_margin_loss_odd_batch():
    # B = 3: pair (0, 2) only: d = 2 - 0 = 2, l0 > l2 -> max(0, -2 + 1) = 0 whatever the middle
    assert margin_ranking_loss(t([2.0, -50.0, 0.0]), t([1.0, 9.0, 0.0])).item() == 0.0


# -------------------------------------------------------------------- eq. (4) WAE loss
def test_kl_is_zero_at_the_prior_and_has_zero_gradient_there():
    mu = torch.zeros(3, 4, requires_grad=True)
    logvar = torch.zeros(3, 4, requires_grad=True)
    kl = gaussian_kl(mu, logvar)
    assert kl.item() == 0.0
    kl.backward()
    assert mu.grad.abs().max().item() == 0.0 and logvar.grad.abs().max().item() == 0.0


def test_kl_by_hand():
    # B = 1, d = 2: mu = [1, 0], logvar = [0, log 2]
    # term 1: -0.5 (1 + 0 - 1 - e^0) = 0.5
    # term 2: -0.5 (1 + log 2 - 0 - 2) = 0.5 (1 - log 2) = 0.1534264
    # mean = 0.3267132, sum = 0.6534264
    mu, logvar = t([[1.0, 0.0]]), t([[0.0, LOG2]])
    term2 = 0.5 * (1 - LOG2)
    assert gaussian_kl(mu, logvar, "none").tolist()[0] == pytest.approx([0.5, term2], rel=1e-6)
    assert gaussian_kl(mu, logvar, "mean").item() == pytest.approx((0.5 + term2) / 2, rel=1e-6)
    assert gaussian_kl(mu, logvar, "sum").item() == pytest.approx(0.5 + term2, rel=1e-6)


def test_wae_loss_by_hand():
    # x = 0, recon = [[1, 2], [3, 4]] -> MSE = (1 + 4 + 9 + 16) / 4 = 7.5; KL at the prior = 0
    x = torch.zeros(1, 1, 2, 2)
    recon = t([[[[1.0, 2.0], [3.0, 4.0]]]])
    zeros = torch.zeros(1, 2)
    assert wae_loss(x, recon, zeros, zeros).item() == pytest.approx(7.5)
    # with the KL of test_kl_by_hand (mean 0.3267132) and beta = 2: 7.5 + 2 * 0.3267132 = 8.1534264
    mu, logvar = t([[1.0, 0.0]]), t([[0.0, LOG2]])
    kl_mean = (0.5 + 0.5 * (1 - LOG2)) / 2
    assert wae_loss(x, recon, mu, logvar, beta=2.0).item() == pytest.approx(7.5 + 2 * kl_mean, rel=1e-6)
    # "sum" (VAAL): 7.5 + 1 * 0.6534264 (= 7.5 + B*d * mean with B*d = 2)
    kl_sum = 0.5 + 0.5 * (1 - LOG2)
    assert wae_loss(x, recon, mu, logvar, kld_reduction="sum").item() == pytest.approx(7.5 + kl_sum, rel=1e-6)


def test_wae_loss_sum_vs_mean_kl_ratio_is_batch_times_latent():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    x = torch.randn(4, 3, generator=g)
    mse = nn.functional.mse_loss(x, x * 0.5)
    kl_mean = wae_loss(x, x * 0.5, mu, logvar, kld_reduction="mean") - mse
    kl_sum = wae_loss(x, x * 0.5, mu, logvar, kld_reduction="sum") - mse
    assert (kl_sum / kl_mean).item() == pytest.approx(4 * 8, rel=1e-4)


def test_wae_loss_validates_inputs():
    with pytest.raises(ValueError):
        wae_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError):
        wae_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 1), torch.zeros(2, 1), kld_reduction="none")


def test_wae_loss_gradient_reaches_recon_mu_logvar():
    x = torch.randn(2, 3)
    recon = torch.randn(2, 3, requires_grad=True)
    mu = torch.randn(2, 4, requires_grad=True)
    logvar = torch.randn(2, 4, requires_grad=True)
    wae_loss(x, recon, mu, logvar).backward()
    # d MSE / d recon = 2 (recon - x) / 6;  d KL_mean / d mu = mu / 8
    assert torch.allclose(recon.grad, 2 * (recon - x).detach() / 6, atol=1e-6)
    assert torch.allclose(mu.grad, mu.detach() / 8, atol=1e-6)
    assert logvar.grad is not None


# ------------------------------------------------------- eqs. (5), (6) adversarial losses
def test_adversarial_losses_at_half_equal_two_log_two():
    # D = 0.5 everywhere: eq. 5 = -log .5 - log .5 = 2 log 2; eq. 6 = -log .5 - log(1 - .5) = 2 log 2
    half = torch.full((4,), 0.5)
    assert vae_adversarial_loss(half, half[:3]).item() == pytest.approx(2 * LOG2, rel=1e-6)
    assert discriminator_loss(half, half[:3]).item() == pytest.approx(2 * LOG2, rel=1e-6)
    zero = torch.zeros(4)  # logits 0 <-> probability 0.5
    assert vae_adversarial_loss_from_logits(zero, zero).item() == pytest.approx(2 * LOG2, rel=1e-6)
    assert discriminator_loss_from_logits(zero, zero).item() == pytest.approx(2 * LOG2, rel=1e-6)


def test_adversarial_losses_by_hand_with_unequal_batches():
    # d_l = [0.9, 0.6], d_u = [0.2]; each expectation is a mean over its own batch
    # -E[log D_l] = -(log .9 + log .6) / 2 = (0.1053605 + 0.5108256) / 2 = 0.3080931
    # eq. 5: 0.3080931 - log .2 = 0.3080931 + 1.6094379 = 1.9175310
    # eq. 6: 0.3080931 - log .8 = 0.3080931 + 0.2231436 = 0.5312367
    d_l, d_u = t([0.9, 0.6]), t([0.2])
    e_l = -(math.log(0.9) + math.log(0.6)) / 2
    assert vae_adversarial_loss(d_l, d_u).item() == pytest.approx(e_l - math.log(0.2), rel=1e-6)
    assert discriminator_loss(d_l, d_u).item() == pytest.approx(e_l - math.log(0.8), rel=1e-6)


def test_logit_versions_equal_probability_versions():
    g = torch.Generator().manual_seed(1)
    a_l, a_u = torch.randn(6, generator=g), torch.randn(5, generator=g)
    p_l, p_u = torch.sigmoid(a_l), torch.sigmoid(a_u)
    assert vae_adversarial_loss_from_logits(a_l, a_u).item() == pytest.approx(vae_adversarial_loss(p_l, p_u).item(), rel=1e-5)
    assert discriminator_loss_from_logits(a_l, a_u).item() == pytest.approx(discriminator_loss(p_l, p_u).item(), rel=1e-5)


def test_perfect_discriminator_has_zero_loss_and_fooled_encoder_zero_adversarial_loss():
    ones, zeros = torch.ones(3), torch.zeros(2)
    assert discriminator_loss(ones, zeros).item() == pytest.approx(0.0, abs=1e-6)
    assert vae_adversarial_loss(ones, torch.ones(2)).item() == pytest.approx(0.0, abs=1e-6)


def test_probability_versions_clamp_logs_and_logit_versions_stay_exact():
    # D_u = 0 -> -log 0 is clamped to 100 (as nn.BCELoss in the official code); never inf/nan
    loss = vae_adversarial_loss(torch.ones(2), torch.zeros(2))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(100.0)
    # logits: a_u = -200 -> softplus(200) = 200, exact and finite
    loss = vae_adversarial_loss_from_logits(torch.full((2,), 200.0), torch.full((2,), -200.0))
    assert loss.item() == pytest.approx(200.0, rel=1e-6)


def test_adversarial_gradient_directions():
    # eq. 5 pushes the unlabeled score up ("labeled"), eq. 6 pushes it down; labeled up in both
    a_l, a_u = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    vae_adversarial_loss_from_logits(a_l, a_u).backward()
    # d/da softplus(-a) / n = -sigma(-a) / n = -0.5 / 2 = -0.25
    assert a_u.grad.tolist() == pytest.approx([-0.25, -0.25]) and a_l.grad.tolist() == pytest.approx([-0.25, -0.25])
    a_l, a_u = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    discriminator_loss_from_logits(a_l, a_u).backward()
    # d/da softplus(a) / n = sigma(a) / n = +0.25
    assert a_u.grad.tolist() == pytest.approx([0.25, 0.25]) and a_l.grad.tolist() == pytest.approx([-0.25, -0.25])


@pytest.mark.parametrize(
    "fn",
    [vae_adversarial_loss, discriminator_loss, vae_adversarial_loss_from_logits, discriminator_loss_from_logits],
)
def test_adversarial_losses_reject_empty_batches(fn):
    with pytest.raises(ValueError):
        fn(torch.zeros(0), torch.full((2,), 0.5))
