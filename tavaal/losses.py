"""Losses of TA-VAAL (Kim et al., CVPR 2021) and its baselines.

* :func:`ranking_loss` -- paper eq. (1), the Ranker's RankNet-style pairwise loss;
* :func:`margin_ranking_loss` -- Learning Loss (Yoo & Kweon 2019), the hinge with margin;
* :func:`wae_loss` -- one labeled or unlabeled term of eq. (4): reconstruction + beta * KL;
* :func:`vae_adversarial_loss` / :func:`discriminator_loss` -- eqs. (5) and (6), from
  probabilities; ``..._from_logits`` versions take pre-sigmoid discriminator scores and are
  the numerically stable choice (use ``Discriminator.logits``).

Pairing used by both ranking losses (the official code's "flip" pairing): for a batch of B
predictions, pair p = 0 .. B//2 - 1 compares sample ``i = p`` with sample ``j = B - 1 - p``.
With B odd the middle sample ``B // 2`` belongs to no pair and is left out (the official code
asserts an even batch). B < 2 has no pair and raises ``ValueError``.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch.nn import functional as F

__all__ = [
    "flip_pairs",
    "ranking_loss",
    "margin_ranking_loss",
    "gaussian_kl",
    "wae_loss",
    "vae_adversarial_loss",
    "discriminator_loss",
    "vae_adversarial_loss_from_logits",
    "discriminator_loss_from_logits",
    "IGNORE_INDEX",
    "per_sample_cross_entropy",
    "task_cross_entropy",
]

IGNORE_INDEX = 255
"""Label of unlabeled pixels in segmentation masks (Cityscapes convention); never a class."""

def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be one of ('mean', 'sum', 'none'), got {reduction!r}")


def flip_pairs(pred_loss: torch.Tensor, target_loss: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The flip pairing of both ranking losses.

    Args:
        pred_loss: (B,) or (B, 1) predicted losses l_hat.
        target_loss: (B,) or (B, 1) true per-sample losses l (detached here).

    Returns:
        ``(diff, target_diff)``, each (B // 2,): ``l_hat_i - l_hat_j`` and the detached
        ``l_i - l_j`` for i = p, j = B - 1 - p.
    """
    pred, target = (t.reshape(-1) if t.dim() == 2 and t.shape[1] == 1 else t for t in (pred_loss, target_loss))
    if pred.dim() != 1 or target.dim() != 1:
        raise ValueError(f"pred_loss and target_loss must be (B,) or (B, 1), got {tuple(pred_loss.shape)} and "
                         f"{tuple(target_loss.shape)}")
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"pred_loss has {pred.shape[0]} entries but target_loss has {target.shape[0]}")
    n = pred.shape[0]
    if n < 2:
        raise ValueError(f"a ranking loss needs a batch of at least 2 samples (one pair), got {n}")
    half = n // 2
    target = target.detach()
    return pred[:half] - pred.flip(0)[:half], target[:half] - target.flip(0)[:half]


def ranking_loss(pred_loss: torch.Tensor, target_loss: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """TA-VAAL ranking loss, paper eq. (1) (RankNet cross-entropy on flipped pairs).

    For each pair (i, j) (see :func:`flip_pairs`): ``I = 1 if l_i > l_j else 0`` (ties give 0,
    as the official code; ``l`` is detached, no gradient reaches ``target_loss``), and the
    pair's loss is ``-[I log sigmoid(d) + (1 - I) log(1 - sigmoid(d))]`` with
    ``d = l_hat_i - l_hat_j``, computed as ``binary_cross_entropy_with_logits(d, I)``
    (stable; the official code applies ``nn.BCELoss`` to ``sigmoid(d)``, which is equal up to
    its log clamp at -100).

    Args:
        pred_loss: (B,) or (B, 1) Ranker outputs.
        target_loss: (B,) or (B, 1) per-sample task losses.
        reduction: "mean" (default: average over the B // 2 pairs, the paper's and code's),
            "sum" or "none" ((B // 2,) per-pair losses).

    Raises:
        ValueError: B < 2, or mismatched shapes.
    """
    diff, target_diff = flip_pairs(pred_loss, target_loss)
    indicator = (target_diff > 0).to(diff.dtype)
    per_pair = F.binary_cross_entropy_with_logits(diff, indicator, reduction="none")
    return _reduce(per_pair, reduction)


def margin_ranking_loss(pred_loss: torch.Tensor, target_loss: torch.Tensor, margin: float = 1.0,
                        reduction: str = "mean") -> torch.Tensor:
    """Learning Loss's loss-prediction loss (Yoo & Kweon 2019, eq. 2; TA-VAAL §3.1).

    Same flip pairing as :func:`ranking_loss`; ``I = +1 if l_i > l_j else -1`` (ties give -1,
    as the LL4AL reproduction; ``l`` detached); the pair's loss is
    ``max(0, -I * (l_hat_i - l_hat_j) + margin)``, and "mean" gives
    ``(2 / B) * sum over the B/2 pairs`` as in the paper.

    Args:
        pred_loss: (B,) or (B, 1) Ranker outputs.
        target_loss: (B,) or (B, 1) per-sample task losses.
        margin: xi (epsilon in the TA-VAAL paper), 1.0 in Learning Loss.
        reduction: "mean" over pairs (default), "sum" or "none" ((B // 2,)).
    """
    diff, target_diff = flip_pairs(pred_loss, target_loss)
    sign = torch.where(target_diff > 0, torch.ones_like(diff), -torch.ones_like(diff))
    per_pair = torch.clamp(margin - sign * diff, min=0.0)
    return _reduce(per_pair, reduction)


def _check_task_shapes(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.dim() < 2 or target.dim() != logits.dim() - 1 or target.shape[0] != logits.shape[0] \
            or tuple(target.shape[1:]) != tuple(logits.shape[2:]):
        raise ValueError(f"logits (B, K, *S) need targets (B, *S); got {tuple(logits.shape)} and {tuple(target.shape)}")


def per_sample_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                             ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy of each sample, the task loss l the Ranker learns to rank, shape (B,).

    * classification: logits (B, K), target (B,) int64 -> the per-sample CE (no ignore value);
    * dense (segmentation): logits (B, K, *S), target (B, *S) int64 -> each image's *mean*
      CE over its pixels whose target is not ``ignore_index``; an image whose pixels are all
      ignored gets 0 (it carries no loss).

    Gradients flow to ``logits``. Raises ValueError for mismatched shapes.
    """
    _check_task_shapes(logits, target)
    target = target.long()  # uint8 masks and int32 labels alike
    if logits.dim() == 2:  # classification: every label is a class (no ignore value)
        return F.cross_entropy(logits, target, reduction="none")
    per_element = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    valid = (target != ignore_index).flatten(1).to(per_element.dtype)
    return per_element.flatten(1).sum(1) / valid.sum(1).clamp_min(1.0)


def task_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The task learner's loss L_T, a scalar: mean CE over samples (classification) or over
    every non-ignored pixel of the batch (segmentation; 0 when the batch has none)."""
    _check_task_shapes(logits, target)
    target = target.long()
    if logits.dim() == 2:
        return F.cross_entropy(logits, target)
    per_element = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    valid = (target != ignore_index).to(per_element.dtype)
    return per_element.sum() / valid.sum().clamp_min(1.0)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) element terms ``-0.5 (1 + logvar - mu^2 - exp(logvar))``.

    Args:
        mu, logvar: (B, d).
        reduction: "mean" over batch *and* latent dims (TA-VAAL code), "sum" over both (VAAL
            code; B * d times the mean), or "none" ((B, d) element terms).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    terms = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return _reduce(terms, reduction)


def wae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0,
             kld_reduction: str = "mean") -> torch.Tensor:
    """One term of eq. (4): ``MSE(recon, x) + beta * KL(q(z|x) || N(0, I))``, a scalar.

    The negative log-likelihood ``-E[log p(x | z, r)]`` is the mean squared error (mean over
    batch, channels and pixels, ``nn.MSELoss()``), on the normalised inputs.

    Args:
        x, recon: same shape, (B, ...) inputs and reconstructions.
        mu, logvar: (B, d) posterior parameters.
        beta: KL weight (1 in the paper and both codes).
        kld_reduction: "mean" over batch and latent dims (TA-VAAL code, the default) or "sum"
            (VAAL code and the GCN repo's VAAL: B * d times larger relative to the MSE).
    """
    if x.shape != recon.shape:
        raise ValueError(f"x and recon must have the same shape, got {tuple(x.shape)} and {tuple(recon.shape)}")
    if kld_reduction not in ("mean", "sum"):
        raise ValueError(f"kld_reduction must be 'mean' or 'sum', got {kld_reduction!r}")
    return F.mse_loss(recon, x) + beta * gaussian_kl(mu, logvar, kld_reduction)


def _two_pool_bce(bce, labeled: torch.Tensor, unlabeled: torch.Tensor, unlabeled_target) -> torch.Tensor:
    """``bce(labeled, 1) + bce(unlabeled, unlabeled_target(...))``, each a mean over its batch."""
    if labeled.numel() == 0 or unlabeled.numel() == 0:
        raise ValueError("discriminator outputs must be non-empty for both pools")
    return bce(labeled, torch.ones_like(labeled)) + bce(unlabeled, unlabeled_target(unlabeled))


def vae_adversarial_loss(d_labeled: torch.Tensor, d_unlabeled: torch.Tensor) -> torch.Tensor:
    """Eq. (5), the WAE's adversarial loss: ``-E[log D_l] - E[log D_u]``, a scalar.

    Both pools are pushed towards "labeled" (target 1) so the encoder learns to fool D.

    Args:
        d_labeled: (B_l,) probabilities ``D(r_L, mu_L)`` in [0, 1].
        d_unlabeled: (B_u,) probabilities ``D(r_U, mu_U)`` in [0, 1].
        Each expectation is a mean over its own batch. Computed with
        ``F.binary_cross_entropy`` (= the official ``nn.BCELoss``, logs clamped at -100, so
        D = 0 gives 100, not inf). Prefer :func:`vae_adversarial_loss_from_logits`.
    """
    return _two_pool_bce(F.binary_cross_entropy, d_labeled, d_unlabeled, torch.ones_like)


def discriminator_loss(d_labeled: torch.Tensor, d_unlabeled: torch.Tensor) -> torch.Tensor:
    """Eq. (6), the discriminator's loss: ``-E[log D_l] - E[log(1 - D_u)]``, a scalar.

    Labeled codes towards 1, unlabeled towards 0; probabilities as in
    :func:`vae_adversarial_loss` (same clamping). Prefer :func:`discriminator_loss_from_logits`.
    """
    return _two_pool_bce(F.binary_cross_entropy, d_labeled, d_unlabeled, torch.zeros_like)


def vae_adversarial_loss_from_logits(logit_labeled: torch.Tensor, logit_unlabeled: torch.Tensor) -> torch.Tensor:
    """Eq. (5) from pre-sigmoid scores ``D.logits(r, mu)``: ``softplus(-a_l).mean() + softplus(-a_u).mean()``."""
    return _two_pool_bce(F.binary_cross_entropy_with_logits, logit_labeled, logit_unlabeled, torch.ones_like)


def discriminator_loss_from_logits(logit_labeled: torch.Tensor, logit_unlabeled: torch.Tensor) -> torch.Tensor:
    """Eq. (6) from pre-sigmoid scores: ``softplus(-a_l).mean() + softplus(a_u).mean()``."""
    return _two_pool_bce(F.binary_cross_entropy_with_logits, logit_labeled, logit_unlabeled, torch.zeros_like)
