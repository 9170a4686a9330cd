"""One active-learning cycle on a row source: train on the labeled rows, select the next batch.

The one implementation of a cycle: the labeling loop (:mod:`tavaal.loop`) and the simulation
(``Experiment.run_cycle``, with the bundle's training set as :attr:`CycleData.view`) both call

* :func:`train_cycle` -- the task learner (+ Ranker), then (for VAAL / TA-VAAL) the WAE +
  discriminator on the labeled rows and a seeded random subset of the other rows (the paper's
  subset method); what a method trains is its :meth:`tavaal.methods.Method.training`. Only
  those rows are read from the source (a 10^7-row memory-mapped pool is never loaded whole);
  no label of an unlabeled row exists or is read.
* :func:`select_batch` -- the next batch through :func:`tavaal.scoring.select_from_pool`.

Seeds (common random numbers): :func:`cycle_seed` of (seed, trial, cycle) is the same for every
method; ``rng = np.random.default_rng(seed)`` and ``torch.manual_seed(seed)`` before the task
learner is built; the candidate subset is ``draw_candidates(n, excluded, subset, rng)``; the
torch generator is re-seeded with ``stage_seed(seed, "adversarial")`` after task training;
:func:`select_batch` given the returned ``candidates`` and ``rng`` then selects what the
simulated cycle selects.
"""
from __future__ import annotations

import contextlib
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .checkpoint import CycleModels, model_spec
from .config import RunConfig
from .data.candidates import draw_candidates
from .data.imagefiles import identity_lookup
from .data.sources import MaskSourceDataset, RowSource, SourceDataset
from .methods import DEFAULT_METHOD, check_dense, get_method
from .models import build_user_model
from .scoring import Scorer, Selection, select_from_pool
from .training import (TaskModels, build_adversarial_models, build_task_models, train_adversarial_models,
                       train_task_models)

log = logging.getLogger(__name__)

__all__ = ["CycleData", "TrainedCycle", "train_cycle", "select_batch", "build_task", "cycle_spec", "cycle_seed",
           "stage_seed", "torch_threads"]


def cycle_seed(config: RunConfig, trial: int, cycle: int) -> int:
    """Seed of one (trial, cycle), the same for every method (common random numbers); stable
    across processes and Python versions."""
    sequence = np.random.SeedSequence([config.seed, trial, cycle])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def stage_seed(seed: int, stage: str) -> int:
    """A seed derived from a cycle seed for one stage of the cycle (e.g. "adversarial")."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(stage.encode())])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


@contextlib.contextmanager
def torch_threads(count: Optional[int]):
    """Run the block on ``count`` torch threads (None or 0: the current number); the number
    before is restored afterwards, also on an exception."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class CycleData:
    """The rows one cycle trains on.

    Attributes:
        source: the pool's row source (``kind == "inputs"``).
        labeled: rows with a label (int64, distinct), used for the task loss and as the WAE's
            labeled side.
        labels: class indices of ``labeled`` (same length, in ``[0, num_classes)``); None for
            segmentation (``masks`` given).
        num_classes: K.
        mean, std: normalisation of uint8 sources (see :class:`SourceDataset`); recorded in the
            checkpoint so the export normalises raw pixels the same way.
        augment: training augmentation on a normalised batch, or None.
        exclude: rows that must not be trained on as unlabeled nor selected (e.g. a held-out
            labeled set, rows out for labeling).
        name: a label for the checkpoint's ``dataset`` field.
        masks: segmentation targets: the mask file of each ``labeled`` row (same length; single-
            channel class indices, 255 = unlabeled pixel, read through ``lookup`` by
            :class:`tavaal.data.sources.MaskSourceDataset`). Given masks, the cycle is a
            segmentation cycle (:attr:`task`): a dense task learner (DRN for ``arch`` auto),
            per-image Ranker targets, per-image selection scores. ``augment`` should then be a
            paired transform (:func:`tavaal.data.readers.segfolder.segmentation_augment`).
        lookup: mask value -> class table (default ``identity_lookup(num_classes)``).
        view: a training view that holds the targets itself (a torch Dataset of ``(x, y)`` items
            indexed by row, e.g. ``bundle.train`` of the simulated cycle, whose oracle knows every
            label); then ``labels`` and ``masks`` are None and only the ``labeled`` rows' targets
            are read (by task training). Must index the same rows as ``source``.
        view_task: the task of ``view``'s targets, "classification" (default) or "segmentation"
            (``(x, mask)`` items, e.g. ``bundle.task``).
    """

    source: RowSource
    labeled: np.ndarray
    labels: np.ndarray
    num_classes: int
    mean: Optional[Sequence[float]] = None
    std: Optional[Sequence[float]] = None
    augment: Optional[Callable] = None
    exclude: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    name: str = "pool"
    masks: Optional[Sequence] = None
    lookup: Optional[np.ndarray] = None
    view: Optional[torch.utils.data.Dataset] = None
    view_task: Optional[str] = None

    def __post_init__(self):
        self.labeled = np.asarray(self.labeled, dtype=np.int64).reshape(-1)
        if self.view is not None:
            if self.labels is not None or self.masks is not None:
                raise ValueError("give a training view (it holds the targets) or labels / masks, not both")
            if self.view_task not in (None, "classification", "segmentation"):
                raise ValueError(f"view_task must be 'classification' or 'segmentation', got {self.view_task!r}")
            if len(self.view) != len(self.source):
                raise ValueError(f"the training view has {len(self.view)} rows but the source {len(self.source)}")
        elif self.masks is not None:
            self.masks = [str(m) for m in self.masks]
            if len(self.masks) != self.labeled.size:
                raise ValueError(f"{self.labeled.size} labeled rows but {len(self.masks)} mask files")
            if self.labels is not None:
                raise ValueError("give labels (classification) or masks (segmentation), not both")
            if self.lookup is None:
                self.lookup = identity_lookup(self.num_classes)
        elif self.labels is None:
            raise ValueError("labels are required (or masks, for segmentation)")
        if self.view is not None or self.masks is not None:
            self.labels = np.zeros(self.labeled.size, dtype=np.int64)  # unused: the view or masks hold the targets
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.exclude = np.unique(np.asarray(self.exclude, dtype=np.int64).reshape(-1))
        if self.labeled.shape != self.labels.shape:
            raise ValueError(f"{self.labeled.size} labeled rows but {self.labels.size} labels")
        if self.labeled.size == 0:
            raise ValueError("a cycle needs at least one labeled row")
        if np.unique(self.labeled).size != self.labeled.size:
            raise ValueError("labeled rows must be distinct")
        n = len(self.source)
        if self.labeled.min() < 0 or self.labeled.max() >= n:
            raise ValueError(f"labeled rows must lie in [0, {n})")
        if self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise ValueError(f"labels must be class indices in [0, {self.num_classes}), got range "
                             f"[{self.labels.min()}, {self.labels.max()}]")
        if np.isin(self.exclude, self.labeled).any():
            raise ValueError("a row cannot be both labeled (trained on) and excluded")

    @property
    def input_shape(self) -> tuple:
        return tuple(int(s) for s in self.source.sample_shape)

    @property
    def task(self) -> str:
        """"segmentation" when the targets are masks (or ``view_task`` says so), else "classification"."""
        if self.view is not None:
            return self.view_task or "classification"
        return "classification" if self.masks is None else "segmentation"

    def dataset(self) -> torch.utils.data.Dataset:
        """The training view: ``view`` when given, else normalised rows of the source with the
        labels (or masks) of the labeled rows only (a :class:`SourceDataset`)."""
        if self.view is not None:
            return self.view
        if self.masks is not None:
            return MaskSourceDataset(self.source, self.mean, self.std, masks=dict(zip(self.labeled.tolist(), self.masks)),
                                     lookup=self.lookup)
        return SourceDataset(self.source, self.mean, self.std, targets=(self.labeled, self.labels))

    def not_labeled(self) -> np.ndarray:
        """Sorted rows that are labeled or excluded (what the unlabeled side leaves out)."""
        return np.union1d(self.labeled, self.exclude)


@dataclass
class TrainedCycle:
    """What :func:`train_cycle` returns: the models (save with
    :func:`tavaal.checkpoint.save_cycle_models`), the unlabeled candidate rows the WAE saw
    (None: every unlabeled row), the generator to select with (``rng``; its state is
    ``rng.bit_generator.state``, JSON-serialisable), task-training losses and seconds, and the
    training diagnostics (flat JSON-able ``name -> value``, e.g. the discriminator's
    separation of labeled from unlabeled rows; empty when none were recorded): the simulation
    and the loop add them to the cycle's record as they are."""

    models: CycleModels
    candidates: Optional[np.ndarray]
    rng: np.random.Generator
    history: dict
    seconds: dict
    diagnostics: dict = field(default_factory=dict)


def cycle_spec(config: RunConfig, method: str, data: CycleData, user_model: Optional[dict] = None) -> dict:
    """The checkpoint spec (:func:`tavaal.checkpoint.model_spec`) of a ``method`` cycle on
    ``data``, with the user model's description when there is one."""
    return model_spec(config, get_method(method).training(config), dataset=data.name, input_shape=data.input_shape,
                      num_classes=int(data.num_classes), task=data.task, mean=data.mean, std=data.std,
                      user_model=user_model)


def build_task(config: RunConfig, method: str, input_shape: Sequence[int], num_classes: int, *,
               user_model: Optional[dict] = None, task: str = "classification") -> TaskModels:
    """Fresh task models for ``method``: the built-in learner of ``config.arch`` (``task``
    "segmentation": a DRN, see :func:`tavaal.models.build_task_learner`), or the user
    model (a :func:`tavaal.models.resolve_model` spec; its initial weights loaded) with a
    Ranker on its taps when the method trains one."""
    training = get_method(method).training(config)
    if user_model is None:
        return build_task_models(config, tuple(input_shape), num_classes, with_ranker=training.with_ranker,
                                 dropout=training.dropout, task=task)
    if task != "classification":
        raise ValueError("user task models are classifiers; segmentation uses the built-in DRN (--arch)")
    backbone = build_user_model(user_model, tuple(input_shape))
    if backbone.num_classes != int(num_classes):
        raise ValueError(f"the user model has {backbone.num_classes} outputs but there are {num_classes} classes")
    return build_task_models(config, tuple(input_shape), num_classes, with_ranker=training.with_ranker,
                             backbone=backbone)


def train_cycle(data: CycleData, config: RunConfig, method: str = DEFAULT_METHOD, *, seed: int = 0,
                user_model: Optional[dict] = None, task: Optional[TaskModels] = None, cycle: int = 0,
                device: str = "cpu", progress: bool = False, init_state: Optional[dict] = None,
                train_task: bool = True, after_task: Optional[Callable[[TaskModels], None]] = None) -> TrainedCycle:
    """Train one cycle of ``method`` on ``data`` (see the module docstring).

    Args:
        data: the rows and labels.
        config: training settings (epochs, subset size ``config.resolved_subset()``, WAE, ...).
        method: a registered method name (what to train: :meth:`tavaal.methods.Method.training`).
        seed: the cycle's seed (everything random derives from it).
        user_model: a :func:`tavaal.models.resolve_model` spec (None: ``config.arch``).
        task: start from these task models instead of fresh ones (e.g. fine-tuning across cycles).
        cycle: recorded in the checkpoint.
        init_state: a task-models state dict loaded after the build (which still draws its random
            initialisation, so the random stream is as without it): the previous cycle's weights
            to continue from, or already trained weights (``train_task=False``).
        train_task: False when the task models (``task`` or ``init_state``) are already trained
            for this cycle on ``data.labeled`` (the simulation's shared cycle-0 models): task
            training is skipped (no history, 0 seconds); the re-seed, candidate subset, WAE + D
            and everything after are unchanged.
        after_task: called with the task models right after task training, before the re-seed
            (the simulation's test-set evaluation); not called with ``train_task=False``.

    Returns a :class:`TrainedCycle`. Raises ValueError for inconsistent inputs.
    """
    training = get_method(method).training(config)
    if data.task == "segmentation":
        check_dense([method])  # e.g. BADGE: ValueError before any training
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if task is None:
        task = build_task(config, method, data.input_shape, data.num_classes, user_model=user_model, task=data.task)
    if init_state is not None:
        task.load_state_dict(init_state)
    dataset = data.dataset()
    if train_task:
        started = time.perf_counter()
        history = train_task_models(task, dataset, data.labeled, config, ranker_loss=training.ranker_loss,
                                    augment=data.augment, seed=seed, device=device, progress=progress)
        seconds = {"task": time.perf_counter() - started}
        if after_task is not None:
            after_task(task)
    else:
        task.to(device).eval()
        history, seconds = {}, {"task": 0.0}
    torch.manual_seed(stage_seed(seed, "adversarial"))

    excluded = data.not_labeled()
    n = len(data.source)
    candidates = draw_candidates(n, excluded, int(training.subset), rng)  # None: every unlabeled row

    adversarial, diagnostics = None, {}
    if training.adversarial is not None:
        unlabeled = candidates if candidates is not None else np.setdiff1d(np.arange(n, dtype=np.int64), excluded)
        started = time.perf_counter()
        adversarial = build_adversarial_models(config, data.input_shape,
                                               rank_conditioned=training.adversarial == "rank")
        adversarial_history = train_adversarial_models(adversarial, dataset, data.labeled, unlabeled, config,
                                                       task=task, augment=data.augment, seed=seed, device=device,
                                                       progress=progress)
        seconds["adversarial"] = time.perf_counter() - started
        diagnostics.update((adversarial_history or {}).get("diagnostics") or {})
    models = CycleModels(cycle_spec(config, method, data, user_model), method, 0, int(cycle), task, adversarial)
    return TrainedCycle(models, candidates, rng, history, seconds, diagnostics)


def select_batch(models: CycleModels, source: RowSource, budget: int, *, method: Optional[str] = None,
                 labeled: Optional[Sequence[int]] = None, exclude: Optional[Sequence[int]] = None,
                 candidates: Optional[np.ndarray] = None, subset: int = 0, seed: int = 0,
                 rng: Optional[np.random.Generator] = None, config: Optional[RunConfig] = None,
                 batch_size: int = 256, progress: bool = False, device: Optional[str] = None,
                 **select_options) -> Selection:
    """Select ``budget`` rows of ``source`` with the cycle's live models through
    :func:`tavaal.scoring.select_from_pool`.

    Args:
        models: the cycle's models (from :func:`train_cycle` or ``load_cycle_models``).
        method: selection method (default: the method the models were trained for; a method
            that selects as another runs that one's selection).
        labeled: labeled rows (excluded; core-set's centers).
        exclude: other rows to leave out (out for labeling, held out).
        candidates: explicit candidate rows (e.g. ``TrainedCycle.candidates``); else ``subset``.
        subset, seed, rng: the subset method and its generator (``rng`` wins over ``seed``).
        config: supplies ``score_mode``, ``coreset_metric`` and ``mc_samples`` when given.
        select_options: passed to :func:`select_from_pool` (``with_latents``, ``save_scores``, ...).

    Returns the :class:`tavaal.scoring.Selection` (``rows``, ``ids``, ``scores``, timings).
    """
    selected = get_method(method or models.method)
    spec = models.spec
    scorer = None
    if selected.rule is not None:
        scorer = Scorer.from_models(models.task, models.adversarial, input_shape=spec["input_shape"],
                                    mean=spec.get("mean"), std=spec.get("std"),
                                    score_mode=config.score_mode if config is not None else "eval", device=device,
                                    source={"method": models.method, "cycle": models.cycle})
    if config is not None:
        select_options.setdefault("metric", config.coreset_metric)
        select_options.setdefault("mc_samples", config.mc_samples)
    return select_from_pool(scorer, source, selected.selection_name, budget, labeled=labeled, exclude=exclude,
                            indices=candidates, subset=subset, seed=seed, rng=rng, batch_size=batch_size,
                            progress=progress, **select_options)
