"""Active-learning cycles: train, select, record, repeat — for several methods and trials.

Common random numbers: within a trial every method is measured under the same randomness,
so differences between methods are differences of selection, not of training noise.

* The initial labeled set depends on (seed, trial) only: every method starts from it.
* A cycle's seed (:func:`tavaal.cycle.cycle_seed`) depends on (seed, trial, cycle), not on the
  method: model initialisation, batch order and the candidate subset are the same for every
  method, so two methods that hold the same labeled set train the same model (bit for bit on CPU).
* Cycle 0 is trained once per (trial, task learner: ``Method.training(config).key``) and shared:
  the first method that needs it trains it and stores it in ``RUN_DIR/shared/trial_<t>/``; the
  others load it. Methods with the same learner (e.g. random, entropy, core-set: a plain
  classifier) therefore report identical cycle-0 accuracies; methods with another learner (a
  Ranker trained with the ranking or margin loss, MC-dropout) share among themselves.
* After task training the torch generator is re-seeded from the cycle seed, so the WAE /
  discriminator and the selection see the same random stream whether the task models were
  trained or loaded.

Everything is re-seeded per cycle, so a resumed run repeats exactly what an uninterrupted
one does. The trial's ``state.json`` is written last in each cycle and is the commit point:
an interruption anywhere loses at most the cycle in progress.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .checkpoint import save_cycle_models
from .config import RunConfig
from .cycle import CycleData, cycle_seed, select_batch, torch_threads, train_cycle
from .data import DatasetBundle, Pool, check_budget, load_dataset
from .methods import check_dense, get_method
from .metrics import metric_record, write_per_class_iou
from .rundir import RunDirectory, read_json, save_torch, write_json
from .training import evaluate_task

log = logging.getLogger(__name__)


class RunExistsError(FileExistsError):
    """The output directory already holds a run and --resume was not given."""


def initial_pool(config: RunConfig, num_samples: int, trial: int) -> Pool:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, trial]))
    return Pool.initial(num_samples, config.initial, rng)


@dataclass
class CycleResult:
    record: Dict
    labeled: np.ndarray
    selected: np.ndarray


class Experiment:
    """Runs ``config.methods`` x ``config.trials`` x ``config.cycles`` into a run directory."""

    def __init__(self, config: RunConfig, out: Path, *, resume: bool = False, progress: bool = True,
                 bundle: Optional[DatasetBundle] = None,
                 on_cycle_end: Optional[Callable[[Dict], None]] = None, user_model: Optional[Dict] = None):
        # user_model: a tavaal.models.resolve_model spec (bring your own task model), None = config.arch
        self.user_model = user_model
        self.run_dir = RunDirectory(out)
        if self.run_dir.config_path.exists():
            if not resume:
                raise RunExistsError(f"{out} already holds a run: pass --resume to continue it, "
                                     "or choose another --out")
            saved = RunConfig.from_dict(read_json(self.run_dir.config_path))
            changed = sorted(k for k, v in config.to_dict().items() if getattr(saved, k) != v)
            if changed:
                log.warning("resuming with the saved configuration of %s; ignoring changed settings %s", out, changed)
            config = saved
        elif resume:
            log.warning("nothing to resume in %s: starting a new run", out)
        config.validate()
        self.config = config
        self.progress = progress
        self.on_cycle_end = on_cycle_end
        self.bundle = bundle if bundle is not None else load_dataset(
            config.dataset, config.data_dir, seed=config.seed, **config.dataset_options)
        if self.bundle.task == "segmentation":
            check_dense(config.methods)
        needed = config.initial + config.cycles * config.budget
        if needed > len(self.bundle.train):
            raise ValueError(f"{config.cycles} cycles of --budget {config.budget} after --initial {config.initial} "
                             f"need {needed} samples but the training set has {len(self.bundle.train)}: lower "
                             "--cycles, --budget or --initial")
        self.device = torch.device(config.device)
        self.train_source = self.bundle.train_source  # the rows the cycle trains on and selects from

    def run(self) -> List[Dict]:
        """Run (or finish) every method and trial; returns all metric records."""
        write_json(self.run_dir.config_path, self.config.to_dict())
        for trial in range(self.config.trials):
            for method in self.config.methods:
                self.run_trial(method, trial)
        return self.run_dir.all_records(self.config.methods, self.config.trials)

    def run_trial(self, method: str, trial: int) -> None:
        """Run (or finish) the cycles of one method and trial, on ``config.num_threads`` threads."""
        config, run_dir = self.config, self.run_dir
        state = run_dir.load_state(method, trial)
        if state is None:
            pool = initial_pool(config, len(self.bundle.train), trial)
            state = {"method": method, "trial": trial, "completed_cycles": 0, "pool": pool.state_dict(), "records": []}
        pool = Pool.from_state_dict(state["pool"])
        with torch_threads(config.num_threads):
            for cycle in range(state["completed_cycles"], config.cycles):
                result = self.run_cycle(method, trial, cycle, pool)
                trial_dir = run_dir.trial_dir(method, trial)
                write_json(trial_dir / f"labeled_cycle_{cycle:02d}.json", result.labeled.tolist())
                write_json(trial_dir / f"selected_cycle_{cycle:02d}.json", result.selected.tolist())
                pool = pool.label(result.selected)
                state = dict(state, completed_cycles=cycle + 1, pool=pool.state_dict(),
                             records=state["records"] + [result.record])
                write_json(run_dir.state_path(method, trial), state)  # commit point of the cycle
                records = run_dir.all_records(config.methods, config.trials)
                run_dir.write_metrics(records)
                write_per_class_iou(run_dir.root / "per_class_iou.csv", records, self.bundle.classes)
                log.info("%s trial %d cycle %d: %d labeled, accuracy %.4f", method, trial, cycle,
                         result.record["labeled"], result.record["accuracy"])
                if self.on_cycle_end is not None:
                    self.on_cycle_end(result.record)

    def run_cycle(self, method: str, trial: int, cycle: int, pool: Pool) -> CycleResult:
        """One simulated cycle: the labeling loop's :func:`tavaal.cycle.train_cycle` and
        :func:`tavaal.cycle.select_batch` on the bundle's training set (the oracle: every label is
        in ``bundle.train``, only the labeled rows' are read), plus what only the simulation does:
        the shared cycle-0 task models, the test-set evaluation, the checkpoint and the record."""
        config, bundle, device = self.config, self.bundle, self.device
        seed = cycle_seed(config, trial, cycle)
        init_state = None
        if not config.fresh_model_each_cycle and cycle > 0:
            checkpoint_path = self.run_dir.checkpoint_path(method, trial, cycle - 1, config.keep_checkpoints)
            init_state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["task"]

        key = get_method(method).training(config).key
        shared_path = self.run_dir.shared_task_path(trial, cycle, key)
        shared = self._load_shared_task(shared_path, pool) if cycle == 0 else None
        if shared is not None:
            init_state = shared["task"]
        evaluated: Dict = {}

        def evaluate(task) -> None:  # right after task training, before the re-seed
            evaluated["metrics"] = evaluate_task(task.backbone, bundle.test, bundle.num_classes,
                                                 batch_size=config.score_batch_size, device=device)
            if cycle == 0:
                evaluated["task"] = copy.deepcopy(task.state_dict())  # saved as the shared models

        data = CycleData(self.train_source, pool.labeled, None, bundle.num_classes, mean=bundle.mean, std=bundle.std,
                         augment=bundle.augment, name=bundle.name, view=bundle.train, view_task=bundle.task)
        trained = train_cycle(data, config, method, seed=seed, user_model=self.user_model, cycle=cycle, device=device,
                              progress=self.progress, init_state=init_state, train_task=shared is None,
                              after_task=evaluate)
        if shared is not None:
            metrics = shared.get("metrics") or {"accuracy": float(shared["accuracy"])}
            train_seconds = float(shared["train_seconds"])
        else:
            metrics, train_seconds = evaluated["metrics"], trained.seconds["task"]
            if cycle == 0:
                save_torch(shared_path, {"task": evaluated["task"], "metrics": metrics,
                                         "accuracy": metric_record(metrics)["accuracy"],
                                         "train_seconds": train_seconds, "learner": key,
                                         "labeled": pool.labeled.tolist()})

        candidates = trained.candidates if trained.candidates is not None else pool.unlabeled.copy()
        started = time.perf_counter()
        check_budget(config.budget, len(candidates),
                     what="unlabeled candidates (raise --subset, or 0 for the whole pool)")
        if len(candidates) == config.budget:  # every candidate is picked: nothing to score
            selected = candidates.copy()
        else:
            selected = select_batch(trained.models, self.train_source, config.budget, method=method,
                                    labeled=pool.labeled, candidates=candidates, rng=trained.rng, config=config,
                                    batch_size=config.score_batch_size, device=str(device)).rows
        selection_seconds = time.perf_counter() - started

        save_cycle_models(self.run_dir.checkpoint_path(method, trial, cycle, config.keep_checkpoints),
                          replace(trained.models, method=method, trial=trial, cycle=cycle))
        record = {"method": method, "trial": trial, "cycle": cycle, "labeled": int(len(pool.labeled)),
                  **metric_record(metrics), "selected": int(len(selected)),
                  "selection_seconds": round(selection_seconds, 6), "train_seconds": round(train_seconds, 3),
                  "adversarial_seconds": round(trained.seconds.get("adversarial", 0.0), 3), "seed": seed,
                  "learner": key, "shared_task": shared is not None, **trained.diagnostics}
        return CycleResult(record, pool.labeled.copy(), np.asarray(selected, dtype=np.int64))

    @staticmethod
    def _load_shared_task(path: Path, pool: Pool) -> Optional[Dict]:
        """The shared cycle-0 task models at ``path`` if they were trained on ``pool.labeled``."""
        if not path.exists():
            return None
        shared = torch.load(path, map_location="cpu", weights_only=True)
        if sorted(shared["labeled"]) != sorted(int(i) for i in pool.labeled):
            log.warning("%s was trained on another labeled set: training again", path)
            return None
        return shared


def run_experiment(config: RunConfig, out, **kwargs) -> List[Dict]:
    """Convenience wrapper: ``Experiment(config, out, **kwargs).run()``."""
    return Experiment(config, Path(out), **kwargs).run()
