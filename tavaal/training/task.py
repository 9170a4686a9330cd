"""Task learner + Ranker training (Algorithm 1, eq. 2: L = L_T + eta L_R) and evaluation."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..config import RunConfig
from ..losses import margin_ranking_loss, ranking_loss
from ..models import Ranker, build_task_learner
from .loaders import make_loader

log = logging.getLogger(__name__)


@dataclass
class TaskModels:
    """The task learner (``backbone``: x -> (logits, feature, stages)) and its Ranker (or None)."""

    backbone: nn.Module
    ranker: Optional[Ranker]

    def to(self, device) -> "TaskModels":
        self.backbone.to(device)
        if self.ranker is not None:
            self.ranker.to(device)
        return self

    def eval(self) -> "TaskModels":
        self.backbone.eval()
        if self.ranker is not None:
            self.ranker.eval()
        return self

    def train(self) -> "TaskModels":
        self.backbone.train()
        if self.ranker is not None:
            self.ranker.train()
        return self

    def state_dict(self) -> dict:
        return {"backbone": self.backbone.state_dict(),
                "ranker": None if self.ranker is None else self.ranker.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.backbone.load_state_dict(state["backbone"])
        if self.ranker is not None and state.get("ranker") is not None:
            self.ranker.load_state_dict(state["ranker"])


def build_task_models(config: RunConfig, input_shape: Sequence[int], num_classes: int, *,
                      with_ranker: bool, dropout: float = 0.0) -> TaskModels:
    """A fresh task learner (and Ranker if ``with_ranker``) for ``input_shape``."""
    backbone = build_task_learner(tuple(input_shape), num_classes, arch=config.arch, width=config.width,
                                  dropout=dropout)
    ranker = Ranker(backbone.stage_channels, interm_dim=config.ranker_interm_dim) if with_ranker else None
    return TaskModels(backbone, ranker)


def _optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def detach_epoch(config: RunConfig) -> int:
    """Last 0-based epoch in which the Ranker loss reaches the backbone (120 for 200 epochs)."""
    return int(config.ranker_detach_fraction * config.epochs)


def batch_loss(models: TaskModels, x: torch.Tensor, y: torch.Tensor, pair_loss=None, *, eta: float = 1.0,
               detach_ranker: bool = False):
    """Eq. (2) on one batch: ``(L_T + eta L_R, L_T, L_R or None)``.

    L_T is the mean cross-entropy; L_R = ``pair_loss(Ranker(stages), per-sample CE)`` with the
    target losses detached. ``detach_ranker`` stops L_R's gradient at the stage outputs, so
    it trains the Ranker only (the paper's behaviour after epoch 120 of 200). Batches of one
    sample have no pair: L_R is None.
    """
    logits, _, stages = models.backbone(x)
    per_sample = F.cross_entropy(logits, y, reduction="none")
    task_loss = per_sample.mean()
    if pair_loss is None or x.shape[0] < 2:
        return task_loss, task_loss, None
    if detach_ranker:
        stages = [s.detach() for s in stages]
    l_rank = pair_loss(models.ranker(stages), per_sample.detach())
    return task_loss + eta * l_rank, task_loss, l_rank


def train_task_models(models: TaskModels, dataset, labeled: Sequence[int], config: RunConfig, *,
                      ranker_loss: Optional[str], augment=None, seed: int = 0, device="cpu",
                      progress: bool = False) -> dict:
    """Train ``models`` on ``dataset[labeled]`` for ``config.epochs`` epochs.

    ``ranker_loss``: "ranking" (eq. 1; TA-VAAL, Learning Loss v2), "margin" (Learning Loss) or
    None (plain cross-entropy; the Ranker, if any, is not trained). Backbone and Ranker have
    separate optimizers with the same settings, and MultiStepLR schedules stepped once per
    epoch after the epoch (as the official code). Returns the last epoch's mean losses.
    """
    if ranker_loss not in (None, "ranking", "margin"):
        raise ValueError(f"ranker_loss must be None, 'ranking' or 'margin', got {ranker_loss!r}")
    if ranker_loss is not None and models.ranker is None:
        raise ValueError("ranker_loss given but the task models have no Ranker")
    loader = make_loader(dataset, labeled, config.batch_size, shuffle=True, augment=augment, seed=seed,
                         num_workers=config.num_workers)
    models.to(device).train()
    optimizers = [_optimizer(config, models.backbone.parameters())]
    if ranker_loss is not None:
        optimizers.append(_optimizer(config, models.ranker.parameters()))
    schedulers = [torch.optim.lr_scheduler.MultiStepLR(o, milestones=list(config.milestones),
                                                       gamma=config.lr_gamma) for o in optimizers]
    pair_loss = {"ranking": ranking_loss,
                 "margin": lambda p, t: margin_ranking_loss(p, t, margin=config.margin)}.get(ranker_loss)
    last_coupled_epoch = detach_epoch(config)
    history = {}
    epochs = tqdm(range(config.epochs), desc="task learner", leave=False, disable=not progress)
    for epoch in epochs:
        totals = {"task": 0.0, "ranker": 0.0, "batches": 0}
        for x, y, _ in loader:
            x, y = x.to(device), y.to(device)
            loss, task_loss, l_rank = batch_loss(models, x, y, pair_loss, eta=config.eta,
                                                 detach_ranker=epoch > last_coupled_epoch)
            if l_rank is not None:
                totals["ranker"] += float(l_rank.detach())
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in optimizers:
                o.step()
            totals["task"] += float(task_loss.detach())
            totals["batches"] += 1
        for s in schedulers:
            s.step()
        n = max(totals["batches"], 1)
        history = {"task_loss": totals["task"] / n, "ranker_loss": totals["ranker"] / n}
        if not torch.isfinite(torch.tensor(history["task_loss"])):
            raise FloatingPointError(f"task loss became {history['task_loss']} in epoch {epoch}: "
                                     "lower --lr or check the input data for NaN/inf")
        epochs.set_postfix(loss=f"{history['task_loss']:.3f}")
    models.eval()
    return history


@torch.no_grad()
def evaluate_accuracy(backbone: nn.Module, dataset, batch_size: int = 512, device="cpu") -> float:
    """Top-1 accuracy of ``backbone`` on the whole ``dataset`` (eval mode)."""
    backbone.eval()
    loader = make_loader(dataset, range(len(dataset)), batch_size, shuffle=False)
    correct, total = 0, 0
    for x, y, _ in loader:
        logits = backbone(x.to(device))[0]
        correct += int((logits.argmax(1).cpu() == y).sum())
        total += len(y)
    if total == 0:
        raise ValueError("the test set is empty")
    return correct / total
