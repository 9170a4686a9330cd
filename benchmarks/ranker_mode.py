"""``python -m benchmarks.ranker_mode``: what the Ranker's joint training costs or gains.

The Ranker-trained methods (Learning Loss, TA-VAAL) train the task learner with
``L_T + eta L_R``; in ``ranker_mode`` "joint" (the paper) the ranking loss reaches the backbone
until the detach fraction, in "probe" it never does (the learner is random's own under common
random numbers). A method's accuracy curve then mixes two effects, separated here:

* **pick effect**: every labeled set a method picked (each trial, each cycle) is retrained with
  the *plain* learner (random's: cross-entropy only, the same seed) and evaluated; the paired
  difference to random measures the picks alone;
* **learner effect**: the method's own accuracy minus the plain learner's on the same labeled
  set (0 by construction for "probe").

Data: the digits recipe of ``benchmarks/validate.py`` on both settings, evaluated on the
**validation split** carved from the training set (never the test split). Each run has its own
resumable run directory under ``--out/runs/ranker-mode-<setting>/``. Writes
``ablation-ranker-mode.md`` and ``ablation-ranker-mode.csv`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from benchmarks.validate import (config_for, digits_bundle, machine_info, machine_lines, run_dir_for, run_jobs,
                                write_report)

METHODS = ("lloss", "tavaal")
MODES = ("joint", "probe")


def _plain_accuracies(job: Tuple[str, str, Dict]) -> Tuple[str, Dict[Tuple[int, int], float]]:
    """Worker: (trial, cycle) -> validation accuracy of the plain learner (random's) trained on
    the labeled set the run in ``out`` held at that cycle."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from tavaal.config import RunConfig
    from tavaal.cycle import cycle_seed
    from tavaal.training import build_task_models, evaluate_task, train_task_models

    torch.set_num_threads(1)
    setting, out, config_dict = job
    config = RunConfig.from_dict(config_dict)
    bundle = digits_bundle(setting, seed=config.seed, validation=True)
    method = config.methods[0]
    result = {}
    for trial in range(config.trials):
        for cycle in range(config.cycles):
            path = Path(out) / method / f"trial_{trial}" / f"labeled_cycle_{cycle:02d}.json"
            labeled = np.asarray(json.loads(path.read_text()), dtype=np.int64)
            seed = cycle_seed(config, trial, cycle)
            torch.manual_seed(seed)  # as tavaal.cycle.train_cycle before the task learner is built
            models = build_task_models(config, bundle.input_shape, bundle.num_classes, with_ranker=False)
            train_task_models(models, bundle.train, labeled, config, ranker_loss=None, augment=bundle.augment,
                              seed=seed)
            result[(trial, cycle)] = evaluate_task(models.backbone, bundle.test, bundle.num_classes)["accuracy"]
    return out, result


def _paired(values: List[float]) -> str:
    from tavaal.stats import t_interval, verdict

    iv = t_interval(values)
    text = f"{100 * iv.mean:+.1f} [{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]"
    return f"**{text}**" if verdict(iv) != "n.s." else text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ranker_mode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--settings", default="balanced,imbalanced")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 cycles, short training (a smoke run)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from tavaal.stats import aubc

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    command = "python -m benchmarks.ranker_mode " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    runs = [("random", "joint")] + [(m, mode) for m in METHODS for mode in MODES]
    jobs, where, configs = [], {}, {}
    for setting in settings:
        for method, mode in runs:
            config = config_for(method, args.trials, {"ranker_mode": mode}, quick=args.quick)
            path = run_dir_for(out, f"ranker-mode-{setting}", method, config)
            jobs.append((setting, str(path), True, config.to_dict(), f"{setting}/{method}/{mode}"))
            where[(setting, method, mode)] = str(path)
            configs[str(path)] = config.to_dict()
    print(f"ranker mode: {len(jobs)} runs ({args.trials} trials each), validation split", flush=True)
    records = run_jobs(jobs, args.jobs)
    plain_jobs = [(setting, where[(setting, m, mode)], configs[where[(setting, m, mode)]])
                  for setting in settings for m, mode in runs]
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1), mp_context=multiprocessing.get_context("spawn")) as pool:
        plain = dict(pool.map(_plain_accuracies, plain_jobs))

    lines = ["# Ranker mode: the learner effect and the pick effect (validation split)", "",
             *machine_lines(machine_info(), time.perf_counter() - started, command),
             f"Protocol: the digits recipe of `benchmarks/validate.py` (initial {config.initial}, +{config.budget} "
             f"per cycle, {config.cycles} cycles, {args.trials} trials, common random numbers), evaluated on the balanced validation split carved from "
             "the training split (never the test split). 'own': the method's accuracy with its own learner; "
             "'pick': its labeled sets retrained with the plain learner (random's: cross-entropy only, same seed); "
             "'learner' = own − pick on the same labeled sets. Points, mean over trials [95% t-interval]; "
             "**bold**: the interval excludes 0.", ""]
    rows_csv = []
    for setting in settings:
        rand = {(r["trial"], r["cycle"]): r for r in records[where[(setting, "random", "joint")]]}
        check = plain[where[(setting, "random", "joint")]]
        mismatch = max(abs(check[k] - rand[k]["accuracy"]) for k in rand)
        lines += [f"## {setting}", "",
                  f"(check: the plain learner retrained on random's sets reproduces random's accuracy to "
                  f"{mismatch:.1e}.)", "",
                  "| method | mode | cycle-0 own − random | AUBC own − random | AUBC pick − random | "
                  "AUBC learner (own − pick) |", "|---|---|---:|---:|---:|---:|"]
        for method in METHODS:
            for mode in MODES:
                path = where[(setting, method, mode)]
                own = {(r["trial"], r["cycle"]): r for r in records[path]}
                picks = plain[path]
                trials = sorted({t for t, _ in own})
                c0, total, pick, learner = [], [], [], []
                for t in trials:
                    cycles = sorted(c for tt, c in own if tt == t)
                    sizes = [own[(t, c)]["labeled"] for c in cycles]
                    a_own = aubc(sizes, [own[(t, c)]["accuracy"] for c in cycles])
                    a_pick = aubc(sizes, [picks[(t, c)] for c in cycles])
                    a_rand = aubc([rand[(t, c)]["labeled"] for c in cycles], [rand[(t, c)]["accuracy"] for c in cycles])
                    c0.append(own[(t, 0)]["accuracy"] - rand[(t, 0)]["accuracy"])
                    total.append(a_own - a_rand)
                    pick.append(a_pick - a_rand)
                    learner.append(a_own - a_pick)
                    for c in cycles:
                        rows_csv.append({"setting": setting, "method": method, "ranker_mode": mode, "trial": t,
                                         "cycle": c, "labeled": own[(t, c)]["labeled"],
                                         "accuracy_own": own[(t, c)]["accuracy"], "accuracy_pick": picks[(t, c)],
                                         "accuracy_random": rand[(t, c)]["accuracy"]})
                lines.append(f"| {method} | {mode} | {_paired(c0)} | {_paired(total)} | {_paired(pick)} | "
                             f"{_paired(learner)} |")
        lines.append("")
    write_report(out, "ablation-ranker-mode", lines, rows_csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
