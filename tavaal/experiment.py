"""Active-learning cycles: train, select, record, repeat — for several methods and trials.

Each (method, trial, cycle) re-seeds every random number generator from
``(seed, trial, cycle, method)``, so a resumed run repeats exactly what an uninterrupted one
does. The initial labeled set depends on (seed, trial) only: every method of a trial starts
from the same samples. The trial's ``state.json`` is written last in each cycle and is the
commit point: an interruption anywhere loses at most the cycle in progress.
"""
from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .config import RunConfig
from .data import DatasetBundle, Pool, load_dataset
from .rundir import RunDirectory, read_json, save_torch, write_json
from .strategies import SelectionContext, get_strategy
from .training import (build_adversarial_models, build_task_models, evaluate_accuracy,
                       train_adversarial_models, train_task_models)

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


class RunExistsError(FileExistsError):
    """The output directory already holds a run and --resume was not given."""


def cycle_seed(config: RunConfig, method: str, trial: int, cycle: int) -> int:
    """Seed of one (method, trial, cycle), stable across processes and Python versions."""
    sequence = np.random.SeedSequence([config.seed, trial, cycle, zlib.crc32(method.encode())])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def initial_pool(config: RunConfig, num_samples: int, trial: int) -> Pool:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, trial]))
    return Pool.initial(num_samples, config.initial, rng)


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def check_pool_size(config: RunConfig, num_samples: int) -> None:
    needed = config.initial + config.cycles * config.budget
    if needed > num_samples:
        raise ValueError(f"{config.cycles} cycles of --budget {config.budget} after --initial {config.initial} "
                         f"need {needed} samples but the training set has {num_samples}: lower --cycles, "
                         "--budget or --initial")


def model_spec(config: RunConfig, bundle: DatasetBundle, strategy_cls) -> dict:
    """What is needed to rebuild the models of a checkpoint (export reads it)."""
    return {
        "format": CHECKPOINT_FORMAT, "dataset": bundle.name, "input_shape": list(bundle.input_shape),
        "num_classes": int(bundle.num_classes), "arch": config.arch, "width": config.width,
"ranker_interm_dim": config.ranker_interm_dim,
        "dropout": config.mc_dropout if strategy_cls.dropout else 0.0,
        "with_ranker": strategy_cls.ranker_loss is not None or config.ranker_for_all,
        "adversarial": strategy_cls.adversarial, "latent_dim": config.latent_dim, "wae_width": config.wae_width,
        "disc_hidden": config.disc_hidden, "disc_layers": config.disc_layers,
        "rank_mode": config.disc_rank_input,
        "mean": None if bundle.mean is None else [float(v) for v in np.atleast_1d(bundle.mean)],
        "std": None if bundle.std is None else [float(v) for v in np.atleast_1d(bundle.std)],
    }


@dataclass
class CycleResult:
    record: Dict
    labeled: np.ndarray
    selected: np.ndarray


class Experiment:
    """Runs ``config.methods`` x ``config.trials`` x ``config.cycles`` into a run directory."""

    def __init__(self, config: RunConfig, out: Path, *, resume: bool = False, progress: bool = True,
                 bundle: Optional[DatasetBundle] = None,
                 on_cycle_end: Optional[Callable[[Dict], None]] = None):
        self.run_dir = RunDirectory(out)
        if self.run_dir.config_path.exists():
            if not resume:
                raise RunExistsError(f"{out} already holds a run: pass --resume to continue it, "
                                     "or choose another --out")
            saved = RunConfig.from_dict(read_json(self.run_dir.config_path))
            if saved.to_dict() != config.to_dict():
                changed = sorted(k for k, v in config.to_dict().items() if saved.to_dict().get(k) != v)
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
        check_pool_size(config, len(self.bundle.train))
        self.device = torch.device(config.device)

    def run(self) -> List[Dict]:
        """Run (or finish) every method and trial; returns all metric records."""
        write_json(self.run_dir.config_path, self.config.to_dict())
        threads = torch.get_num_threads()
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        try:
            for trial in range(self.config.trials):
                for method in self.config.methods:
                    self.run_trial(method, trial)
        finally:
            torch.set_num_threads(threads)
        return self.run_dir.all_records(self.config.methods, self.config.trials)

    def run_trial(self, method: str, trial: int) -> None:
        config, run_dir = self.config, self.run_dir
        state = run_dir.load_state(method, trial)
        if state is None:
            pool = initial_pool(config, len(self.bundle.train), trial)
            state = {"method": method, "trial": trial, "completed_cycles": 0, "pool": pool.state_dict(), "records": []}
        pool = Pool.from_state_dict(state["pool"])
        for cycle in range(state["completed_cycles"], config.cycles):
            result = self.run_cycle(method, trial, cycle, pool)
            trial_dir = run_dir.trial_dir(method, trial)
            write_json(trial_dir / f"labeled_cycle_{cycle:02d}.json", result.labeled.tolist())
            write_json(trial_dir / f"selected_cycle_{cycle:02d}.json", result.selected.tolist())
            pool = pool.label(result.selected)
            state = {"method": method, "trial": trial, "completed_cycles": cycle + 1, "pool": pool.state_dict(),
                     "records": state["records"] + [result.record]}
            write_json(run_dir.state_path(method, trial), state)  # commit point of the cycle
            run_dir.write_metrics(run_dir.all_records(config.methods, config.trials))
            log.info("%s trial %d cycle %d: %d labeled, accuracy %.4f", method, trial, cycle,
                     result.record["labeled"], result.record["accuracy"])
            if self.on_cycle_end is not None:
                self.on_cycle_end(result.record)

    def run_cycle(self, method: str, trial: int, cycle: int, pool: Pool) -> CycleResult:
        config, bundle, device = self.config, self.bundle, self.device
        strategy_cls = get_strategy(method)
        seed = cycle_seed(config, method, trial, cycle)
        rng = seed_everything(seed)
        with_ranker = strategy_cls.ranker_loss is not None or config.ranker_for_all
        ranker_loss = strategy_cls.ranker_loss or ("ranking" if config.ranker_for_all else None)
        task = build_task_models(config, bundle.input_shape, bundle.num_classes, with_ranker=with_ranker,
                                 dropout=config.mc_dropout if strategy_cls.dropout else 0.0)
        checkpoint_path = self.run_dir.checkpoint_path(method, trial, cycle - 1, config.keep_checkpoints)
        if not config.fresh_model_each_cycle and cycle > 0:
            task.load_state_dict(torch.load(checkpoint_path, map_location="cpu", weights_only=True)["task"])

        started = time.perf_counter()
        train_task_models(task, bundle.train, pool.labeled, config, ranker_loss=ranker_loss, augment=bundle.augment,
                          seed=seed, device=device, progress=self.progress)
        train_seconds = time.perf_counter() - started
        accuracy = evaluate_accuracy(task.backbone, bundle.test, batch_size=config.score_batch_size, device=device)

        context = SelectionContext(config=config, dataset=bundle.train, task=task, rng=rng, device=str(device))
        strategy = strategy_cls(context)
        candidates = strategy.candidates(pool)
        adversarial_seconds = 0.0
        if strategy_cls.adversarial is not None:
            started = time.perf_counter()
            adversarial = build_adversarial_models(config, bundle.input_shape,
                                                   rank_conditioned=strategy_cls.adversarial == "rank")
            train_adversarial_models(adversarial, bundle.train, pool.labeled, candidates, config, task=task,
                                     augment=bundle.augment, seed=seed, device=device, progress=self.progress)
            context.adversarial = adversarial
            adversarial_seconds = time.perf_counter() - started

        started = time.perf_counter()
        selected = strategy.select(pool, config.budget, candidates)
        selection_seconds = time.perf_counter() - started

        checkpoint = {"format": CHECKPOINT_FORMAT, "spec": model_spec(config, bundle, strategy_cls),
                      "method": method, "trial": trial, "cycle": cycle, "task": task.state_dict(),
                      "adversarial": None if context.adversarial is None else context.adversarial.state_dict()}
        save_torch(self.run_dir.checkpoint_path(method, trial, cycle, config.keep_checkpoints), checkpoint)
        record = {"method": method, "trial": trial, "cycle": cycle, "labeled": int(len(pool.labeled)),
                  "accuracy": float(accuracy), "selected": int(len(selected)),
                  "selection_seconds": round(selection_seconds, 6), "train_seconds": round(train_seconds, 3),
                  "adversarial_seconds": round(adversarial_seconds, 3), "seed": seed}
        return CycleResult(record, pool.labeled.copy(), np.asarray(selected, dtype=np.int64))


def run_experiment(config: RunConfig, out, **kwargs) -> List[Dict]:
    """Convenience wrapper: ``Experiment(config, out, **kwargs).run()``."""
    return Experiment(config, Path(out), **kwargs).run()
