"""The labeling loop on a team's own data: :class:`Workdir` (init, train, select, unselect, label, status).

The CLI commands ``tavaal init|train|select|unselect|label|status`` call these methods; a notebook or
an annotation server can call them directly::

    from tavaal.loop import Workdir
    wd = Workdir.init("work", pool="images/", labels="seed_labels.csv", preset="cifar10")
    wd.train()                          # one cycle of Algorithm 1 on the labels so far
    batch = wd.select(budget=1000)      # writes work/to_label.csv + label_studio_tasks.json
    wd.label("returned.csv")            # merge what the annotators sent back
    print(wd.status_text())

Segmentation: ``Workdir.init(..., masks=FOLDER)``; the task object (:mod:`tavaal.loop.tasks`)
supplies what differs. Contracts: every method validates its inputs before it writes anything;
a refused request raises :class:`~tavaal.loop.LoopError` and leaves the work directory
byte-identical; each command commits by rewriting ``state.json`` atomically as its last write
(see :mod:`tavaal.loop.state`). No label of an unlabeled sample exists anywhere: the loop knows
exactly the labels it was given. Every command applies the pool-change rule
(:mod:`tavaal.loop.poolview`).
"""
from __future__ import annotations

import csv
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..checkpoint import load_cycle_models, save_cycle_models
from ..config import RunConfig
from ..rundir import read_json, utc_now
from ..data.candidates import check_budget
from ..data.sources import ON_UNREADABLE, write_unreadable
from ..data.labelfiles import DEFAULT_POLICY, label_studio_task, label_studio_tasks, to_label_csv
from ..labelstudio.record import workdir_locations
from ..cycle import cycle_seed, select_batch, torch_threads, train_cycle
from ..training.recipe import default_recipe
from ..methods import ScoreRule, get_method, method_names
from . import backend
from .batches import batch_pending, outside_batches_warning, pending_ids, top_level_batch
from .errors import LoopError
from .holdout import draw_holdout, holdout_ids
from .merge import MergeReport, ReadLabels
from .poolview import PoolView, ids_digest, open_pool_view
from .ray_select import select_on_ray
from .settings import apply_settings, resolve_device, resolve_settings
from .state import (LABEL_STUDIO_TASKS_JSON, SCORES_CSV, TO_LABEL_CSV, UNREADABLE_CSV, VERSION, WORKDIR_FORMAT,
                    WorkdirFiles, check_new_workdir, create_workdir, write_json, write_text)
from .status import status_text
from .tasks import CLASSIFICATION, SEGMENTATION, Task, task_of
from .user_model import user_model_spec

log = logging.getLogger("tavaal.loop")

__all__ = ["Workdir", "BatchResult", "STATS_ROWS"]

STATS_ROWS = 20000
"""Rows sampled (at most) for the normalisation statistics of a uint8 pool at init."""
AUDIT_STREAM = 0xA0D17
"""Seed stream of the audit draw (mixed with the cycle seed and the batch number)."""
MAX_UNREADABLE_RETRIES = 3
"""How often ``train`` starts again after files of the unlabeled subset turned out unreadable."""
PARALLEL_CHECK_ROWS = 1000
"""From this many labeled files on, ``train`` checks them in decode worker processes."""
CYCLE_FIELDS = ("cycle", "method", "labeled", "trained_on", "holdout", "holdout_accuracy", "seconds", "disc_auc_train",
                "disc_auc_heldout", "disc_score_std", "disc_warning")
"""The cycle-record fields of a status (and the task's ``cycle_fields``)."""


def _check_on_unreadable(value: str) -> None:
    if value not in ON_UNREADABLE:
        raise LoopError(f"--on-unreadable must be one of {', '.join(ON_UNREADABLE)}, got {value!r}")


def _skipped_files(skipped: Sequence[Dict[str, Any]]) -> List[tuple]:
    """[(id, reason)] of a source's or a selection's ``skipped`` entries (files that failed to decode)."""
    return [(e.get("id", e.get("path")), e.get("error", "")) for e in skipped]


@dataclass
class BatchResult:
    """A selected batch: ``ids`` most informative first and their ``scores``; ``audit``: the
    uniformly random audit samples after them; ``explanation``: per-sample columns of what the
    task model thinks (``predicted`` class, its ``probability``; ids then audit ids);
    ``components``: the method's score components per sample (TA-VAAL: ``r`` the Ranker's
    rank, ``d`` the discriminator's probability); ``files`` written (none for a dry run;
    ``to_label`` / ``label_studio``: the files that hold this batch, the top-level copies when
    they were replaced, else the batch folder's);
    ``notes``: lines for the user (e.g. which file holds which batch); ``masks``
    (segmentation): the task model's uint8 (H, W) class-index map per sample, ids then audit
    ids (pre-annotations for an annotation tool; not written to the batch files)."""

    batch: int
    cycle: int
    method: str
    ids: List[str]
    scores: List[float]
    files: Dict[str, str]
    summary: str
    timings: Dict[str, float]
    audit: List[str] = field(default_factory=list)
    explanation: Dict[str, List] = field(default_factory=dict)
    components: Dict[str, List] = field(default_factory=dict)
    dry_run: bool = False
    notes: List[str] = field(default_factory=list)
    masks: List[np.ndarray] = field(default_factory=list)

    @property
    def all_ids(self) -> List[str]:
        """The picks, then the audit samples."""
        return self.ids + self.audit

    @property
    def all_scores(self) -> List[Optional[float]]:
        """The scores of :attr:`all_ids` (None for the audit samples)."""
        return list(self.scores) + [None] * len(self.audit)


def _add_labels(task: Task, state: Dict[str, Any], read: ReadLabels, changes: Dict[str, str], new: List[str],
                round_: int) -> None:
    """Enter ``changes`` (id -> label; ``new``: the ids of them labeled for the first time) of
    merge round ``round_`` into ``state``: the labels, each one's history and round, the task's entries."""
    history = state.setdefault("label_history", {})
    for i, v in changes.items():
        if i not in history and i in state["labels"]:  # labeled before histories were kept
            history[i] = [{"label": state["labels"][i], "round": state["label_round"].get(i), "source": None}]
        history.setdefault(i, []).append({"label": v, "round": round_, "source": read.file})
    state["labels"].update(changes)
    task.record(state, read, new)
    state["label_round"].update({i: round_ for i in new})


def _score_components(spec, selection, picked: int, audited: int) -> Dict[str, List]:
    """Score components of the picks (None for the audit samples) of the method ``spec``: for
    methods with a discriminator ``d`` (its probability, the score) and, rank-conditioned, ``r``."""
    if spec.adversarial is None:
        return {}
    out: Dict[str, List] = {}
    if spec.adversarial == "rank" and "r" in selection.latents:
        out["r"] = [float(v) for v in np.asarray(selection.latents["r"], dtype=np.float64).reshape(picked, -1)[:, 0]]
    out["d"] = [float(v) for v in np.asarray(selection.scores, dtype=np.float64)]
    return {name: values + [None] * audited for name, values in out.items()}


class Workdir:
    """An active-learning work directory (see the module docstring). Open an existing one with
    ``Workdir(path)``, create one with :meth:`Workdir.init`. ``task``: its
    :class:`~tavaal.loop.tasks.Task` (classification or segmentation)."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.files = WorkdirFiles(path)
        self.meta = self.files.read_meta()
        self.task: Task = task_of(self.meta)
        self.init_notes: List[str] = []

    @property
    def root(self) -> Path:
        return self.files.root

    @property
    def config(self) -> RunConfig:
        """The training settings now: those of init with every ``train --set`` applied."""
        return self._config(self.state())

    def _config(self, state: Dict[str, Any]) -> RunConfig:
        return RunConfig.from_dict({**self.meta["config"], **state.get("settings", {})})

    def state(self) -> Dict[str, Any]:
        """The committed state (labels, batches, cycles); a fresh copy on every call."""
        return self.files.read_state()

    @property
    def labels(self) -> Dict[str, str]:
        """id -> class name (segmentation: stored mask path) of every label merged so far."""
        return dict(self.state()["labels"])

    # ------------------------------------------------------------------------------ init
    @classmethod
    def init(cls, path, pool, labels=None, *, masks=None, classes: Optional[Sequence[str]] = None,
             preset: Optional[str] = None, config: Optional[RunConfig] = None,
             overrides: Optional[Dict[str, Any]] = None, holdout: Union[int, float, None] = None,
             image_shape: Optional[Sequence[int]] = None, key: Optional[str] = None, method: Optional[str] = None,
             model: Union[str, Dict, None] = None, taps: Optional[Sequence[str]] = None,
             feature_layer: Optional[str] = None, weights: Optional[str] = None, output_key: Optional[str] = None,
             crop_size: Optional[Sequence[int]] = None, augment: str = "default",
             policy: str = DEFAULT_POLICY, progress: bool = False) -> "Workdir":
        """Create a work directory for ``pool`` with the labels so far: ``labels`` (a CSV or
        Label Studio export: classification) or ``masks`` (a folder of mask PNGs named like the
        pool images: segmentation; ``classes`` required, mask value i = ``classes[i]``).

        ``classes`` fixes the class list (default: the labels' classes); ``preset`` /
        ``config`` / ``overrides`` give the training settings (RunConfig fields); ``holdout`` is
        the held-out part of the labeled set for the accuracy estimate (an int count or a float
        fraction, default 0.1; 0 = none); ``method`` is what ``train`` trains for (default
        tavaal). Classification: ``model`` is your own task model instead of ``config.arch`` --
        a ``"package.module:factory"`` or ``"torchvision:resnet50"`` name with ``taps`` (the
        submodules whose outputs the Ranker reads), ``feature_layer`` (core-set's features) and
        ``weights`` (an initial state-dict file), or a spec from :func:`tavaal.models.resolve_model`.
        Without ``preset`` and ``config`` a classification work directory's settings are the
        default recipe chosen from the data (:func:`tavaal.training.recipe.default_recipe`) under
        ``overrides``. ``output_key``: the logits' key when your model's forward returns a dict.
        Segmentation: ``crop_size`` (H, W) of random training crops paired with the masks;
        ``augment`` "default" (crop if ``crop_size`` + horizontal flip), "flip", "crop",
        "crop+flip" or "none". ``policy``: how disagreeing answers for one sample in a label
        file are settled ("refuse", "latest", "majority"). ``progress``: a progress bar while every
        image file is checked.

        Image folders: the decoded shape is chosen from the files (or ``image_shape``); files
        that cannot be decoded are written to ``unreadable.csv`` and left out of the pool. What
        init decided is in :attr:`init_notes` (lines for the user). Raises :class:`LoopError`
        (nothing written) for every bad input."""
        if (labels is None) == (masks is None):
            raise LoopError("give the labels so far: --labels FILE (classification) or --masks FOLDER (segmentation)")
        task = SEGMENTATION if masks is not None else CLASSIFICATION
        given = labels if masks is None else masks
        root = Path(path)
        check_new_workdir(root)
        fields = task.init_fields(classes=classes, method=method, key=key, crop_size=crop_size, augment=augment,
                                  own_model=any(v is not None for v in (model, taps, feature_layer, weights,
                                                                        output_key)))
        resolved = resolve_settings(preset, config, overrides, method)
        task.check_method(resolved.methods[0])
        source = backend.open_pool({"path": str(pool), "key": key, "image_shape": image_shape})
        task.check_pool(source, pool, fields)
        if len(source) == 0:
            raise LoopError(f"the pool {pool} is empty: nothing to label")
        notes: List[str] = []
        choice = backend.image_shape_choice(source, image_shape)
        if choice is not None:
            notes.append(choice.describe() + ("" if choice.given else "; --image-shape C,H,W decides otherwise"))
        unreadable = backend.unreadable_files(source, progress=progress)
        if unreadable:
            source = backend.open_pool({"path": str(pool), "key": key, "image_shape": list(source.sample_shape)},
                                       exclude=[i for i, _ in unreadable])
            notes.append(f"{len(unreadable)} unreadable file(s) excluded from the pool (listed with the reason in "
                         f"{UNREADABLE_CSV}): " + ", ".join(i for i, _ in unreadable[:10])
                         + (" ..." if len(unreadable) > 10 else ""))
            if len(source) == 0:
                raise LoopError(f"no file of the pool {pool} can be decoded as an image: nothing to label")
        class_list, read = task.read_initial(given, source, classes, policy)
        if read.problems:
            raise LoopError(f"{task.describe(given)}: {len(read.problems)} {task.item}(s) cannot be used; nothing was "
                            "written", read.problems)
        ids = list(read.labels)
        task.warn(read, ids, class_list, initial=True)
        held = draw_holdout(ids, holdout, resolved.seed)
        if len(ids) - len(held) < 1:
            raise LoopError(f"the holdout ({len(held)}) leaves no labeled {task.unit} to train on "
                            f"({len(ids)} labeled): lower --holdout")
        user_model = user_model_spec(model, taps, feature_layer, weights, len(class_list), source.sample_shape,
                                     output_key)
        recipe = None
        if preset is None and config is None and task.uses_recipe:
            recipe = default_recipe(labeled=len(ids) - len(held), input_shape=source.sample_shape,
                                    num_classes=len(class_list), pool_size=len(source))
            flags = {k: v for k, v in (overrides or {}).items() if v is not None}
            resolved = resolve_settings(None, None, {**recipe.overrides, **flags}, method)
            notes.append(recipe.text(overridden=[k for k in recipe.overrides if k in flags]))
        mean, std = backend.pool_stats(source, STATS_ROWS, resolved.seed)
        folder = backend.is_image_folder(source)
        ids_text = "\n".join(source.ids) + "\n" if folder else ""
        meta = {
            "format": WORKDIR_FORMAT, "version": VERSION, "created": utc_now(), **fields,
            "pool": {"path": str(Path(pool).resolve()), "key": key, "image_shape": list(source.sample_shape),
                     "kind": type(source).__name__, "dtype": source.dtype, "size": len(source),
                     "ids_sha256": ids_digest(ids_text) if folder else None,
                     **({"unreadable": dict(unreadable)} if unreadable else {})},
            "input_shape": list(source.sample_shape), "mean": mean, "std": std,
            "holdout": sorted(held), "initial_labels": read.file, "user_model": user_model,
            **({"recipe": dict(recipe.overrides)} if recipe is not None else {}),
            "config": resolved.to_dict(),
        }
        state = {"classes": class_list, "labels": {}, "label_round": {}, "label_history": {},
                 "merges": [{"round": 0, "file": read.file, "format": read.format, "added": len(ids), "time": utc_now()}],
                 "batches": [], "cycles": []}  # commit adds format and version
        _add_labels(task, state, read, read.labels, ids, 0)
        with create_workdir(root) as files:
            write_json(files.config_path, resolved.to_dict())
            if folder:
                write_text(files.pool_ids_path, ids_text)
            task.store(files.root, read, ids)
            if unreadable:
                write_unreadable(files.unreadable_path, unreadable)
            write_text(files.labels_path, task.labels_csv(state["labels"]))
            files.commit(state)
            write_json(files.meta_path, meta)
        for warning in read.warnings:
            log.warning("%s", warning)
        wd = cls(root)
        wd.init_notes = notes
        return wd

    # ------------------------------------------------------------------------------ pool view
    def _pool_view(self, state: Dict[str, Any], quiet: bool = False) -> PoolView:
        return open_pool_view(self.files, self.meta, state, quiet=quiet)

    # ------------------------------------------------------------------------------ train
    def train(self, *, method: Optional[str] = None, device: Optional[str] = None, progress: bool = False,
              settings: Optional[Dict[str, Any]] = None, on_unreadable: str = "skip") -> Dict:
        """One cycle of Algorithm 1: the task learner (+ Ranker) on the labeled set (less the
        holdout), the WAE + discriminator on it and a seeded random unlabeled subset
        (``config.subset`` rows, default 10 x budget, streamed from the pool). Reports the
        estimate on the holdout and keeps the cycle's models. Returns the cycle record.

        ``settings``: RunConfig fields changed for this and every later cycle (``--set``;
        recorded in the cycle record as ``settings``). ``on_unreadable``: "skip" (default)
        leaves image files that cannot be decoded any more out of the pool (recorded in
        ``unreadable.csv``, reported) and trains on the rest; "error" refuses with their list."""
        _check_on_unreadable(on_unreadable)
        with self.files.lock():
            state = self.state()
            config = self._config(state)
            if settings:
                config = apply_settings(config, settings)
            method = method or config.methods[0]
            if method not in method_names():
                raise LoopError(f"unknown method {method!r}; choose from {', '.join(method_names())}")
            self.task.check_method(method)
            device = resolve_device(device or config.device)
            view = self._pool_view(state)
            labeled_rows = view.present_rows(state["labels"])
            bad = backend.unreadable_files(view.source, labeled_rows,
                                           workers=0 if len(labeled_rows) < PARALLEL_CHECK_ROWS else None)
            if bad:
                view = self._left_out_unreadable(state, bad, on_unreadable)
            for attempt in range(MAX_UNREADABLE_RETRIES + 1):
                seen = len(getattr(view.source, "skipped", []))
                try:
                    record = self._train_cycle(state, view, config, method, device, progress)
                    break
                except (ValueError, RuntimeError) as exc:  # SourceError is a ValueError
                    found = _skipped_files(getattr(view.source, "skipped", [])[seen:])
                    if not found or attempt == MAX_UNREADABLE_RETRIES:
                        if isinstance(exc, LoopError) or not isinstance(exc, ValueError):
                            raise
                        raise LoopError(f"training failed: {exc}") from None
                    view = self._left_out_unreadable(state, found, on_unreadable)
            if settings:
                record["settings"] = dict(settings)
                state["settings"] = {**state.get("settings", {}), **settings}
            state["cycles"].append(record)
            self.files.commit(state)
            if settings:
                write_json(self.files.config_path, config.to_dict())
            self._write_unreadable(state)
        return record

    def _train_cycle(self, state: Dict[str, Any], view: PoolView, config: RunConfig, method: str, device: str,
                     progress: bool) -> Dict[str, Any]:
        """Train one cycle on the pool ``view`` and save its models; the cycle record. Errors of
        the training code propagate (``train`` decides whether unreadable files caused them)."""
        classes = state["classes"]
        holdout = holdout_ids(self.meta, state)
        # rows in increasing order, as tavaal.data.Pool.labeled (the training order follows from it)
        train_ids = sorted((i for i in state["labels"] if i in view.rows and i not in holdout), key=view.rows.get)
        hold_ids = [i for i in state["labels"] if i in view.rows and i in holdout]
        if not train_ids:
            raise LoopError("no labeled sample to train on: add labels with tavaal label")
        train_rows, holdout_rows = view.present_rows(train_ids), view.present_rows(hold_ids)
        cycle = len(state["cycles"])
        seed = cycle_seed(config, 0, cycle)
        data = self.task.cycle_data(self.meta, self.root, view.source, train_rows, train_ids, state, config,
                                    exclude=np.concatenate([holdout_rows, view.present_rows(pending_ids(state))]))
        task = None
        previous = state["cycles"][-1] if state["cycles"] else None
        if (not config.fresh_model_each_cycle and previous is not None and previous["method"] == method
                and previous["classes"] == len(classes)):
            task = load_cycle_models(self.root / previous["checkpoint"]).task  # keep training it
        with torch_threads(config.num_threads):
            started = time.perf_counter()
            trained = train_cycle(data, config, method, seed=seed, user_model=self.meta.get("user_model"),
                                  task=task, cycle=cycle, device=device, progress=progress)
            holdout_metrics = self.task.holdout_metrics(trained.models.task, data, holdout_rows, hold_ids, state,
                                                        config, device, self.root)
        checkpoint = save_cycle_models(self.files.checkpoint_path(method, cycle), trained.models)
        unlabeled = (trained.candidates.size if trained.candidates is not None
                     else view.size - data.not_labeled().size)
        return {"cycle": cycle, "method": method, "seed": seed, "labeled": len(state["labels"]),
                "trained_on": int(train_rows.size), "holdout": len(hold_ids), **holdout_metrics,
                "unlabeled_subset": int(unlabeled), "pool_size": view.size,
                "classes": len(classes), "checkpoint": str(checkpoint.relative_to(self.root)),
                "train_seconds": round(trained.seconds.get("task", 0.0), 3),
                "adversarial_seconds": round(trained.seconds.get("adversarial", 0.0), 3),
                "seconds": round(time.perf_counter() - started, 3), "time": utc_now(), **trained.diagnostics}

    def _left_out_unreadable(self, state: Dict[str, Any], found: Sequence, on_unreadable: str) -> PoolView:
        """Record the files ``found`` ([(id, reason)]) as unreadable in ``state`` (committed by
        the caller) and return the pool view without them; LoopError with ``on_unreadable="error"``."""
        if on_unreadable == "error":
            raise LoopError(f"{len(found)} file(s) of the pool cannot be decoded; nothing was changed "
                            "(--on-unreadable skip leaves them out and goes on)", [f"{i}: {r}" for i, r in found])
        state.setdefault("unreadable", {}).update({str(i): str(r) for i, r in found})
        log.warning("%d file(s) of the pool cannot be decoded and are left out (listed in %s): %s", len(found),
                    self.files.unreadable_path, ", ".join(str(i) for i, _ in list(found)[:10]))
        return self._pool_view(state, quiet=True)

    def _write_unreadable(self, state: Dict[str, Any]) -> None:
        """Rewrite ``unreadable.csv`` when files became unreadable after init (after the commit)."""
        if state.get("unreadable"):
            rows = {**self.meta["pool"].get("unreadable", {}), **state["unreadable"]}
            write_unreadable(self.files.unreadable_path, sorted(rows.items()))

    # ------------------------------------------------------------------------------ select
    def select(self, budget: Optional[int] = None, *, method: Optional[str] = None, subset: Optional[int] = None,
               batch_size: Optional[int] = None, progress: bool = False, device: Optional[str] = None,
               ray: Optional[str] = None, ray_actors: Optional[int] = None, audit: int = 0, dry_run: bool = False,
               save_scores: bool = False, on_unreadable: str = "skip",
               image_url: Optional[Callable[[str], str]] = None) -> BatchResult:
        """Pick ``budget`` samples (default ``config.budget``) with the newest cycle's models
        through the shared selection path; excludes labeled and pending samples; writes
        ``to_label.csv`` and ``label_studio_tasks.json`` (with each pick's predicted class, its
        probability and the method's score components) and records the batch.

        ``audit``: K more samples drawn uniformly at random (marked ``audit`` in the batch
        files); once labeled they join the holdout. ``dry_run``: select and return the batch,
        write and record nothing. ``save_scores``: also write ``scores.csv`` (id, score of every
        scored sample) into the batch folder (score-based methods). ``on_unreadable``: "skip"
        records files that cannot be decoded (never selected) and goes on; "error" refuses.
        The top-level ``to_label.csv`` is replaced only when the batch it holds has nothing
        pending; otherwise the new batch is in its batch folder only (say so: ``notes``).
        ``ray`` ("local:N", "auto" or a cluster address): score on Ray actors
        (:mod:`tavaal.loop.ray_select`; score-based methods). ``image_url``: id -> the URL
        ``label_studio_tasks.json`` gives each image (default: its absolute path)."""
        _check_on_unreadable(on_unreadable)
        self.task.check_method(method)
        if isinstance(audit, bool) or not isinstance(audit, (int, np.integer)) or audit < 0:
            raise LoopError(f"--audit must be a count >= 0, got {audit!r}")
        if dry_run and save_scores:
            raise LoopError("--save-scores writes a file and --dry-run writes nothing: give one of them")
        with self.files.lock():
            state = self.state()
            config = self._config(state)
            budget = config.budget if budget is None else budget
            if not state["cycles"]:
                raise LoopError(f"no trained models yet: run tavaal train {self.root} first")
            last = state["cycles"][-1]
            trained = last["method"]
            method = method or trained
            if method not in method_names():
                raise LoopError(f"--method {method!r} is not available for selection here; choose from "
                                f"{', '.join(method_names())}")
            spec = get_method(method)
            if not spec.can_select_with(get_method(trained)):
                raise LoopError(f"--method {method} needs models trained for it, but the newest cycle trained "
                                f"{trained!r}: run tavaal train WORKDIR --method {method} first")
            if save_scores and not isinstance(get_method(spec.selection_name).rule, ScoreRule):
                raise LoopError(f"--save-scores needs a method with one score per sample; {method} has none")
            device = resolve_device(device or config.device)
            view = self._pool_view(state)
            pending = pending_ids(state, view.rows)
            labeled_rows, out_rows = view.present_rows(state["labels"]), view.present_rows(pending)
            excluded = np.union1d(labeled_rows, out_rows)
            try:
                check_budget(budget, view.size - excluded.size - audit, "samples left to label"
                             + (f" besides --audit {audit}" if audit else ""),
                             hint=f"lower --budget (pool {view.size}, labeled {len(state['labels'])}, out for "
                                  f"labeling {len(pending)})")
            except ValueError as exc:
                raise LoopError(f"--budget: {exc}") from None
            subset = (config.subset if config.subset is not None else 10 * budget) if subset is None else subset
            if subset < 0:
                raise LoopError(f"--subset must be >= 0 (0 = the whole pool), got {subset}")
            if 0 < subset < budget:
                raise LoopError(f"--subset {subset} is smaller than --budget {budget}")
            if len(state["labels"]) != last["labeled"]:
                log.warning("the newest models (cycle %d) were trained on %d labels; %d now: run tavaal train "
                            "first for a batch that knows the new labels", last["cycle"], last["labeled"],
                            len(state["labels"]))
            batch_size = batch_size or config.score_batch_size
            k = len(state["batches"])
            batch_dir = self.files.batch_dir(k)
            scores_npy = batch_dir / ".scores.npy" if save_scores else None
            if scores_npy is not None:
                batch_dir.mkdir(parents=True, exist_ok=True)
            models = load_cycle_models(self.root / last["checkpoint"])
            try:
                if ray is not None:
                    selection = select_on_ray(self.root, self.meta["pool"], last, method, int(budget),
                                              excluded=excluded, subset=int(subset), batch_size=batch_size, ray=ray,
                                              ray_actors=ray_actors)
                else:
                    extra = {"with_latents": True} if spec.adversarial else {}
                    selection = select_batch(models, view.source, int(budget), method=method, labeled=labeled_rows,
                                             exclude=out_rows, subset=int(subset), seed=int(last["seed"]),
                                             config=config, batch_size=batch_size, progress=progress,
                                             device=device, save_scores=scores_npy, **extra)
            except (ValueError, backend.SourceError) as exc:
                raise LoopError(f"selection failed: {exc}") from None
            found = _skipped_files(selection.skipped)
            if found:
                if dry_run:
                    log.warning("%d file(s) of the pool cannot be decoded (not selected): %s", len(found),
                                ", ".join(i for i, _ in found[:10]))
                else:
                    self._left_out_unreadable(state, found, on_unreadable)
            ids = [str(i) for i in view.source.ids_of(selection.rows)]
            scores = [float(s) for s in np.asarray(selection.scores, dtype=np.float64)]
            audit_ids = self._draw_audit(state, view, np.union1d(excluded, selection.rows), int(audit),
                                         int(last["seed"]), k, dry_run, on_unreadable) if audit else []
            rows = view.source.rows_of(ids + audit_ids) if ids + audit_ids else []
            why = self.task.explain(models, view.source, rows, self.meta, state, config, device)
            components = _score_components(spec, selection, len(ids), len(audit_ids))
            masks = self.task.predicted_masks(models, view.source, rows, self.meta, config, device)
            result = BatchResult(k, last["cycle"], method, ids, scores, {}, selection.summary(),
                                 dict(selection.timings), audit=audit_ids, explanation=why, components=components,
                                 dry_run=dry_run, masks=masks)
            if dry_run:
                return result
            result.files, texts = self._write_batch(result, view, batch_dir, scores_npy, image_url)
            top = top_level_batch(state)
            top_pending = [] if top is None else batch_pending(state, state["batches"][top], view.rows)
            state["batches"].append({"batch": k, "cycle": last["cycle"], "method": method, "budget": int(budget),
                                     "subset": int(subset), "ids": ids,
                                     "scores": [None if np.isnan(s) else s for s in scores],
                                     "dir": str(batch_dir.relative_to(self.root)), "time": utc_now(),
                                     "timings": {k2: round(v, 4) for k2, v in selection.timings.items()},
                                     **({"audit": audit_ids} if audit_ids else {})})
            replace_top = not top_pending
            if replace_top:
                state["to_label_batch"] = k
            else:
                result.notes.append(f"{self.files.to_label_path} still holds batch {top} ({len(top_pending)} "
                                    f"pending), so it was not replaced; batch {k} is {result.files['batch_to_label']}")
            self.files.commit(state)
            if replace_top:
                write_text(self.files.to_label_path, texts[0])
                write_text(self.files.label_studio_path, texts[1])
                result.files["to_label"] = str(self.files.to_label_path)
                result.files["label_studio"] = str(self.files.label_studio_path)
            self._write_unreadable(state)
        return result

    def _draw_audit(self, state, view: PoolView, taken: np.ndarray, count: int, seed: int, batch: int,
                    dry_run: bool, on_unreadable: str) -> List[str]:
        """``count`` ids drawn uniformly at random from the rows not in ``taken`` (a seeded draw
        of the batch); files that cannot be decoded are recorded and replaced."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, batch, AUDIT_STREAM]))
        free = np.setdiff1d(np.arange(view.size, dtype=np.int64), taken)
        chosen: List[int] = []
        for _ in range(MAX_UNREADABLE_RETRIES + 1):
            need = count - len(chosen)
            if need <= 0 or free.size < need:
                break
            picks = np.sort(free[rng.choice(free.size, size=need, replace=False)])
            bad = dict(backend.unreadable_files(view.source, picks, workers=0))
            if bad and not dry_run:
                if on_unreadable == "error":
                    self._left_out_unreadable(state, list(bad.items()), on_unreadable)
                state.setdefault("unreadable", {}).update(bad)
            chosen.extend(int(r) for r in picks if view.source.id_of(int(r)) not in bad)
            free = np.setdiff1d(free, picks)
        if len(chosen) < count:
            raise LoopError(f"--audit {count}: only {len(chosen)} readable samples are left to draw")
        return [str(view.source.id_of(r)) for r in chosen]

    def _write_batch(self, result: "BatchResult", view: PoolView, batch_dir: Path, scores_npy: Optional[Path],
                     image_url: Optional[Callable[[str], str]]) -> Tuple[Dict[str, str], Tuple[str, str]]:
        """Write the batch folder: ``to_label.csv``, ``label_studio_tasks.json`` (and
        ``scores.csv``); (the files written, the texts of the first two for the top-level copies)."""
        ids, scores = result.all_ids, result.all_scores
        audit = [""] * len(result.ids) + ["audit"] * len(result.audit)
        columns = {**result.explanation, **result.components}
        if result.audit:
            columns["audit"] = audit
        csv_text = to_label_csv(ids, scores, columns)
        image_root = Path(self.meta["pool"]["path"]) if backend.is_image_folder(view.source) else None
        image_url = image_url or (lambda ident: str(image_root / ident))
        predicted = result.explanation.get("predicted", [None] * len(ids))
        probability = result.explanation.get("probability", [None] * len(ids))
        tasks = []
        for rank, (i, score) in enumerate(zip(ids, scores)):
            task = label_studio_task(i, rank, score, result.batch, cycle=result.cycle, method=result.method,
                                     image=None if image_root is None else image_url(i),
                                     predicted=predicted[rank], probability=probability[rank],
                                     components={n: v[rank] for n, v in result.components.items()})
            if audit[rank]:
                task["data"]["audit"] = True
            tasks.append(task)
        tasks_text = label_studio_tasks(tasks)
        csv_file, tasks_file = str(batch_dir / TO_LABEL_CSV), str(batch_dir / LABEL_STUDIO_TASKS_JSON)
        write_text(csv_file, csv_text)
        write_text(tasks_file, tasks_text)
        files = {"batch_to_label": csv_file, "batch_label_studio": tasks_file, "batch_dir": str(batch_dir),
                 "to_label": csv_file, "label_studio": tasks_file}
        if scores_npy is not None:
            values = np.load(scores_npy, mmap_mode="r")
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["id", "score"])
            writer.writerows([view.source.id_of(int(r)), repr(float(values[r]))]
                             for r in np.flatnonzero(~np.isnan(values)))
            write_text(batch_dir / SCORES_CSV, out.getvalue())
            del values
            scores_npy.unlink()
            files["scores"] = str(batch_dir / SCORES_CSV)
        return files, (csv_text, tasks_text)

    # ------------------------------------------------------------------------------ unselect
    def unselect(self, batch: Optional[int] = None, *, all_batches: bool = False) -> Dict[int, List[str]]:
        """Return the pending samples of batch ``batch`` (default: the newest batch with pending
        samples; ``all_batches``: every batch) to the pool; what came back labeled stays.
        Returns {batch: ids returned}. Raises :class:`LoopError` when there is nothing pending."""
        if batch is not None and all_batches:
            raise LoopError("give --batch K or --all, not both")
        with self.files.lock():
            state = self.state()
            pending = {b["batch"]: batch_pending(state, b) for b in state["batches"]}
            if batch is not None:
                if not 0 <= batch < len(state["batches"]):
                    raise LoopError(f"--batch {batch}: {self.root} has batches 0..{len(state['batches']) - 1}"
                                    if state["batches"] else f"--batch {batch}: {self.root} has no batch yet")
                chosen = [batch]
            else:
                with_pending = [k for k, ids in pending.items() if ids]
                chosen = with_pending if all_batches else with_pending[-1:]
            returned = {k: pending[k] for k in chosen if pending[k]}
            if not returned:
                raise LoopError(f"nothing to unselect: {'batch ' + str(batch) if batch is not None else 'no batch'} "
                                "has pending samples")
            for k, ids in returned.items():
                b = state["batches"][k]
                b["unselected"] = sorted(set(b.get("unselected", [])) | set(ids))
                b["unselected_time"] = utc_now()
            self.files.commit(state)
        return returned

    # ------------------------------------------------------------------------------ label
    def label(self, labels, *, add_classes: bool = False, policy: str = DEFAULT_POLICY,
              relabel: bool = False) -> MergeReport:
        """Merge returned labels: a CSV ``id,label`` or Label Studio export (classification) or
        a folder of mask PNGs (segmentation). Every id must be in the pool; an id already
        labeled must keep its label (the same label again: unchanged, so merging twice changes
        nothing); a class outside the class list needs ``add_classes`` (classification). One
        :class:`LoopError` lists every offending line, and nothing changes. An id outside every
        selected batch is accepted with a warning; skipped (cancelled) tasks stay out for
        labeling. ``policy``: how disagreeing answers for one sample are settled. A label that
        differs from the merged one is a correction: refused (listed, naming ``--relabel``)
        unless ``relabel``; ``state["label_history"]`` keeps every sample's labels with their
        round and source. Atomic: label files (masks) are written
        first under their own names, then ``state.json`` is replaced in one rename."""
        with self.files.lock():
            state = self.state()
            view = self._pool_view(state)
            classes = list(state["classes"])
            # ?d= paths / image URLs of Label Studio exports: against the addressing of the last push
            locations = workdir_locations(self.root, self.meta["pool"]["path"])
            read = self.task.read_returned(labels, view.source, state, add_classes, policy, relabel, locations)
            if read.problems:
                fix = (f"; {len(read.corrections)} of them change merged labels: run again with --relabel to apply "
                       "them" if read.corrections and not relabel else "")
                raise LoopError(f"{self.task.describe(labels)}: "
                                f"{len(read.problems)} {self.task.item}(s) cannot be merged; nothing was changed{fix}",
                                read.problems)
            new = {i: v for i, v in read.labels.items() if i not in state["labels"]}
            corrected = {i: v for i, v in read.labels.items() if i in state["labels"] and state["labels"][i] != v}
            changes = {**new, **corrected}
            unchanged = len(read.labels) - len(changes)
            new_classes = self.task.new_classes(changes, classes)
            warnings = list(read.warnings) + outside_batches_warning(list(new), state)
            skipped = sorted((set(state.get("skipped", [])) | set(read.skipped)) - set(state["labels"]) - set(new))
            report = MergeReport(len(new), unchanged, new_classes, warnings, list(read.skipped), read.columns,
                                 [f"{i}: {state['labels'][i]} -> {v}" for i, v in corrected.items()])
            for w in warnings:
                log.warning("%s", w)
            self.task.warn(read, list(new), classes, initial=False)
            if not report.changed and skipped == state.get("skipped", []):
                return report  # idempotent: nothing to write
            self.task.store(self.root, read, list(new))  # unreferenced until the commit below
            round_ = len(state["merges"])
            state["classes"] = classes + new_classes
            _add_labels(self.task, state, read, changes, list(new), round_)
            state["skipped"] = skipped
            merge = {"round": round_, "file": read.file, "format": read.format, "added": len(new),
                     "unchanged": unchanged, "corrected": len(corrected), "new_classes": new_classes, "time": utc_now(),
                     **({"skipped": list(read.skipped)} if read.skipped else {})}
            state["merges"].append(merge)
            self.files.commit(state)  # the commit point: one atomic rename
            write_text(self.files.labels_path, self.task.labels_csv(state["labels"]))
        return report

    # ------------------------------------------------------------------------------ status
    def status(self) -> Dict[str, Any]:
        """Cycles so far, labeled counts per class, holdout estimate per cycle, what is out for
        labeling, pool changes and the next command to run (a JSON-able dict)."""
        state = self.state()
        view = self._pool_view(state)
        holdout = holdout_ids(self.meta, state)
        counts = self.task.label_counts(holdout, state)
        out = pending_ids(state, view.rows)
        top = top_level_batch(state)
        batches = []
        for b in state["batches"]:
            file = self.files.to_label_path if b["batch"] == top else self.root / b["dir"] / TO_LABEL_CSV
            batches.append({"batch": b["batch"], "cycle": b["cycle"], "method": b["method"],
                            "size": len(b["ids"]) + len(b.get("audit", [])), "audit": len(b.get("audit", [])),
                            "pending": len(batch_pending(state, b, view.rows)),
                            "unselected": len(b.get("unselected", [])), "file": str(file)})
        cycles = [{k: c.get(k) for k in CYCLE_FIELDS + self.task.cycle_fields} for c in state["cycles"]]
        config = self._config(state)
        if out:
            files = [b["file"] for b in batches if b["pending"]]
            next_command = self.task.returned_hint(self.root, " and ".join(files))
        elif not state["cycles"] or state["cycles"][-1]["labeled"] != len(state["labels"]):
            next_command = f"tavaal train {self.root}"
        else:
            next_command = f"tavaal select {self.root} --budget {config.budget}"
        return {"workdir": str(self.root), "task": self.task.name,
                  "pool": {"path": self.meta["pool"]["path"], "size": view.size, "added_since_init": view.added,
                           "removed_since_init": len(view.removed), "missing_labeled": view.missing_labeled,
                           "missing_out_for_labeling": view.missing_out, "unreadable": len(view.unreadable),
                           "unreadable_file": str(self.files.unreadable_path) if view.unreadable else None},
                  "method": config.methods[0], "classes": state["classes"], "labeled": len(state["labels"]),
                  "held_out": len(holdout.intersection(state["labels"])),
                  "counts": counts, "cycles": cycles, "batches": batches, "out_for_labeling": len(out),
                  "skipped": [i for i in state.get("skipped", []) if i not in state["labels"]],
                  "corrections": [{"round": m["round"], "corrected": m["corrected"]} for m in state["merges"]
                                  if m.get("corrected")],
                  "advice": read_json(self.files.advice_path)["summary"] if self.files.advice_path.exists() else None,
                  "next": next_command}

    def status_text(self) -> str:
        """:meth:`status` as the text ``tavaal status`` prints."""
        return status_text(self.status(), self.task)

