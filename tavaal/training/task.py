"""Task learner + Ranker training (Algorithm 1, eq. 2: L = L_T + eta L_R) and evaluation."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import RunConfig
from ..losses import margin_ranking_loss, per_sample_cross_entropy, ranking_loss, task_cross_entropy
from ..models import Ranker, build_task_learner
from .accel import Accel, LossMeter, accel_of
from .inference import predict
from .loaders import endless


class ModelGroup:
    """Models moved, switched and saved together: the fields named in ``MODULES`` (an
    ``nn.Module`` or None; a None one is skipped, and saved as None)."""

    MODULES: Tuple[str, ...] = ()

    def _present(self) -> list:
        return [module for module in (getattr(self, name) for name in self.MODULES) if module is not None]

    def to(self, device):
        for module in self._present():
            module.to(device)
        return self

    def eval(self):
        return self.train(False)

    def train(self, mode: bool = True):
        for module in self._present():
            module.train(mode)
        return self

    def state_dict(self) -> dict:
        modules = {name: getattr(self, name) for name in self.MODULES}
        return {name: None if module is None else module.state_dict() for name, module in modules.items()}

    def load_state_dict(self, state: dict) -> None:
        """Load each module's entry of ``state`` (a module whose entry is None keeps its weights)."""
        for name in self.MODULES:
            module = getattr(self, name)
            if module is not None and state.get(name) is not None:
                module.load_state_dict(state[name])


@dataclass
class TaskModels(ModelGroup):
    """The task learner (``backbone``: x -> (logits, feature, stages)) and its Ranker (or None)."""

    backbone: nn.Module
    ranker: Optional[Ranker]
    MODULES = ("backbone", "ranker")


def build_task_models(config: RunConfig, input_shape: Sequence[int], num_classes: int, *, with_ranker: bool,
                      dropout: float = 0.0, task: str = "classification",
                      backbone: Optional[nn.Module] = None) -> TaskModels:
    """A fresh task learner (and Ranker on its stages if ``with_ranker``) for ``input_shape``;
    ``task`` "segmentation" builds a DRN (:func:`tavaal.models.build_task_learner`). A given
    ``backbone`` (a user model) is used instead of a built-in learner."""
    if backbone is None:
        backbone = build_task_learner(tuple(input_shape), num_classes, arch=config.arch, width=config.width,
                                      dropout=dropout, task=task)
    ranker = (Ranker(backbone.stage_channels, interm_dim=config.ranker_interm_dim, rank_norm=config.rank_norm)
              if with_ranker else None)
    return TaskModels(backbone, ranker)


def _optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def detach_epoch(config: RunConfig) -> int:
    """Last 0-based epoch (or step, with ``config.steps``) in which the Ranker loss reaches the
    backbone: epoch 120 for 200 epochs with ``ranker_mode`` "joint"; -1 (never) with "probe"."""
    if config.ranker_mode == "probe":
        return -1
    return int(config.ranker_detach_fraction * (config.steps or config.epochs))


def _scheduler(config: RunConfig, optimizer: torch.optim.Optimizer, length: int):
    """The lr schedule over ``length`` epochs (or steps): MultiStepLR or cosine decay to 0."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(length), 1))
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.lr_gamma)


def batch_loss(models: TaskModels, x: torch.Tensor, y: torch.Tensor, pair_loss=None, *, eta: float = 1.0,
               detach_ranker: bool = False):
    """Eq. (2) on one batch: ``(L_T + eta L_R, L_T, L_R or None)``.

    L_T is the mean cross-entropy (segmentation: over the batch's labeled pixels); L_R =
    ``pair_loss(Ranker(stages), per-sample CE)`` with the target losses detached (segmentation:
    each image's mean pixel CE, 255 ignored; :func:`tavaal.losses.per_sample_cross_entropy`).
    ``detach_ranker`` stops L_R's gradient at the stage outputs, so it trains the Ranker only
    (the paper's behaviour after epoch 120 of 200). Batches of one sample have no pair: L_R is None.
    """
    logits, _, stages = models.backbone(x)
    per_sample = per_sample_cross_entropy(logits, y)
    task_loss = per_sample.mean() if logits.dim() == 2 else task_cross_entropy(logits, y)
    if pair_loss is None or x.shape[0] < 2:
        return task_loss, task_loss, None
    if detach_ranker:
        stages = [s.detach() for s in stages]
    # .float(): under bf16 autocast the pair differences of the ranking loss need fp32 (no-op in fp32)
    l_rank = pair_loss(models.ranker(stages).float(), per_sample.detach())
    return task_loss + eta * l_rank, task_loss, l_rank


def train_task_models(models: TaskModels, dataset, labeled: Sequence[int], config: RunConfig, *,
                      ranker_loss: Optional[str], augment=None, seed: int = 0, device="cpu",
                      progress: bool = False) -> dict:
    """Train ``models`` on ``dataset[labeled]``: ``config.epochs`` epochs, or ``config.steps``
    optimisation steps when set.

    ``ranker_loss``: "ranking" (eq. 1; TA-VAAL, Learning Loss v2), "margin" (Learning Loss) or
    None (plain cross-entropy; the Ranker, if any, is not trained). ``config.ranker_mode``
    "probe" detaches the Ranker's inputs from the first step (:func:`detach_epoch`): the
    backbone then gets the cross-entropy gradient only and, from the same initial weights and
    seed, ends bit-identical to a backbone trained without a Ranker. Backbone and Ranker have
    separate optimizers with the same settings and lr schedules (``config.lr_schedule``) stepped
    once per epoch after the epoch (as the official code), or once per step with ``steps``
    (batches of ``batch_size`` from an endless seeded shuffle, the whole labeled set when it is
    smaller). Afterwards the models are in eval mode and the Ranker's rank normalisation is
    fitted on the labeled set (un-augmented ``dataset``; see ``Ranker.fit_normalization``).
    Returns the mean losses of the last epoch (or of the last tenth of the steps).
    Raises FloatingPointError when the task loss becomes NaN/inf.
    """
    if ranker_loss not in (None, "ranking", "margin"):
        raise ValueError(f"ranker_loss must be None, 'ranking' or 'margin', got {ranker_loss!r}")
    if ranker_loss is not None and models.ranker is None:
        raise ValueError("ranker_loss given but the task models have no Ranker")
    labeled = np.asarray(labeled, dtype=np.int64)
    if len(labeled) == 0:
        raise ValueError("cannot train the task learner on an empty labeled set")
    models.to(device).train()
    accel = Accel.from_config(config, device)  # CUDA: bf16 autocast, channels_last, data on the device
    accel.prepare(models.backbone, models.ranker)
    optimizers = [_optimizer(config, models.backbone.parameters())]
    if ranker_loss is not None:
        optimizers.append(_optimizer(config, models.ranker.parameters()))
    pair_loss = {"ranking": ranking_loss,
                 "margin": lambda p, t: margin_ranking_loss(p, t, margin=config.margin)}.get(ranker_loss)
    last_coupled = detach_epoch(config)
    schedulers = [_scheduler(config, o, config.steps or config.epochs) for o in optimizers]

    def step(x, y, detach: bool) -> tuple:
        """One optimisation step; returns the detached (task loss, ranker loss or None) tensors
        (on the device: reading them is the caller's choice, see ``accel.sync_every``)."""
        x, y = accel.inputs(x), y.to(device, non_blocking=True)
        with accel.autocast():
            loss, task_loss, l_rank = batch_loss(models, x, y, pair_loss, eta=config.eta, detach_ranker=detach)
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in optimizers:
            o.step()
        return task_loss.detach(), (None if l_rank is None else l_rank.detach())

    def check(value: float, where: str) -> None:
        if not np.isfinite(value):
            raise FloatingPointError(f"task loss became {value} in {where}: lower --lr (or use a preset with "
                                     "--steps and a schedule) or check the input data for NaN/inf")

    history = {}
    if config.steps:
        batch = min(int(config.batch_size), len(labeled))
        loader = endless(accel.loader(dataset, labeled, batch, shuffle=True, augment=augment, seed=seed,
                                      num_workers=config.num_workers, drop_last=True))
        recent = deque(maxlen=max(1, config.steps // 10))  # the last tenth of the steps' loss tensors
        bar = tqdm(range(config.steps), desc="task learner", leave=False, disable=not progress)
        for n in bar:
            x, y, _ = next(loader)
            task_t, rank_t = step(x, y, n > last_coupled)
            if n % accel.sync_every == 0 or n == config.steps - 1:  # CPU: every step; CUDA: every 50
                task_value = float(task_t)
                check(task_value, f"step {n}")
                if n % 50 == 0:
                    bar.set_postfix(loss=f"{task_value:.3f}")
            for s in schedulers:
                s.step()
            recent.append((task_t, rank_t))
        values = torch.stack([torch.stack([t, t.new_zeros(()) if r is None else r.to(t.dtype)])
                              for t, r in recent]).cpu().tolist()  # one device->host copy
        history = {"task_loss": float(np.mean([t for t, _ in values])),
                   "ranker_loss": float(np.mean([r for _, r in values]))}
    else:
        loader = accel.loader(dataset, labeled, config.batch_size, shuffle=True, augment=augment, seed=seed,
                              num_workers=config.num_workers)
        epochs = tqdm(range(config.epochs), desc="task learner", leave=False, disable=not progress)
        for epoch in epochs:
            meter, batches = LossMeter(), 0  # losses summed on the device, read once per epoch
            for x, y, _ in loader:
                task_t, rank_t = step(x, y, epoch > last_coupled)
                meter.add(task=task_t, ranker=rank_t)
                batches += 1
            for s in schedulers:
                s.step()
            totals = meter.sums(("task", "ranker"))
            n = max(batches, 1)
            history = {"task_loss": totals["task"] / n, "ranker_loss": totals["ranker"] / n}
            check(history["task_loss"], f"epoch {epoch}")
            epochs.set_postfix(loss=f"{history['task_loss']:.3f}")
    models.eval()
    if models.ranker is not None:  # the per-cycle rank statistics, from the raw outputs on the labeled set
        raw = predict(dataset, labeled, backbone=models.backbone, ranker=models.ranker, outputs=("rank",),
                      batch_size=config.score_batch_size, device=device)["rank"]
        models.ranker.fit_normalization(raw)
    return history


def _predicted_labels(backbone: nn.Module, dataset, batch_size: int, device):
    """``(argmax of the logits, targets)`` per batch over the whole ``dataset``, on the device, in
    eval mode with the precision / layout ``backbone`` was trained with."""
    backbone.eval()
    accel = accel_of(backbone, device)
    for x, y, _ in accel.loader(dataset, range(len(dataset)), batch_size, shuffle=False):
        with accel.autocast():
            logits = backbone(accel.inputs(x))[0]
        yield logits.argmax(1), y.to(logits.device, non_blocking=True)


@torch.no_grad()
def evaluate_accuracy(backbone: nn.Module, dataset, batch_size: int = 512, device="cpu") -> float:
    """Top-1 accuracy of ``backbone`` on the whole ``dataset`` (eval mode)."""
    correct, total = torch.zeros((), dtype=torch.int64, device=device), 0
    for predicted, y in _predicted_labels(backbone, dataset, batch_size, device):
        correct += (predicted == y).sum()
        total += len(y)
    if total == 0:
        raise ValueError("the test set is empty")
    return int(correct) / total


@torch.no_grad()
def evaluate_task(backbone: nn.Module, dataset, num_classes: int, batch_size: int = 512, device="cpu") -> dict:
    """The cycle's test metrics over the whole ``dataset`` (eval mode): ``{"accuracy"}`` for
    classifiers; for dense task learners (``backbone.dense``) the mean IoU of one confusion matrix
    over every labeled pixel, in batches of at most 8 images: ``{"miou", "pixel_accuracy", "iou":
    [K per-class IoUs, NaN = class absent], "pixels"}`` (conventions in :mod:`tavaal.metrics`)."""
    if not getattr(backbone, "dense", False):
        return {"accuracy": evaluate_accuracy(backbone, dataset, batch_size=batch_size, device=device)}
    from ..metrics import SegmentationMeter

    if len(dataset) == 0:
        raise ValueError("the test set is empty")
    meter = SegmentationMeter(num_classes)
    for predicted, y in _predicted_labels(backbone, dataset, min(batch_size, 8), device):
        meter.update(predicted, y)  # counted on the device: only the (K, K) confusion matrix comes to the host
    return meter.compute()
