"""``python -m benchmarks.validate`` (``make validate``): does each method beat random?

Evidence on bundled real data (scikit-learn's 8x8 digits, the ``digits`` preset: MLP task
learner trained for a fixed number of steps, MLP WAE), in two settings:

* ``balanced``: the digits training split as it is;
* ``imbalanced``: classes 0-4 of the training split cut to one tenth (seeded), classes 5-9
  whole; the test split stays balanced (as the paper's CIFAR-10 imbalanced setting).

Main table: every method of the registry (:mod:`tavaal.methods`) in the default comparison
(``Method.compare``: random, entropy, margin, least confidence, BADGE, core-set, Learning
Loss, VAAL, TA-VAAL; ``--methods`` names others, unregistered names are listed as skipped)
with ``--trials`` trials (5 by default). Per method:
AUBC with its 95% interval and the paired difference to random per cycle and in AUBC
(tavaal.stats; "better" only where the interval excludes 0).

Ablation table: TA-VAAL's rank normalisation and the documented paper-vs-code switches (r to
D raw or normalised, eval or train mode at scoring, D depth, latent size, the Ranker's joint
training and its detach fraction, WAE/D iterations per cycle, D's hold-out and plateau
stopping), with random and VAAL as references, on the
imbalanced setting. It is evaluated on a **validation split carved from the training set**
(a stratified quarter of it, taken out of the pool), never on the test split, so the default
rank normalisation can be picked from it.

Every (setting, configuration, method) has its own run directory under
``--out/runs/`` named by a hash of its configuration, so an interrupted benchmark resumes
where it stopped and a rerun only trains what is missing. Writes ``validate.md``,
``ablation.md``, ``validate_<setting>.csv``, ``ablation.csv`` and the accuracy/improvement
plots to ``--out`` (default ``benchmarks/results``), with the machine and the date.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


SETTINGS = {"balanced": 1.0, "imbalanced": 0.1}
"""setting -> fraction of classes 0-4 kept in the training pool."""
MINORITY_CLASSES = (0, 1, 2, 3, 4)
VALIDATION_FRACTION = 0.25

ABLATIONS: Dict[str, Dict] = {
    "default": {},
    "rank_norm=sigmoid (paper)": {"rank_norm": "sigmoid"},
    "rank_norm=raw": {"rank_norm": "raw"},
    "r to D raw (code B2)": {"disc_rank_input": "raw"},
    "code: sigmoid decoder + raw D": {"rank_norm": "sigmoid", "disc_rank_input": "raw"},
    "train mode at scoring (code B10)": {"score_mode": "train"},
    "D depth 3 (code)": {"disc_layers": 3},
    "latent size 32": {"latent_dim": 32},
    "latent size 8": {"latent_dim": 8},
    "Ranker joint (paper, detach 0.6)": {"ranker_mode": "joint"},
    "Ranker joint, detach 0.8 (Alg. 1)": {"ranker_mode": "joint", "ranker_detach_fraction": 0.8},
    "WAE/D iterations x0.5": {"wae_epochs": 3.0},
    "WAE/D iterations x2": {"wae_epochs": 12.0},
    "D held out 0.2 (fixed count)": {"disc_holdout": 0.2},
    "WAE/D until plateau (held out 0.2, cap x4)": {"disc_holdout": 0.2, "wae_stop": "plateau"},
}
"""TA-VAAL configurations of the ablation (RunConfig overrides on top of the digits recipe)."""

PROTOCOL = {"initial": 40, "budget": 40, "cycles": 6, "subset": 0}


def machine_info() -> Dict:
    """What the numbers were measured on: lscpu head, load, torch version, date."""
    import torch

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines()[:12]
    except (OSError, subprocess.SubprocessError):
        lscpu = []
    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan,) * 3
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "loadavg": [round(v, 2) for v in load], "lscpu": lscpu}


def digits_bundle(setting: str, seed: int = 0, validation: bool = False):
    """The digits bundle of ``setting``; with ``validation`` the test set is replaced by a
    stratified (balanced, like the test split) ``VALIDATION_FRACTION`` of the training split,
    taken out before the cut, so it never overlaps the pool or the test split.

    Classes 0-4 keep ``ceil(SETTINGS[setting] * n_c)`` seeded samples each. Raises KeyError
    for an unknown setting."""
    import torch

    from tavaal.data import ArrayDataset, DatasetBundle, load_dataset
    from tavaal.data.readers._common import stratified_split

    from tavaal.config import PRESETS

    fraction = SETTINGS[setting]
    base = load_dataset("digits", seed=seed, **PRESETS["digits"].get("dataset_options", {}))
    x, y = base.train.get_batch(None)
    y = y.numpy()
    candidates = np.arange(len(y))
    test = base.test
    test_targets = base.test_targets
    if validation:  # balanced like the test split: carved from the whole training split before the cut
        pool_pos, val = stratified_split(y, VALIDATION_FRACTION, seed + 7)
        candidates = candidates[pool_pos]
        test = ArrayDataset(x[torch.from_numpy(val)].contiguous(), y[val])
        test_targets = y[val]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 20260, int(fraction * 1000)]))
    keep = []
    for c in range(base.num_classes):
        rows = candidates[y[candidates] == c]
        if c in MINORITY_CLASSES and fraction < 1.0:
            rows = np.sort(rng.choice(rows, size=int(math.ceil(fraction * len(rows))), replace=False))
        keep.append(rows)
    keep = np.sort(np.concatenate(keep))
    train = ArrayDataset(x[torch.from_numpy(keep)].contiguous(), y[keep])
    name = f"digits-{setting}" + ("-validation" if validation else "")
    return DatasetBundle(name=name, train=train, test=test, num_classes=base.num_classes,
                         input_shape=base.input_shape, augment=base.augment, train_targets=y[keep],
                         mean=base.mean, std=base.std, test_targets=test_targets, classes=base.classes,
                         info={"setting": setting, "minority_fraction": fraction, "validation": validation})


def config_for(method: str, trials: int, overrides: Optional[Dict] = None, quick: bool = False):
    """The RunConfig of one run: the digits preset, the protocol (with the Ranker in probe mode and
    D's diagnostics recorded, as the package defaults), ``overrides``."""
    from tavaal.config import resolve_config

    values = dict(PROTOCOL, methods=[method], trials=trials, ranker_mode="probe", disc_diagnostics=True)
    if quick:
        values.update(cycles=3, steps=60, wae_iterations=20)
    values.update(overrides or {})
    return resolve_config("digits", values)


DATA_VERSION = 2
"""Bumped whenever digits_bundle changes, so stale run directories are not resumed."""


def run_dir_for(root: Path, group: str, method: str, config) -> Path:
    """``root/runs/group/<method>-<hash of the configuration and DATA_VERSION>``."""
    digest = hashlib.sha256((config.to_json() + f"data{DATA_VERSION}").encode()).hexdigest()[:10]
    return root / "runs" / group / f"{method}-{digest}"


def _run_one(job: Tuple[str, str, bool, Dict, str]) -> Tuple[str, List[Dict], float]:
    """Worker: run (or resume) one run directory; returns (dir, records, seconds)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from tavaal.config import RunConfig
    from tavaal.experiment import Experiment

    torch.set_num_threads(1)
    setting, out, validation, config_dict, label = job
    config = RunConfig.from_dict(config_dict)
    started = time.perf_counter()
    bundle = digits_bundle(setting, seed=config.seed, validation=validation)
    experiment = Experiment(config, Path(out), resume=(Path(out) / "config.json").exists(), progress=False,
                            bundle=bundle)
    records = experiment.run()
    return out, records, time.perf_counter() - started


def run_jobs(jobs: List[Tuple[str, str, bool, Dict, str]], workers: int) -> Dict[str, List[Dict]]:
    """Run the jobs (``workers`` processes; 1 = in this process); dir -> records."""
    results: Dict[str, List[Dict]] = {}
    if workers <= 1:
        for job in jobs:
            out, records, seconds = _run_one(job)
            print(f"  {job[4]:<42} {seconds:7.1f} s", flush=True)
            results[out] = records
        return results
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for job, (out, records, seconds) in zip(jobs, pool.map(_run_one, jobs)):
            print(f"  {job[4]:<42} {seconds:7.1f} s", flush=True)
            results[out] = records
    return results


def _pct(v, signed=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"


def _interval(row, prefix="diff", signed=True):
    return f"{_pct(row[prefix + '_mean'] if prefix == 'diff' else row['accuracy_mean'], signed)} " \
           f"[{_pct(row[prefix + '_low'], signed)}, {_pct(row[prefix + '_high'], signed)}]"


def markdown_tables(rows: List[Dict], methods: Sequence[str], label: str = "method") -> List[str]:
    """AUBC table and per-cycle paired-difference table (markdown) from tavaal.stats rows."""
    aubc_rows = {r["method"]: r for r in rows if r["cycle"] == "AUBC"}
    cycle_rows = [r for r in rows if r["cycle"] != "AUBC"]
    sizes = sorted({r["labeled"] for r in cycle_rows})
    lines = [f"| {label} | trials | AUBC % [95% CI] | AUBC − random, points [95% CI] | verdict |",
             "|---|---:|---:|---:|---|"]
    for m in methods:
        r = aubc_rows.get(m)
        if r is None:
            continue
        diff = "(baseline)" if r["verdict"] == "baseline" else _interval(r)
        lines.append(f"| {m} | {r['trials']} | {_interval(r, 'accuracy', False)} | {diff} | "
                     f"{'' if r['verdict'] == 'baseline' else r['verdict']} |")
    lines += ["", "Accuracy − random per labeled-set size (points, paired over trials, 95% CI; "
                  "**bold**: interval excludes 0):", "",
              f"| {label} | " + " | ".join(str(s) for s in sizes) + " |",
              "|---|" + "---:|" * len(sizes)]
    by = {(r["method"], r["labeled"]): r for r in cycle_rows}
    for m in methods:
        cells = []
        for s in sizes:
            r = by.get((m, s))
            if r is None:
                cells.append("")
            elif r["verdict"] == "baseline":
                cells.append(f"{_pct(r['accuracy_mean'])}%")
            else:
                text = _interval(r)
                cells.append(f"**{text}**" if r["verdict"] in ("better", "worse") else text)
        if any(cells):
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def machine_lines(info: Dict, seconds: float, command: str) -> List[str]:
    return [f"Measured {info['date']} on {info['platform']} ({info['cpus']} CPUs, load average at the end "
            f"{info['loadavg']}), Python {info['python']}, torch {info['torch']}; wall time {seconds:.0f} s.",
            f"Command: `{command}`", "", "```", *info["lscpu"], "```", ""]


def write_report(out: Path, name: str, lines: List[str], rows: Optional[List[Dict]] = None) -> None:
    """Write ``OUT/NAME.md`` (the report lines) and, given ``rows``, ``OUT/NAME.csv``; print the lines."""
    if rows:
        with open(out / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results", help="where tables, plots and runs/ go")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--ablation-trials", type=int, default=5)
    parser.add_argument("--only", choices=["main", "ablation"], help="run one of the two tables")
    parser.add_argument("--methods", help="comma-separated subset of the main table's methods")
    parser.add_argument("--settings", default="balanced,imbalanced")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    parser.add_argument("--quick", action="store_true", help="3 cycles, short training (a smoke run)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from tavaal.methods import method_names, registered_methods
    from tavaal.stats import summarize, write_summary

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",")]
    else:
        wanted = [m.name for m in registered_methods() if m.compare]
    methods = [m for m in wanted if m in method_names()]
    skipped = [m for m in wanted if m not in method_names()]
    if "random" not in methods:
        methods.insert(0, "random")
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    print(f"validate: methods {', '.join(methods)}" + (f"; skipped (not registered): {', '.join(skipped)}"
                                                       if skipped else ""), flush=True)
    command = "python -m benchmarks.validate " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()

    if args.only != "ablation":
        jobs, where = [], {}
        for setting in settings:
            for method in methods:
                config = config_for(method, args.trials, quick=args.quick)
                path = run_dir_for(out, setting, method, config)
                jobs.append((setting, str(path), False, config.to_dict(), f"{setting}/{method}"))
                where[(setting, method)] = str(path)
        print(f"main table: {len(jobs)} runs ({args.trials} trials each)", flush=True)
        results = run_jobs(jobs, args.jobs)
        info = machine_info()
        lines = ["# Does it beat random? digits, paired comparisons over trials", "",
                 *machine_lines(info, time.perf_counter() - started, command),
                 f"Protocol: the `digits` preset (MLP task learner, {config.steps} Adam steps per cycle, cosine "
                 f"schedule; MLP WAE), initial {config.initial}, +{config.budget} per cycle, {config.cycles} "
                 f"cycles, {args.trials} trials; common random numbers (same initial set, cycle-0 models and "
                 "seeds for every method of a trial). AUBC: trapezoid of accuracy over labeled count divided by "
                 "the labeled range. Verdict 'better'/'worse' only where the 95% Student-t interval of the "
                 "paired difference excludes 0.", ""]
        if skipped:
            lines += [f"Skipped (not registered in this build): {', '.join(skipped)}.", ""]
        from tavaal.plots import plot_accuracy

        for setting in settings:
            records = [r for m in methods for r in results[where[(setting, m)]]]
            rows = summarize(records, methods=methods)
            write_summary(out / f"validate_{setting}.csv", rows)
            plot_dir = out / f"validate_{setting}"
            plot_dir.mkdir(exist_ok=True)
            plot_accuracy(records, plot_dir, title=f"digits, {setting}")
            what = ("training split as is" if SETTINGS[setting] == 1.0 else
                    f"classes 0-4 cut to {SETTINGS[setting]:g} of the training split; balanced test split")
            lines += [f"## {setting} ({what}; pool {len(digits_bundle(setting).train)}, "
                      f"test {len(digits_bundle(setting).test)})", ""]
            lines += markdown_tables(rows, methods) + ["",
                                                       f"Plots: `validate_{setting}/accuracy.png`, "
                                                       f"`validate_{setting}/improvement.png`.", ""]
        write_report(out, "validate", lines)

    if args.only != "main":
        ablation_started = time.perf_counter()
        setting = "imbalanced"
        jobs, where = [], {}
        for label, overrides in [("random", {}), ("vaal", {})] + [(k, v) for k, v in ABLATIONS.items()]:
            method = label if label in ("random", "vaal") else "tavaal"
            config = config_for(method, args.ablation_trials, overrides if method == "tavaal" else None,
                                quick=args.quick)
            path = run_dir_for(out, "ablation-" + setting, method, config)
            jobs.append((setting, str(path), True, config.to_dict(), f"ablation/{label}"))
            where[label] = str(path)
        print(f"ablation: {len(jobs)} runs ({args.ablation_trials} trials each), validation split", flush=True)
        results = run_jobs(jobs, args.jobs)
        records = []
        for label, path in where.items():
            for r in results[path]:
                records.append(dict(r, method="random" if label == "random" else label))
        labels = list(where)
        rows = summarize(records, methods=labels)
        write_summary(out / "ablation.csv", rows)
        info = machine_info()
        aubc = {r["method"]: r for r in rows if r["cycle"] == "AUBC"}
        norms = {k: aubc[k]["accuracy_mean"] for k in ("default", "rank_norm=sigmoid (paper)", "rank_norm=raw")
                 if k in aubc}
        lines = ["# TA-VAAL ablation: rank normalisation and paper-vs-code switches", "",
                 *machine_lines(info, time.perf_counter() - ablation_started, command),
                 f"Data: digits, imbalanced setting, evaluated on a balanced validation split ({VALIDATION_FRACTION:g} "
                 "of the training split, stratified, taken out before classes 0-4 are cut) - never on the test "
                 "split. 'default' is "
                 "TA-VAAL with the package defaults (rank_norm=standardized, normalised r to D, eval mode at "
                 "scoring, D depth 5, latent 16, Ranker probe mode: it never trains the backbone); each other row "
                 "changes one setting. "
                 "Differences are paired with random over trials.", ""]
        lines += markdown_tables(rows, labels, label="configuration")
        versus = {r["method"]: r for r in summarize(records, baseline="default", methods=labels)
                  if r["cycle"] == "AUBC"}
        lines += ["", "Which switches matter: AUBC of each configuration − the default TA-VAAL, paired over trials "
                      "(points, 95% CI):", "", "| configuration | AUBC − default [95% CI] | verdict |", "|---|---:|---|"]
        for label in labels:
            r = versus.get(label)
            if r is not None and r["verdict"] != "baseline":
                lines.append(f"| {label} | {_interval(r)} | {r['verdict']} |")
        lines += ["", "'train mode at scoring' cannot differ here: the digits recipe's MLP WAE and discriminator "
                      "have no BatchNorm or dropout (it matters for the conv WAE of the image presets)."]
        if norms:
            best = max(norms, key=norms.get)
            lines += ["", "Rank normalisation by validation AUBC: " + ", ".join(
                f"{k}: {100 * v:.2f}" for k, v in norms.items()) + f" -> best: {best}."]
        write_report(out, "ablation", lines)
    print(f"validate finished in {time.perf_counter() - started:.0f} s; tables in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
