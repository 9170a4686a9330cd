"""Training of the conditional WAE and the discriminator (paper eqs. 3-6, Algorithm 1).

Per cycle a fresh WAE and discriminator are trained with Adam on alternating steps over a
labeled batch and an unlabeled batch. TA-VAAL conditions both on the Ranker's output r:
U(0,1) on the first iteration, the Ranker's (frozen, eval-mode) prediction after that. The
decoder sees ``Ranker.normalize(r)`` (``--rank-norm``: sigmoid, standardized or raw); the
discriminator sees the same (paper) or the raw r (code, B2; ``--disc-rank-input raw``).
VAAL is the same without r.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import RunConfig
from ..losses import discriminator_loss_from_logits, vae_adversarial_loss_from_logits, wae_loss
from ..models import ConditionalWAE, Discriminator, build_wae
from ..models.ranker import warn_if_saturated
from .accel import Accel
from .diagnostics import discriminator_diagnostics, discriminator_outputs, separation_auc
from .inference import predict, rank_inputs
from .loaders import endless
from .task import ModelGroup, TaskModels


@dataclass
class AdversarialModels(ModelGroup):
    """A conditional WAE and its discriminator; ``rank_mode`` is what D sees as r."""

    wae: ConditionalWAE
    discriminator: Discriminator
    rank_mode: str = "normalized"
    MODULES = ("wae", "discriminator")

    @property
    def rank_conditioned(self) -> bool:
        return self.discriminator.rank_conditioned


def build_adversarial_models(config: RunConfig, input_shape: Sequence[int], *, rank_conditioned: bool) -> AdversarialModels:
    # large images are downscaled to wae_input_size by the variants that can (auto, conv64)
    canvas = config.wae_input_size if len(input_shape) == 3 and config.wae_variant in ("auto", "conv64") else None
    wae = build_wae(tuple(input_shape), config.latent_dim, rank_conditioned=rank_conditioned,
                    base_channels=config.wae_width, hidden_dim=config.wae_width, canvas_size=canvas,
                    variant=config.wae_variant)
    disc = Discriminator(config.latent_dim, hidden_dim=config.disc_hidden, num_layers=config.disc_layers,
                         rank_conditioned=rank_conditioned)
    return AdversarialModels(wae, disc, rank_mode=config.disc_rank_input)


def wae_iterations(config: RunConfig, num_labeled: int, num_unlabeled: int) -> int:
    """``config.wae_iterations`` or the official rule: (L + U) * wae_epochs / batch, at least 1."""
    if config.wae_iterations is not None:
        return int(config.wae_iterations)
    return max(1, int((num_labeled + num_unlabeled) * config.wae_epochs / config.resolved_wae_batch_size()))


PLATEAU_MIN_GAIN = 0.005
"""``wae_stop`` "plateau": a check improves on the best held-out AUC only by more than this."""


def split_heldout(rows: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple:
    """``(kept, heldout)``: a uniform draw of ``ceil(fraction * n)`` of ``rows`` held out (at
    most n - 1, none for fraction 0), both sorted. ``rng`` is the caller's own generator."""
    rows = np.asarray(rows, dtype=np.int64)
    count = min(int(np.ceil(fraction * rows.size)), rows.size - 1) if fraction > 0 else 0
    if count <= 0:
        return np.sort(rows), np.empty(0, np.int64)
    mask = np.zeros(rows.size, dtype=bool)
    mask[rng.choice(rows.size, size=count, replace=False)] = True
    return np.sort(rows[~mask]), np.sort(rows[mask])


def train_adversarial_models(models: AdversarialModels, dataset, labeled: Sequence[int], unlabeled: Sequence[int],
                             config: RunConfig, *, task: Optional[TaskModels] = None, augment=None, seed: int = 0,
                             device="cpu", progress: bool = False) -> dict:
    """Train ``models`` (in place) to tell ``labeled`` from ``unlabeled`` samples.

    ``task`` (with a Ranker) is required when the models are rank-conditioned. The Ranker's
    outputs are computed once per sample in eval mode when the WAE sees un-augmented inputs
    (the default), which gives the same values as running it on every batch.

    Options (defaults: the fixed count, no hold-out, diagnostics recorded):

    * ``config.disc_holdout`` > 0: that fraction of ``labeled`` and of ``unlabeled`` (drawn from a
      generator of its own) is kept out of training, to measure D on rows it did not train on;
    * ``config.wae_stop`` "plateau": D's AUC on those rows is checked every tenth of the fixed
      count (:func:`wae_iterations`); training stops once ``config.wae_patience`` checks in a
      row gained no more than :data:`PLATEAU_MIN_GAIN` over the best, and after at most
      ``config.wae_cap_factor`` x the fixed count;
    * ``config.disc_diagnostics``: the result holds ``"diagnostics"``
      (:func:`tavaal.training.diagnostics.discriminator_diagnostics`, plus ``wae_iterations_run``
      and ``disc_auc_trace`` [[iteration, held-out AUC], ...] when rows are held out).

    Returns the last iteration's losses (and ``"diagnostics"`` when asked for). Raises
    ValueError for an empty side, FloatingPointError when the losses diverge.
    """
    labeled = np.asarray(labeled, dtype=np.int64)
    unlabeled = np.asarray(unlabeled, dtype=np.int64)
    if len(labeled) == 0 or len(unlabeled) == 0:
        raise ValueError(f"need labeled and unlabeled samples, got {len(labeled)} and {len(unlabeled)}")
    held_l = held_u = np.empty(0, np.int64)
    if config.disc_holdout > 0:
        # its own stream, derived from the seed: turning the hold-out on moves no other draw
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xD15C]))
        labeled, held_l = split_heldout(labeled, config.disc_holdout, rng)
        unlabeled, held_u = split_heldout(unlabeled, config.disc_holdout, rng)
    conditioned = models.rank_conditioned
    if conditioned and (task is None or task.ranker is None):
        raise ValueError("rank-conditioned (TA-VAAL) training needs the task models with a Ranker")
    wae_augment = augment if config.wae_augment else None
    accel = Accel.from_config(config, device)  # CUDA: bf16 autocast, channels_last, data on the device
    lab, unl = (endless(accel.loader(dataset, rows, config.resolved_wae_batch_size(), shuffle=config.wae_shuffle,
                                     augment=wae_augment, seed=seed + k, num_workers=config.num_workers))
                for k, rows in enumerate((labeled, unlabeled)))

    rank_of = None
    if conditioned:
        task.eval()
        if wae_augment is None:
            everything = np.concatenate([labeled, unlabeled])
            ranks = predict(dataset, everything, backbone=task.backbone, ranker=task.ranker, outputs=("rank",),
                            batch_size=config.score_batch_size, device=device)["rank"].to(device)
            table = torch.zeros(int(everything.max()) + 1, device=device)  # looked up on the device
            table[torch.from_numpy(everything).to(device)] = ranks
            if task.ranker.rank_norm != "raw":
                warn_if_saturated(task.ranker.normalize(ranks), "WAE/discriminator training")
            rank_of = lambda x, idx: table[idx.to(device)]  # noqa: E731
        else:
            rank_of = lambda x, idx: task.ranker(task.backbone(x)[2]).detach().float()  # noqa: E731

    models.to(device).train()
    accel.prepare(models.wae, models.discriminator)
    opt_wae = torch.optim.Adam(models.wae.parameters(), lr=config.wae_lr)
    opt_disc = torch.optim.Adam(models.discriminator.parameters(), lr=config.disc_lr)
    fixed = wae_iterations(config, len(labeled), len(unlabeled))
    plateau = config.wae_stop == "plateau"
    iterations = max(fixed, int(np.ceil(config.wae_cap_factor * fixed))) if plateau else fixed
    watch = held_l.size > 0 and held_u.size > 0 and (plateau or config.disc_diagnostics)
    check_every = max(1, fixed // 10)
    trace, best, stale = [], -np.inf, 0
    pool_loss = functools.partial(wae_loss, beta=config.beta, kld_reduction=config.kld_reduction)
    losses = {}
    run = iterations
    bar = tqdm(range(iterations), desc="WAE + discriminator", leave=False, disable=not progress)
    for it in bar:
        x_l, _, idx_l = next(lab)
        x_u, _, idx_u = next(unl)
        x_l, x_u = accel.inputs(x_l), accel.inputs(x_u)
        r_dec_l = r_dec_u = r_dis_l = r_dis_u = None
        if conditioned:
            if it == 0:
                # Algorithm 1: r ~ U(0,1) on the first iteration, for decoder and D alike.
                r_dec_l = r_dis_l = torch.rand(len(x_l), device=device)
                r_dec_u = r_dis_u = torch.rand(len(x_u), device=device)
            else:
                with torch.no_grad(), accel.autocast():
                    raw_l, raw_u = rank_of(x_l, idx_l), rank_of(x_u, idx_u)
                r_dec_l, r_dec_u = task.ranker.normalize(raw_l), task.ranker.normalize(raw_u)
                r_dis_l = rank_inputs(raw_l, models.rank_mode, task.ranker)
                r_dis_u = rank_inputs(raw_u, models.rank_mode, task.ranker)

        for _ in range(config.vae_steps):
            with accel.autocast():
                recon_l, _, mu_l, logvar_l = models.wae(x_l, r_dec_l)
                recon_u, _, mu_u, logvar_u = models.wae(x_u, r_dec_u)
                transductive = pool_loss(x_l, recon_l, mu_l, logvar_l) + pool_loss(x_u, recon_u, mu_u, logvar_u)
                adversarial = vae_adversarial_loss_from_logits(models.discriminator.logits(r_dis_l, mu_l),
                                                               models.discriminator.logits(r_dis_u, mu_u))
                total = transductive + config.adversary_weight * adversarial
            opt_wae.zero_grad(set_to_none=True)
            total.backward()
            opt_wae.step()

        for _ in range(config.disc_steps):
            with torch.no_grad(), accel.autocast():
                mu_l = models.wae.encode(x_l)[0]
                mu_u = models.wae.encode(x_u)[0]
            with accel.autocast():
                d_loss = discriminator_loss_from_logits(models.discriminator.logits(r_dis_l, mu_l),
                                                        models.discriminator.logits(r_dis_u, mu_u))
            opt_disc.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_disc.step()

        stop = False
        if watch and ((it + 1) % check_every == 0 or it == iterations - 1):
            scores, _ = discriminator_outputs(models, dataset, np.concatenate([held_l, held_u]), task=task,
                                              batch_size=config.score_batch_size, device=device)
            auc = separation_auc(scores[:held_l.size], scores[held_l.size:])
            trace.append([it + 1, auc])
            if auc > best + PLATEAU_MIN_GAIN:
                best, stale = auc, 0
            else:
                stale += 1
            stop = plateau and stale >= config.wae_patience
        if stop or (it % accel.sync_every == 0 or it == iterations - 1):
            # CUDA: losses read every accel.sync_every iterations (no host sync per batch)
            values = torch.stack([transductive.detach().float(), adversarial.detach().float(),
                                  d_loss.detach().float()]).cpu().tolist()
            losses = dict(zip(("wae_loss", "adversarial_loss", "discriminator_loss"), values))
            if not all(np.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"WAE/discriminator training diverged at iteration {it}: {losses}; "
                                         "lower --wae-lr or check the inputs for NaN/inf")
            if it % 50 == 0:
                bar.set_postfix(wae=f"{losses['wae_loss']:.3f}", d=f"{losses['discriminator_loss']:.3f}")
        if stop:
            run = it + 1
            break
    bar.close()
    models.train(config.score_mode == "train")
    if config.disc_diagnostics:
        diagnostics = discriminator_diagnostics(models, dataset, labeled=labeled, unlabeled=unlabeled,
                                                heldout_labeled=held_l, heldout_unlabeled=held_u, task=task,
                                                batch_size=config.score_batch_size, device=device)
        diagnostics["wae_iterations_run"] = int(run)
        if trace:
            diagnostics["disc_auc_trace"] = trace
        losses["diagnostics"] = diagnostics
    return losses
