"""The labeling loop on a team's own data: :class:`Workdir` (init, train, select, label, status).

The CLI commands ``tavaal init|train|select|label|status`` call these methods; a notebook or
an annotation server can call them directly::

    from tavaal.loop import Workdir
    wd = Workdir.init("work", pool="images/", labels="seed_labels.csv", preset="cifar10")
    wd.train()                          # one cycle of Algorithm 1 on the labels so far
    batch = wd.select(budget=1000)      # writes work/to_label.csv + label_studio_tasks.json
    wd.label("returned.csv")            # merge what the annotators sent back
    print(wd.status_text())

Contracts: every method validates its inputs before it writes anything; a refused request
raises :class:`~tavaal.loop.LoopError` and leaves the work directory byte-identical; each
command commits by rewriting ``state.json`` atomically as its last write (see
:mod:`tavaal.loop.state`). No label of an unlabeled sample exists anywhere: the loop knows
exactly the labels it was given.

Pool-change rule (checked by every command): a sample that appears in the pool after ``init``
(a new image file; rows appended to an array pool) joins the unlabeled pool; a labeled (or
out-for-labeling) sample whose file disappeared is reported by every command and in
``status``, keeps its label in ``state.json`` and ``labels.csv``, and is left out of training
while it is missing (never silently dropped). Array pools may only grow by appending rows (row
numbers are their ids).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..config import RunConfig, resolve_config
from . import backend
from .classes import infer_classes, natural_order
from .errors import LoopError
from .labels import LabelEntry, LabelFile, label_studio_tasks, labels_csv, read_label_file, to_label_csv
from .state import (VERSION, WORKDIR_FORMAT, WorkdirFiles, check_new_workdir, create_workdir, empty_state,
                     write_json, write_text)

log = logging.getLogger("tavaal.loop")

__all__ = ["Workdir", "MergeReport", "BatchResult", "DEFAULT_HOLDOUT", "SELECT_METHODS", "latest_checkpoint"]

DEFAULT_HOLDOUT = 0.1
"""Default held-out part of the initial labeled set (a fraction; an int is a count)."""
STATS_ROWS = 20000
"""Rows sampled (at most) for the normalisation statistics of a uint8 pool at init."""
def _select_methods() -> tuple:
    """Methods ``select`` accepts: those of the shared selection path, plus training names that
    select as one of them (lloss2 -> lloss)."""
    from ..scoring import METHODS
    from ..strategies import STRATEGIES

    return tuple(METHODS) + tuple(m for m in STRATEGIES if m not in METHODS)


SELECT_METHODS = _select_methods()
"""Methods ``select`` runs through the shared selection path (:func:`tavaal.scoring.select_from_pool`)."""
_NO_OVERRIDE = ("dataset", "data_dir", "dataset_options", "methods", "trials", "cycles", "initial")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class MergeReport:
    """What :meth:`Workdir.label` did: ``added`` new labels, ``unchanged`` ids that were already
    labeled identically, ``new_classes`` appended, ``warnings`` (ids outside any selected batch,
    unannotated Label Studio tasks)."""

    added: int
    unchanged: int
    new_classes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.added > 0 or bool(self.new_classes)


@dataclass
class BatchResult:
    """A selected batch: ids most informative first, their scores, the files written."""

    batch: int
    cycle: int
    method: str
    ids: List[str]
    scores: List[float]
    files: Dict[str, str]
    summary: str
    timings: Dict[str, float]


@dataclass
class _PoolView:
    """The pool as it is now, checked against the pool at init (the pool-change rule)."""

    source: Any
    size: int
    added: int
    removed: List[str]          # ids present at init, gone now (only known for image folders / shrunk arrays)
    missing_labeled: List[str]  # labeled ids not in the pool now
    missing_out: List[str]      # out-for-labeling ids not in the pool now
    rows: Dict[str, int]        # id -> row of every labeled or out-for-labeling id present

    def warnings(self) -> List[str]:
        out = []
        if self.missing_labeled:
            shown = ", ".join(self.missing_labeled[:20])
            more = f" ... ({len(self.missing_labeled)} in all)" if len(self.missing_labeled) > 20 else ""
            out.append(f"{len(self.missing_labeled)} labeled sample(s) are no longer in the pool and are left out of "
                       f"training (their labels are kept; put the files back to use them): {shown}{more}")
        if self.missing_out:
            out.append(f"{len(self.missing_out)} sample(s) out for labeling are no longer in the pool: "
                       + ", ".join(self.missing_out[:20]))
        return out


class Workdir:
    """An active-learning work directory (see the module docstring). Open an existing one with
    ``Workdir(path)``, create one with :meth:`Workdir.init`."""

    def __new__(cls, path=None, *args, **kwargs):
        # a work directory whose labels are masks opens as a MaskWorkdir (tavaal.loop.masks)
        if cls is Workdir and path is not None:
            from .masks import MaskWorkdir, is_mask_workdir

            if is_mask_workdir(path):
                return super().__new__(MaskWorkdir)
        return super().__new__(cls)

    def __init__(self, path: Union[str, os.PathLike]):
        self.files = WorkdirFiles(path)
        self.meta = self.files.read_meta()

    @property
    def root(self) -> Path:
        return self.files.root

    # ------------------------------------------------------------------------------ config
    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.meta["config"])

    def state(self) -> Dict[str, Any]:
        """The committed state (labels, batches, cycles); a fresh copy on every call."""
        return self.files.read_state()

    @property
    def labels(self) -> Dict[str, str]:
        """id -> class name of every label merged so far."""
        return dict(self.state()["labels"])

    # ------------------------------------------------------------------------------ init
    @classmethod
    def init(cls, path, pool, labels, *, classes: Optional[Sequence[str]] = None, preset: Optional[str] = None,
             config: Optional[RunConfig] = None, overrides: Optional[Dict[str, Any]] = None,
             holdout: Union[int, float, None] = None, image_shape: Optional[Sequence[int]] = None,
             key: Optional[str] = None, method: Optional[str] = None, model: Union[str, Dict, None] = None,
             taps: Optional[Sequence[str]] = None, feature_layer: Optional[str] = None,
             weights: Optional[str] = None) -> "Workdir":
        """Create a work directory for ``pool`` with the labels of ``labels`` (CSV or Label Studio
        export). ``classes`` fixes the class list (default: the labels' classes); ``preset`` /
        ``config`` / ``overrides`` give the training settings (RunConfig fields); ``holdout`` is
        the held-out part of the labeled set for the accuracy estimate (an int count or a float
        fraction, default 0.1; 0 = none); ``method`` is what ``train`` trains for (default
        tavaal). ``model``: your own task model instead of ``config.arch`` -- a
        ``"package.module:factory"`` or ``"torchvision:resnet50"`` name with ``taps`` (the
        submodules whose outputs the Ranker reads), ``feature_layer`` (core-set's features) and
        ``weights`` (an initial state-dict file), or a spec from :func:`tavaal.models.resolve_model`.
        Raises :class:`LoopError` (nothing written) for every bad input."""
        root = Path(path)
        check_new_workdir(root)
        resolved = cls._resolve_config(preset, config, overrides, method)
        try:
            source = backend.open_pool_spec({"path": str(pool), "key": key, "image_shape": image_shape})
        except (backend.SourceError, ValueError) as exc:
            raise LoopError(f"cannot open the pool: {exc}") from None
        if len(source) == 0:
            raise LoopError(f"the pool {pool} is empty: nothing to label")
        parsed = read_label_file(labels)
        class_list = list(classes) if classes is not None else infer_classes(parsed.entries)
        if classes is not None:
            dup = sorted({c for c in class_list if class_list.count(c) > 1})
            if dup or len(class_list) < 2:
                raise LoopError(f"the class list needs >= 2 distinct names, got {class_list}")
        accepted, problems = _validate_entries(parsed, source, {}, class_list, add_classes=False)
        if problems:
            raise LoopError(f"labels file {labels}: {len(problems)} line(s) cannot be used; nothing was written",
                            problems)
        counts = {c: 0 for c in class_list}
        for _, label in accepted.items():
            counts[label] += 1
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            log.warning("class(es) with no labeled sample yet: %s", ", ".join(empty))
        holdout_ids = _draw_holdout(list(accepted), holdout, resolved.seed)
        if len(accepted) - len(holdout_ids) < 1:
            raise LoopError(f"the holdout ({len(holdout_ids)}) leaves no labeled sample to train on "
                            f"({len(accepted)} labeled): lower --holdout")
        user_model = _user_model(model, taps, feature_layer, weights, len(class_list), source.sample_shape)
        mean, std = backend.pool_stats(source, STATS_ROWS, resolved.seed)
        folder = backend.is_image_folder(source)
        ids_text = "\n".join(source.ids) + "\n" if folder else ""
        meta = {
            "format": WORKDIR_FORMAT, "version": VERSION, "created": _now(),
            "pool": {"path": str(Path(pool).resolve()), "key": key, "image_shape": list(source.sample_shape),
                     "kind": type(source).__name__, "dtype": source.dtype, "size": len(source),
                     "ids_sha256": hashlib.sha256(ids_text.encode()).hexdigest() if folder else None},
            "input_shape": list(source.sample_shape), "mean": mean, "std": std,
            "holdout": sorted(holdout_ids), "initial_labels": parsed.path, "user_model": user_model,
            "config": resolved.to_dict(),
        }
        state = empty_state()
        state["classes"] = class_list
        state["labels"] = dict(accepted)
        state["label_round"] = {i: 0 for i in accepted}
        state["merges"] = [{"round": 0, "file": str(parsed.path), "format": parsed.format, "added": len(accepted),
                            "time": _now()}]
        with create_workdir(root) as files:
            write_json(files.config_path, resolved.to_dict())
            if folder:
                write_text(files.pool_ids_path, ids_text)
            write_text(files.labels_path, labels_csv(state["labels"]))
            files.commit(state)
            write_json(files.meta_path, meta)
        for warning in parsed.warnings:
            log.warning("%s", warning)
        return cls(root)

    @staticmethod
    def _resolve_config(preset, config, overrides, method) -> RunConfig:
        if config is not None and (preset is not None or overrides):
            raise LoopError("give a RunConfig or a preset/overrides, not both")
        overrides = dict(overrides or {})
        fixed = sorted(k for k in overrides if k in _NO_OVERRIDE)
        if fixed:
            raise LoopError(f"{', '.join(fixed)} do not apply to a work directory (the pool and the labels define "
                            "the data; one train command is one cycle)")
        try:
            if config is None:
                base = resolve_config(preset, None) if preset else RunConfig()
                values = base.to_dict()
                values.update({k: v for k, v in overrides.items() if v is not None})
                config = RunConfig.from_dict(values)
            if method is not None:
                config = dataclasses.replace(config, methods=[method])
            config = dataclasses.replace(config, dataset="workdir", data_dir=None, dataset_options={}, trials=1)
            config.validate()
        except (ValueError, TypeError) as exc:
            raise LoopError(f"invalid settings: {exc}") from None
        if len(config.methods) != 1:
            raise LoopError(f"a work directory trains for one method at a time, got {config.methods}")
        return config

    # ------------------------------------------------------------------------------ pool view
    def _pool_view(self, state: Dict[str, Any]) -> _PoolView:
        spec = self.meta["pool"]
        try:
            source = backend.open_pool_spec(spec)
        except (backend.SourceError, ValueError) as exc:
            raise LoopError(f"cannot open the pool of {self.root}: {exc} (the pool path is recorded in "
                            f"{self.files.meta_path})") from None
        if list(source.sample_shape) != list(self.meta["input_shape"]):
            raise LoopError(f"the pool's samples now have shape {list(source.sample_shape)} but {self.root} was "
                            f"initialised with {self.meta['input_shape']}")
        n, n0 = len(source), int(spec["size"])
        added, removed = 0, []
        if backend.is_image_folder(source):
            text = "\n".join(source.ids) + "\n"
            if hashlib.sha256(text.encode()).hexdigest() != spec["ids_sha256"]:
                before = set(self.files.pool_ids_path.read_text().splitlines())
                now = set(source.ids)
                added = len(now - before)
                removed = sorted(before - now)
        else:
            added = max(n - n0, 0)
            removed = [str(r) for r in range(n, n0)]
        tracked = list(state["labels"]) + [i for i in _out_for_labeling(state) if i not in state["labels"]]
        rows, _ = backend.rows_for_ids(source, tracked) if tracked else ([], [])
        present = {i: r for i, r in zip(tracked, rows) if r is not None}
        labels = state["labels"]
        missing_labeled = [i for i in labels if i not in present]
        missing_out = [i for i in _out_for_labeling(state) if i not in present and i not in labels]
        view = _PoolView(source, n, added, removed, missing_labeled, missing_out, present)
        for warning in view.warnings():
            log.warning("%s", warning)
        return view

    # ------------------------------------------------------------------------------ train
    def train(self, *, method: Optional[str] = None, device: Optional[str] = None, progress: bool = False) -> Dict:
        """One cycle of Algorithm 1: the task learner (+ Ranker) on the labeled set (less the
        holdout), the WAE + discriminator on it and a seeded random unlabeled subset
        (``config.subset`` rows, default 10 x budget, streamed from the pool). Reports the
        accuracy on the holdout and keeps the cycle's models. Returns the cycle record."""
        config = self.config
        method = method or config.methods[0]
        from ..strategies import STRATEGIES

        if method not in STRATEGIES:
            raise LoopError(f"unknown method {method!r}; choose from {', '.join(STRATEGIES)}")
        with self.files.lock():
            state = self.state()
            view = self._pool_view(state)
            classes = state["classes"]
            holdout = set(self.meta["holdout"])
            train_ids = [i for i in state["labels"] if i in view.rows and i not in holdout]
            hold_ids = [i for i in state["labels"] if i in view.rows and i in holdout]
            if not train_ids:
                raise LoopError("no labeled sample to train on: add labels with tavaal label")
            # rows in increasing order, as tavaal.data.Pool.labeled (the training order follows from it)
            train_rows = np.asarray([view.rows[i] for i in train_ids], dtype=np.int64)
            order = np.argsort(train_rows, kind="stable")
            train_rows, train_ids = train_rows[order], [train_ids[k] for k in order]
            holdout_rows = [view.rows[i] for i in hold_ids]
            out_rows = [view.rows[i] for i in _out_for_labeling(state) if i in view.rows]
            cycle = len(state["cycles"])
            from ..checkpoint import load_cycle_models, save_cycle_models
            from ..cycle import train_cycle
            from ..experiment import cycle_seed

            seed = cycle_seed(config, 0, cycle)
            data = self._cycle_data(view.source, train_rows, train_ids, state,
                                    exclude=np.asarray(holdout_rows + out_rows, dtype=np.int64))
            task = None
            previous = state["cycles"][-1] if state["cycles"] else None
            if (not config.fresh_model_each_cycle and previous is not None and previous["method"] == method
                    and previous["classes"] == len(classes)):
                task = load_cycle_models(self.root / previous["checkpoint"]).task  # keep training it
            device = device or config.device
            threads = torch.get_num_threads()
            if config.num_threads:
                torch.set_num_threads(config.num_threads)
            try:
                started = time.perf_counter()
                trained = train_cycle(data, config, method, seed=seed, user_model=self.meta.get("user_model"),
                                      task=task, cycle=cycle, device=device, progress=progress)
                holdout_metrics = self._holdout_metrics(trained.models.task, data, holdout_rows, hold_ids, state,
                                                        config, device)
            except (ValueError, backend.SourceError) as exc:
                raise LoopError(f"training failed: {exc}") from None
            finally:
                torch.set_num_threads(threads)
            checkpoint = save_cycle_models(self.files.checkpoint_path(method, cycle), trained.models)
            unlabeled = (trained.candidates.size if trained.candidates is not None
                         else view.size - data.not_labeled().size)
            record = {"cycle": cycle, "method": method, "seed": seed, "labeled": len(state["labels"]),
                      "trained_on": int(train_rows.size), "holdout": len(hold_ids), **holdout_metrics,
                      "unlabeled_subset": int(unlabeled), "pool_size": view.size,
                      "classes": len(classes), "checkpoint": str(checkpoint.relative_to(self.root)),
                      "train_seconds": round(trained.seconds.get("task", 0.0), 3),
                      "adversarial_seconds": round(trained.seconds.get("adversarial", 0.0), 3),
                      "seconds": round(time.perf_counter() - started, 3), "time": _now()}
            state["cycles"].append(record)
            self.files.commit(state)
        return record

    def _cycle_data(self, source, rows: np.ndarray, ids: List[str], state: Dict[str, Any], *, exclude: np.ndarray):
        """The :class:`tavaal.cycle.CycleData` of a train cycle: ``rows`` (sorted) with ids ``ids``
        and their labels (hook: :class:`tavaal.loop.masks.MaskWorkdir` gives masks instead)."""
        from ..cycle import CycleData

        index_of = {c: k for k, c in enumerate(state["classes"])}
        classes = np.asarray([index_of[state["labels"][i]] for i in ids], dtype=np.int64)
        return CycleData(source, rows, classes, len(state["classes"]), mean=self.meta["mean"], std=self.meta["std"],
                         exclude=exclude, name="workdir")

    def _holdout_metrics(self, task, data, rows: List[int], ids: List[str], state: Dict[str, Any], config: RunConfig,
                         device) -> Dict[str, Any]:
        """Cycle-record fields of the accuracy estimate on the held-out rows: ``holdout_accuracy``
        (None without a holdout; hook: masks report mIoU)."""
        if not ids:
            return {"holdout_accuracy": None}
        index_of = {c: k for k, c in enumerate(state["classes"])}
        return {"holdout_accuracy": _accuracy(task, data.dataset(), rows, [index_of[state["labels"][i]] for i in ids],
                                              config, device)}

    # ------------------------------------------------------------------------------ select
    def select(self, budget: Optional[int] = None, *, method: Optional[str] = None, subset: Optional[int] = None,
               batch_size: Optional[int] = None, progress: bool = False, device: Optional[str] = None,
               ray: Optional[str] = None, ray_actors: Optional[int] = None) -> BatchResult:
        """Pick ``budget`` samples (default ``config.budget``) with the newest cycle's models
        through the shared selection path; excludes labeled and out-for-labeling samples; writes
        ``to_label.csv`` and ``label_studio_tasks.json`` and records the batch.

        ``ray`` ("local:N", "auto" or a cluster address): score on Ray actors
        (:func:`tavaal.distributed.ray_pool.ray_select_from_pool`; score-based methods) from
        TorchScript artifacts of the cycle, exported once into the cycle's folder; the pool
        must be on a filesystem every node sees."""
        config = self.config
        budget = config.budget if budget is None else budget
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise LoopError(f"--budget must be a positive integer, got {budget!r}")
        with self.files.lock():
            state = self.state()
            if not state["cycles"]:
                raise LoopError(f"no trained models yet: run tavaal train {self.root} first")
            last = state["cycles"][-1]
            trained = last["method"]
            method = method or trained
            if method not in SELECT_METHODS:
                raise LoopError(f"--method {method!r} is not available for selection here; choose from "
                                f"{', '.join(SELECT_METHODS)}")
            _check_compatible(method, trained)
            view = self._pool_view(state)
            excluded = self._excluded_rows(state, view)
            remaining = view.size - excluded.size
            if budget > remaining:
                raise LoopError(f"--budget {budget} is larger than the {remaining} samples left to label (pool "
                                f"{view.size}, labeled {len(state['labels'])}, out for labeling "
                                f"{len(_out_for_labeling(state))}): lower --budget")
            subset = (config.subset if config.subset is not None else 10 * budget) if subset is None else subset
            if subset < 0:
                raise LoopError(f"--subset must be >= 0 (0 = the whole pool), got {subset}")
            if 0 < subset < budget:
                raise LoopError(f"--subset {subset} is smaller than --budget {budget}")
            if len(state["labels"]) != last["labeled"]:
                log.warning("the newest models (cycle %d) were trained on %d labels; %d now: run tavaal train "
                            "first for a batch that knows the new labels", last["cycle"], last["labeled"],
                            len(state["labels"]))
            from ..checkpoint import load_cycle_models
            from ..cycle import select_batch

            labeled_rows = np.asarray([view.rows[i] for i in state["labels"] if i in view.rows], dtype=np.int64)
            out_rows = np.asarray([view.rows[i] for i in _out_for_labeling(state) if i in view.rows], dtype=np.int64)
            try:
                if ray is not None:
                    selection = self._select_on_ray(ray, ray_actors, last, view, method, int(budget), labeled_rows,
                                                    out_rows, int(subset), batch_size or config.score_batch_size)
                else:
                    models = load_cycle_models(self.root / last["checkpoint"])
                    selection = select_batch(models, view.source, int(budget), method=method, labeled=labeled_rows,
                                             exclude=out_rows, subset=int(subset), seed=int(last["seed"]),
                                             config=config, batch_size=batch_size or config.score_batch_size,
                                             progress=progress, device=device or config.device)
            except (ValueError, backend.SourceError) as exc:
                raise LoopError(f"selection failed: {exc}") from None
            ids = [str(i) for i in view.source.ids_of(selection.rows)]
            scores = [float(s) for s in np.asarray(selection.scores, dtype=np.float64)]
            k = len(state["batches"])
            batch_dir = self.files.batch_dir(k)
            csv_text = to_label_csv(ids, scores)
            image_root = self.meta["pool"]["path"] if backend.is_image_folder(view.source) else None
            tasks_text = label_studio_tasks(ids, scores, image_root, k)
            write_text(batch_dir / "to_label.csv", csv_text)
            write_text(batch_dir / "label_studio_tasks.json", tasks_text)
            files = {"to_label": str(self.root / "to_label.csv"),
                     "label_studio": str(self.root / "label_studio_tasks.json"),
                     "batch_dir": str(batch_dir)}
            state["batches"].append({"batch": k, "cycle": last["cycle"], "method": method, "budget": int(budget),
                                     "subset": int(subset), "ids": ids, "scores": [None if np.isnan(s) else s for s in scores],
                                     "dir": str(batch_dir.relative_to(self.root)), "time": _now(),
                                     "timings": {k2: round(v, 4) for k2, v in selection.timings.items()}})
            self.files.commit(state)
            write_text(self.root / "to_label.csv", csv_text)
            write_text(self.root / "label_studio_tasks.json", tasks_text)
        return BatchResult(k, last["cycle"], method, ids, scores, files, selection.summary(), dict(selection.timings))

    def _select_on_ray(self, ray, ray_actors, cycle_record, view, method, budget, labeled_rows, out_rows, subset,
                       batch_size):
        """:meth:`select` on Ray: TorchScript artifacts of the cycle (exported once), then the Ray
        pool scorer over the pool file with labeled + out-for-labeling rows excluded."""
        from ..artifacts import MANIFEST_NAME
        from ..distributed.cluster import ray_session
        from ..distributed.ray_pool import ScorerSpec, ray_select_from_pool
        from ..export import export_run

        checkpoint = self.root / cycle_record["checkpoint"]
        artifacts = checkpoint.with_name(f"artifacts_cycle_{cycle_record['cycle']:02d}")
        if not (artifacts / MANIFEST_NAME).exists():
            export_run(self.root, artifacts, checkpoint=checkpoint, formats=("torchscript",))
        excluded = np.union1d(labeled_rows, out_rows)
        spec = self.meta["pool"]
        kwargs = {k: v for k, v in (("key", spec.get("key")),
                                    ("image_shape", tuple(spec["image_shape"]) if spec.get("image_shape") else None))
                  if v is not None}
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            raise LoopError("--ray needs ray: pip install 'tavaal[ray]'") from None
        with ray_session(ray):
            return ray_select_from_pool(ScorerSpec(str(artifacts.resolve()), "torchscript"), spec["path"], method,
                                        budget, labeled=excluded, subset=subset, seed=int(cycle_record["seed"]),
                                        batch_size=batch_size, num_actors=ray_actors, pool_kwargs=kwargs)

    def _excluded_rows(self, state, view: _PoolView) -> np.ndarray:
        """Rows that are labeled (holdout included) or out for labeling, sorted."""
        ids = list(state["labels"]) + _out_for_labeling(state)
        rows = [view.rows[i] for i in ids if i in view.rows]
        return np.unique(np.asarray(rows, dtype=np.int64))

    # ------------------------------------------------------------------------------ label
    def label(self, labels, *, add_classes: bool = False) -> MergeReport:
        """Merge returned labels (CSV ``id,label`` or a Label Studio export). Every id must be in
        the pool; an id already labeled must keep its label (same label again: unchanged, so
        merging a file twice changes nothing); a class outside the class list needs
        ``add_classes``. One :class:`LoopError` lists every offending line, and nothing changes.
        An id outside every selected batch is accepted with a warning. Atomic: the new state is
        one ``os.replace`` of ``state.json``."""
        parsed = labels if isinstance(labels, LabelFile) else read_label_file(labels)
        with self.files.lock():
            state = self.state()
            view = self._pool_view(state)
            classes = list(state["classes"])
            accepted, problems = _validate_entries(parsed, view.source, state["labels"], classes, add_classes)
            if problems:
                raise LoopError(f"labels file {parsed.path}: {len(problems)} line(s) cannot be merged; nothing "
                                "was changed", problems)
            new = {i: c for i, c in accepted.items() if i not in state["labels"]}
            unchanged = len(accepted) - len(new)
            new_classes = natural_order(c for c in new.values() if c not in classes)
            out = set(_out_for_labeling(state))
            warnings = list(parsed.warnings)
            outside = [i for i in new if i not in out]
            if outside:
                warnings.append(f"{len(outside)} id(s) were not in a selected batch (accepted): "
                                + ", ".join(outside[:20]) + (" ..." if len(outside) > 20 else ""))
            report = MergeReport(len(new), unchanged, new_classes, warnings)
            for w in warnings:
                log.warning("%s", w)
            if not report.changed:
                return report  # idempotent: nothing to write
            round_ = len(state["merges"])
            state["classes"] = classes + new_classes
            state["labels"].update(new)
            state["label_round"].update({i: round_ for i in new})
            state["merges"].append({"round": round_, "file": str(parsed.path), "format": parsed.format,
                                    "added": len(new), "unchanged": unchanged, "new_classes": new_classes,
                                    "time": _now()})
            self.files.commit(state)  # the commit point: one atomic rename
            write_text(self.files.labels_path, labels_csv(state["labels"]))
        return report

    # ------------------------------------------------------------------------------ status
    def status(self) -> Dict[str, Any]:
        """Cycles so far, labeled counts per class, holdout accuracy per cycle, what is out for
        labeling, pool changes and the next command to run (a JSON-able dict)."""
        state = self.state()
        view = self._pool_view(state)
        counts = self._label_counts(state)
        out = _out_for_labeling(state)
        batches = []
        for b in state["batches"]:
            pending = [i for i in b["ids"] if i not in state["labels"]]
            batches.append({"batch": b["batch"], "cycle": b["cycle"], "method": b["method"], "size": len(b["ids"]),
                            "pending": len(pending), "file": str(self.root / b["dir"] / "to_label.csv")})
        cycles = [{k: c.get(k) for k in ("cycle", "method", "labeled", "trained_on", "holdout", "holdout_accuracy",
                                         "seconds")} for c in state["cycles"]]
        config = self.config
        if out:
            next_command = (f"send {self.root / 'to_label.csv'} (or label_studio_tasks.json) to the annotators, then: "
                            f"tavaal label {self.root} RETURNED_LABELS.csv")
        elif not state["cycles"] or state["cycles"][-1]["labeled"] != len(state["labels"]):
            next_command = f"tavaal train {self.root}"
        else:
            next_command = f"tavaal select {self.root} --budget {config.budget}"
        return {"workdir": str(self.root), "pool": {"path": self.meta["pool"]["path"], "size": view.size,
                                                    "added_since_init": view.added,
                                                    "removed_since_init": len(view.removed),
                                                    "missing_labeled": view.missing_labeled,
                                                    "missing_out_for_labeling": view.missing_out},
                "method": config.methods[0], "classes": state["classes"], "labeled": len(state["labels"]),
                "counts": counts, "cycles": cycles, "batches": batches, "out_for_labeling": len(out),
                "next": next_command}

    def _label_counts(self, state: Dict[str, Any]) -> Dict[str, Dict[str, int]]:
        """class -> {"train": n, "holdout": n} labeled samples (hook: masks count images per class)."""
        holdout = set(self.meta["holdout"])
        counts = {c: {"train": 0, "holdout": 0} for c in state["classes"]}
        for i, c in state["labels"].items():
            counts[c]["holdout" if i in holdout else "train"] += 1
        return counts

    def status_text(self) -> str:
        """:meth:`status` as the text ``tavaal status`` prints."""
        s = self.status()
        lines = [f"work directory {s['workdir']} (method {s['method']})", *_pool_lines(s, "sample", "labels")]
        held = sum(v["holdout"] for v in s["counts"].values())
        lines.append(f"labeled {s['labeled']} ({held} held out for the accuracy estimate), "
                     f"{len(s['classes'])} classes:")
        width = max(len(c) for c in s["classes"])
        for c, v in s["counts"].items():
            lines.append(f"  {c:<{width}}  {v['train'] + v['holdout']:>7}" + (f"  ({v['holdout']} held out)"
                                                                            if v["holdout"] else ""))
        lines.append(f"cycles: {len(s['cycles'])}")
        for c in s["cycles"]:
            acc = "n/a (no holdout)" if c["holdout_accuracy"] is None else f"{100 * c['holdout_accuracy']:.2f}%"
            lines.append(f"  cycle {c['cycle']:>2}  {c['method']:<8} trained on {c['trained_on']:>7}  "
                         f"holdout accuracy {acc}")
        return "\n".join(lines + _pending_lines(s))


def _pool_lines(s: Dict[str, Any], unit: str, kept: str) -> List[str]:
    """The pool lines of ``status_text`` for status ``s`` (``unit``: "sample"/"image"; ``kept``:
    what stays of a labeled one that left the pool)."""
    pool = s["pool"]
    lines = [f"pool {pool['path']}: {pool['size']} {unit}s"
             + (f", {pool['added_since_init']} added since init" if pool["added_since_init"] else "")
             + (f", {pool['removed_since_init']} removed since init" if pool["removed_since_init"] else "")]
    if pool["missing_labeled"]:
        lines.append(f"  MISSING: {len(pool['missing_labeled'])} labeled {unit}(s) no longer in the pool "
                     f"({kept} kept, left out of training): " + ", ".join(pool["missing_labeled"][:20]))
    return lines


def _pending_lines(s: Dict[str, Any]) -> List[str]:
    """The closing lines of ``status_text`` for status ``s``: batches out for labeling and the next command."""
    lines = [f"out for labeling: {s['out_for_labeling']}"]
    for b in s["batches"]:
        if b["pending"]:
            lines.append(f"  batch {b['batch']} (cycle {b['cycle']}, {b['method']}): {b['pending']} of "
                         f"{b['size']} pending  {b['file']}")
    lines.append(f"next: {s['next']}")
    return lines


def latest_checkpoint(path) -> Path:
    """The checkpoint of the newest train cycle of work directory ``path`` (what
    ``python -m tavaal.export WORKDIR`` exports). Raises FileNotFoundError when no cycle has been
    trained, :class:`LoopError` (a ValueError) when ``path`` is not a work directory."""
    wd = Workdir(path)
    cycles = wd.state()["cycles"]
    if not cycles:
        raise FileNotFoundError(f"{wd.root} has no trained cycle yet: run tavaal train {wd.root} first")
    checkpoint = wd.root / cycles[-1]["checkpoint"]
    if not checkpoint.exists():
        raise FileNotFoundError(f"{checkpoint} (cycle {cycles[-1]['cycle']}) is missing")
    return checkpoint


# ---------------------------------------------------------------------------------- helpers
def _user_model(model, taps, feature_layer, weights, num_classes: int, input_shape) -> Optional[Dict]:
    """The user-model spec stored in workdir.json (None: the built-in learner of config.arch);
    built once here so that a model that cannot be imported, built or tapped fails at init."""
    if model is None:
        if taps or feature_layer or weights:
            raise LoopError("--taps / --feature-layer / --weights need --model")
        return None
    from ..models import build_user_model, resolve_model

    try:
        if isinstance(model, dict):
            spec = dict(model)
        else:
            spec = resolve_model(str(model), num_classes, taps=taps, feature_layer=feature_layer,
                                 weights=None if weights is None else str(Path(weights).resolve()))
        built = build_user_model(spec, tuple(input_shape))
    except (ValueError, TypeError, RuntimeError, FileNotFoundError, KeyError) as exc:
        raise LoopError(f"cannot use the model {model!r}: {exc}") from None
    if built.num_classes != num_classes:
        raise LoopError(f"the model {model!r} has {built.num_classes} outputs but the class list has {num_classes}")
    return spec


def _out_for_labeling(state: Dict[str, Any]) -> List[str]:
    """Ids of selected batches that have no label yet (in batch order)."""
    labels = state["labels"]
    seen, out = set(), []
    for b in state["batches"]:
        for i in b["ids"]:
            if i not in labels and i not in seen:
                seen.add(i)
                out.append(i)
    return out


def _check_compatible(method: str, trained: str) -> None:
    """LoopError unless the models trained for ``trained`` can select with ``method``."""
    from ..strategies import get_strategy

    cls = get_strategy(trained)
    needs = {"tavaal": cls.adversarial == "rank", "vaal": cls.adversarial == "plain",
             "lloss": cls.ranker_loss is not None, "lloss2": cls.ranker_loss is not None,
             "mcdropout": cls.dropout}
    if not needs.get(method, True):
        raise LoopError(f"--method {method} needs models trained for it, but the newest cycle trained {trained!r}: "
                        f"run tavaal train WORKDIR --method {method} first")


def _draw_holdout(ids: List[str], holdout, seed: int) -> List[str]:
    """A seeded random part of ``ids`` held out of training: ``holdout`` is a count (int) or a
    fraction in [0, 1) (float; default :data:`DEFAULT_HOLDOUT`)."""
    if holdout is None:
        holdout = DEFAULT_HOLDOUT
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float, np.integer, np.floating)) or holdout < 0:
        raise LoopError(f"--holdout must be a count >= 0 or a fraction in [0, 1), got {holdout!r}")
    if isinstance(holdout, (float, np.floating)):
        if holdout >= 1:
            raise LoopError(f"--holdout as a fraction must be < 1 (give an integer for a count), got {holdout}")
        count = int(np.floor(holdout * len(ids)))
    else:
        count = int(holdout)
    if count > len(ids):
        raise LoopError(f"--holdout {count} is larger than the {len(ids)} labeled samples")
    if count == 0:
        return []
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x401D]))
    picks = rng.choice(len(ids), size=count, replace=False)
    return [ids[int(k)] for k in np.sort(picks)]


def _validate_entries(parsed: LabelFile, source, existing: Dict[str, str], classes: List[str],
                      add_classes: bool):
    """(canonical id -> label of the file's usable entries, problem lines). Problems: ids not in
    the pool, conflicting duplicates within the file, relabels that conflict with ``existing``,
    classes outside ``classes`` (unless ``add_classes``)."""
    problems: List[str] = []
    rows, canonical = backend.rows_for_ids(source, [e.id for e in parsed.entries])
    accepted: Dict[str, str] = {}
    first_seen: Dict[str, LabelEntry] = {}
    known = set(classes)
    for entry, row, ident in zip(parsed.entries, rows, canonical):
        if row is None:
            problems.append(f"{entry.where}: id {entry.id!r} is not in the pool")
            continue
        if entry.label not in known and not add_classes:
            problems.append(f"{entry.where}: {entry.id},{entry.label}: unknown class {entry.label!r} (classes: "
                            f"{', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}; --add-classes adds it)")
            continue
        previous = first_seen.get(ident)
        if previous is not None and previous.label != entry.label:
            problems.append(f"{entry.where}: id {ident!r} labeled {entry.label!r} but {previous.label!r} in "
                            f"{previous.where}")
            continue
        if ident in existing and existing[ident] != entry.label:
            problems.append(f"{entry.where}: id {ident!r} is already labeled {existing[ident]!r}; relabeling it "
                            f"{entry.label!r} conflicts")
            continue
        first_seen.setdefault(ident, entry)
        accepted[ident] = entry.label
    return accepted, problems


@torch.no_grad()
def _accuracy(task, dataset, rows: Sequence[int], classes: Sequence[int], config: RunConfig, device) -> float:
    """Top-1 accuracy of the task learner on the held-out labeled rows."""
    from ..training import predict

    task.eval()
    logits = predict(dataset, np.asarray(rows, dtype=np.int64), backbone=task.backbone, outputs=("logits",),
                     batch_size=config.score_batch_size, device=device)["logits"]
    return float((logits.argmax(1).numpy() == np.asarray(classes)).mean())
