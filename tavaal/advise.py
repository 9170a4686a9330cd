"""``tavaal advise WORKDIR``: which selection method would have paid off on the labels you have?

A retrospective comparison inside a work directory's labeled set (docs/advise.md). The labeled
samples that are trained on become a small simulated pool whose labels are all known; the
work directory's held-out labels stay the test set. From a small seed, every method runs a few
active-learning cycles on that pool under common random numbers (the simulation of
:class:`tavaal.experiment.Experiment`, hence the one cycle of :mod:`tavaal.cycle` and the
method registry :mod:`tavaal.methods`), with the work directory's own task model and recipe.
The report gives per method the accuracy curve, the paired AUBC difference to random with its
95% interval and a verdict (:mod:`tavaal.stats`), the cost per cycle, D's separation where a
discriminator is trained, and one recommendation line. No unlabeled sample is read: there is
no label to read.

Sizes: :func:`plan_sizes`, with fewer cycles (down to 2) when :func:`trial_estimate` says three
trials would not fit ``max_minutes``. Trials: the first one measures what a trial costs; as many
more as fit ``max_minutes`` follow (at most ``trials``).

Writes ``WORKDIR/advice/``: ``advice.json`` (everything, with the one-line ``summary`` that
``tavaal status`` shows; ``methods`` in report order), ``advice.csv`` (:func:`tavaal.stats.write_summary` rows),
``advice.txt`` (the printed report), ``accuracy.png`` / ``improvement.png``
(:func:`tavaal.plots.plot_accuracy`) and ``run/`` (the simulation's run directory).
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import ArrayDataset, DatasetBundle
from .experiment import Experiment
from .loop import LoopError, Workdir, backend
from .loop.commands import run_cli
from .loop.holdout import holdout_ids
from .methods import get_method, registered_methods
from .plots import plot_accuracy
from .rundir import utc_now, write_json
from .stats import interval_text, summarize, write_summary
from .training.diagnostics import CHANCE_MARGIN, log as diagnostics_log

log = logging.getLogger(__name__)

__all__ = ["advise", "Advice", "plan_sizes", "trial_estimate", "retrospective_bundle", "recommendation",
           "default_methods", "main"]

POOL_FRACTION = 0.5
"""Share of the retrospective pool labeled by the end of the simulated cycles."""
DEFAULT_CYCLES = 4
DEFAULT_TRIALS = 5
DEFAULT_MINUTES = 10.0
TEST_FRACTION = 0.2
"""Without held-out labels, this stratified share of the labeled set becomes the test set."""


@dataclass
class Advice:
    """What :func:`advise` found (``advice.json`` holds the same): the protocol, per-method
    results, the recommendation and its one-line ``summary``."""

    summary: str
    recommendation: str
    methods: Dict[str, Dict]
    protocol: Dict
    warnings: List[str]
    report: str
    files: Dict[str, str]


def plan_sizes(pool: int, num_classes: int, cycles: int = DEFAULT_CYCLES) -> Dict[str, int]:
    """``{"initial", "budget", "cycles"}`` for a retrospective pool of ``pool`` labels: the seed
    and every batch hold ``floor(POOL_FRACTION * pool / (cycles + 1))`` labels (the seed at least
    ``num_classes`` when the pool allows). Raises ValueError when the pool cannot give every
    cycle at least one label."""
    if cycles < 2:
        raise ValueError(f"advise needs at least 2 cycles to draw a curve, got {cycles}")
    budget = int(POOL_FRACTION * pool) // (cycles + 1)
    if budget < 1:
        raise ValueError(f"{pool} labels are too few for {cycles} cycles: label more, or pass fewer --cycles")
    initial = max(budget, min(int(num_classes), pool - cycles * budget))
    return {"initial": int(initial), "budget": int(budget), "cycles": int(cycles)}


def _stratified_test(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions of a seeded stratified ``fraction`` of ``labels`` (at least one per class with
    two or more samples)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xAD71]))
    picks = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        if where.size >= 2:
            picks.append(rng.choice(where, size=max(1, int(round(fraction * where.size))), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.empty(0, np.int64)


def retrospective_bundle(wd: Workdir) -> DatasetBundle:
    """The work directory's labeled samples as a simulation data set: ``train`` = the labeled
    samples trained on (the retrospective pool), ``test`` = the held-out labels, audit samples
    included (without any: a stratified :data:`TEST_FRACTION` of the labeled set, noted in
    ``info["test"]``). Only labeled samples are read; samples whose file left the pool are left
    out. Raises :class:`LoopError` for segmentation work directories and unreadable samples."""
    if wd.task.name != "classification":
        raise LoopError("tavaal advise compares methods on classification work directories only")
    state = wd.state()
    classes = list(state["classes"])
    index_of = {c: k for k, c in enumerate(classes)}
    source = backend.open_pool(wd.meta["pool"], wd.root)
    ids = list(state["labels"])
    rows, _ = backend.rows_for_ids(source, ids)
    present = [(i, r) for i, r in zip(ids, rows) if r is not None]
    holdout = holdout_ids(wd.meta, state)  # the draw at init and the audit samples, as the loop counts them
    train = [(i, r) for i, r in present if i not in holdout]
    test = [(i, r) for i, r in present if i in holdout]
    note = f"{len(test)} held-out labels of the work directory"
    if not test:
        labels = np.asarray([index_of[state["labels"][i]] for i, _ in train])
        chosen = set(_stratified_test(labels, TEST_FRACTION, wd.config.seed).tolist())
        test = [p for k, p in enumerate(train) if k in chosen]
        train = [p for k, p in enumerate(train) if k not in chosen]
        note = (f"no held-out labels: a stratified {TEST_FRACTION:g} of the labeled set ({len(test)}) is the test "
                "set")
    if not test or len(train) < 4:
        raise LoopError(f"too few labels to advise ({len(train)} to simulate with, {len(test)} to test on): label more")
    mean, std = wd.meta.get("mean"), wd.meta.get("std")

    def load(pairs):
        pairs = sorted(pairs, key=lambda pair: pair[1])  # stable: in row order
        want = np.asarray([r for _, r in pairs], dtype=np.int64)
        try:
            x = source.read_rows(want)
        except backend.SourceError as exc:
            raise LoopError(f"cannot read the labeled samples: {exc}") from None
        if x.shape[0] != want.size:
            raise LoopError(f"{want.size - x.shape[0]} labeled sample(s) could not be decoded: "
                            f"{', '.join(map(str, getattr(source, 'skipped', [])[-5:]))}")
        y = np.asarray([index_of[state["labels"][i]] for i, _ in pairs], dtype=np.int64)
        if x.dtype == torch.uint8:
            return ArrayDataset(x.contiguous(), y, mean=mean, std=std), y
        return ArrayDataset(x.float().contiguous(), y), y

    train_set, train_y = load(train)
    test_set, test_y = load(test)
    return DatasetBundle(name="advice", train=train_set, test=test_set, num_classes=len(classes),
                         input_shape=tuple(int(s) for s in source.sample_shape), augment=None, train_targets=train_y,
                         mean=tuple(mean or ()), std=tuple(std or ()), test_targets=test_y, classes=tuple(classes),
                         info={"test": note})


def recommendation(results: Dict[str, Dict], labeled: int, baseline: str = "random") -> str:
    """The one recommendation line from per-method AUBC results (``diff``, ``low``, ``high``,
    ``verdict`` in accuracy units): the method with the largest AUBC gain among those whose
    interval lies above 0, then the methods not distinguishable from (or worse than) random;
    without any, the advice to label at random and ask again at twice ``labeled`` labels."""
    others = {m: r for m, r in results.items() if m != baseline}
    better = [m for m, r in others.items() if r["verdict"] == "better"]
    same = [m for m, r in others.items() if r["verdict"] == "n.s."]
    worse = [m for m, r in others.items() if r["verdict"] == "worse"]
    tail = ""
    if same:
        tail += f"; not distinguishable from {baseline}: {', '.join(same)}"
    if worse:
        tail += f"; worse than {baseline}: {', '.join(worse)}"
    if not better:
        return (f"no method beats {baseline} on these labels yet: label at {baseline} and advise again at "
                f"{2 * labeled} labels" + tail)
    best = max(better, key=lambda m: others[m]["diff"])
    r = others[best]
    rest = [m for m in better if m != best]
    also = f"; also better than {baseline}: {', '.join(rest)}" if rest else ""
    return (f"recommend {best}: {interval_text(r['diff'], r['low'], r['high'], signed=True)} AUBC points over "
            f"{baseline}" + also + tail)


def default_methods(workdir_method: str) -> List[str]:
    """random, the registry's default comparison set (``Method.compare``) and the work
    directory's own method."""
    names = ["random"] + [m.name for m in registered_methods() if m.compare and m.name != "random"]
    if workdir_method not in names:
        names.append(workdir_method)
    return names


def trial_estimate(wd: Workdir, methods: Sequence[str], pool: int, sizes: Dict[str, int]) -> Optional[float]:
    """Seconds one trial of ``methods`` should take, from the newest trained cycle of the work
    directory (its task-training and WAE/D seconds, scaled to the simulated sizes: by the labeled
    size when the recipe trains for epochs, by labeled + unlabeled rows for the WAE/D when its
    count follows the official rule); None before any cycle was trained."""
    cycles = [c for c in wd.state()["cycles"] if c.get("train_seconds") is not None]
    if not cycles:
        return None
    last, config = cycles[-1], wd.config
    trained_on = max(int(last["trained_on"]), 1)
    total = 0.0
    for k in range(sizes["cycles"]):
        labeled = sizes["initial"] + k * sizes["budget"]
        task = float(last["train_seconds"]) * (1.0 if config.steps else labeled / trained_on)
        rows = max(trained_on + int(last.get("unlabeled_subset") or 0), 1)
        adversarial = float(last.get("adversarial_seconds") or 0.0)
        adversarial *= 1.0 if config.wae_iterations is not None else pool / rows
        for name in methods:
            total += task + (adversarial if get_method(name).adversarial else 0.0)
    return total


def _method_results(rows: List[Dict], records: List[Dict], methods: Sequence[str]) -> Dict[str, Dict]:
    aubc = {r["method"]: r for r in rows if r["cycle"] == "AUBC"}
    results = {}
    for m in methods:
        mine = [r for r in records if r["method"] == m]
        curve = [{"labeled": r["labeled"], "accuracy": r["accuracy_mean"], "std": r["accuracy_std"],
                  "diff": r["diff_mean"], "low": r["diff_low"], "high": r["diff_high"]}
                 for r in rows if r["method"] == m and r["cycle"] != "AUBC"]
        seconds = [float(r.get("train_seconds", 0.0)) + float(r.get("adversarial_seconds", 0.0))
                   + float(r.get("selection_seconds", 0.0)) for r in mine]
        a = aubc[m]
        result = {"aubc": a["accuracy_mean"], "aubc_low": a["accuracy_low"], "aubc_high": a["accuracy_high"],
                  "diff": a["diff_mean"], "low": a["diff_low"], "high": a["diff_high"], "verdict": a["verdict"],
                  "trials": a["trials"], "seconds_per_cycle": float(np.mean(seconds)) if seconds else None,
                  "curve": curve}
        aucs = {}
        for r in mine:
            if r.get("disc_auc_train") is not None:
                aucs.setdefault(int(r["labeled"]), []).append((r["disc_auc_train"], r.get("disc_auc_heldout"),
                                                                r.get("disc_score_std")))
        if aucs:
            result["discriminator"] = [
                {"labeled": size, "auc_train": float(np.mean([v[0] for v in vals])),
                 "auc_heldout": (float(np.mean([v[1] for v in vals])) if all(v[1] is not None for v in vals)
                                 else None),
                 "score_std": float(np.mean([v[2] for v in vals]))} for size, vals in sorted(aucs.items())]
        results[m] = result
    return results


def _report(results: Dict[str, Dict], protocol: Dict, rec: str, warnings: List[str]) -> str:
    p = protocol
    lines = [f"retrospective comparison on {p['pool']} labels (test: {p['test_note']}); seed {p['initial']}, "
             f"+{p['budget']} per cycle, {p['cycles']} cycles, {p['trials']} trial(s), common random numbers",
             "",
             f"{'method':<10} {'AUBC %':>7}  {'AUBC - random, points [95% CI]':<32} {'verdict':<8} "
             f"{'s/cycle':>8}  accuracy % per labeled size"]
    for m, r in results.items():
        is_baseline = r["verdict"] == "baseline"
        diff = "(baseline)" if is_baseline else interval_text(r["diff"], r["low"], r["high"], signed=True)
        verdict = "" if is_baseline else r["verdict"]
        curve = " ".join(f"{c['labeled']}:{100 * c['accuracy']:.1f}" for c in r["curve"])
        cost = "-" if r["seconds_per_cycle"] is None else f"{r['seconds_per_cycle']:.1f}"
        lines.append(f"{m:<10} {100 * r['aubc']:>7.1f}  {diff:<32} {verdict:<8} {cost:>8}  {curve}")
    disc = {m: r["discriminator"] for m, r in results.items() if "discriminator" in r}
    if disc:
        lines += ["", "discriminator separation of labeled vs unlabeled (ROC AUC; 0.5 = none), per labeled size:"]
        for m, cycles in disc.items():
            cells = []
            for c in cycles:
                held = "" if c["auc_heldout"] is None else f"/{c['auc_heldout']:.2f}"
                cells.append(f"{c['labeled']}:{c['auc_train']:.2f}{held} (std {c['score_std']:.3f})")
            lines.append(f"  {m:<8} " + "  ".join(cells))
    lines += ["", *[f"warning: {w}" for w in warnings], rec]
    return "\n".join(lines)


def advise(workdir, *, methods: Optional[Sequence[str]] = None, trials: int = DEFAULT_TRIALS,
           max_minutes: float = DEFAULT_MINUTES, cycles: int = DEFAULT_CYCLES, device: Optional[str] = None,
           progress: bool = True) -> Advice:
    """Run the retrospective comparison of the module docstring on work directory ``workdir``
    and write ``WORKDIR/advice/`` (replacing an earlier advice). ``methods``: registered method
    names (random is always included, first); ``trials``: at most this many (>= 1); the first
    trial always completes, later ones start only while their estimated end stays within
    ``max_minutes``. Returns the :class:`Advice`. Raises :class:`LoopError` for unusable input."""
    started = time.perf_counter()
    wd = Workdir(workdir)
    config = wd.config
    names = list(dict.fromkeys(["random"] + list(methods))) if methods else default_methods(config.methods[0])
    for name in names:
        try:
            get_method(name)
        except ValueError as exc:
            raise LoopError(str(exc)) from None
    if trials < 1 or max_minutes <= 0:
        raise LoopError(f"--trials must be >= 1 and --max-minutes > 0, got {trials} and {max_minutes}")
    bundle = retrospective_bundle(wd)
    budget_s = 60.0 * max_minutes
    try:
        sizes = plan_sizes(len(bundle.train), bundle.num_classes, cycles)
        # fewer cycles when the work directory's own cycle times say 3 trials would not fit
        while sizes["cycles"] > 2 and 3 * (trial_estimate(wd, names, len(bundle.train), sizes) or 0.0) > budget_s:
            sizes = plan_sizes(len(bundle.train), bundle.num_classes, sizes["cycles"] - 1)
    except ValueError as exc:
        raise LoopError(str(exc)) from None
    # the work directory's recipe; the whole retrospective pool is the candidate set; D's
    # separation recorded (tavaal.training.diagnostics: changes no training)
    sim = replace(config, methods=names, trials=int(trials), subset=0, keep_checkpoints="last",
                              disc_diagnostics=True, dataset="advice", device=device or config.device, **sizes)
    sim.validate()
    out = wd.files.advice_dir
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    experiment = Experiment(sim, out / "run", progress=False, bundle=bundle, user_model=wd.meta.get("user_model"))
    write_json(experiment.run_dir.config_path, sim.to_dict())
    per_trial = len(names) * sim.cycles
    estimate = trial_estimate(wd, names, len(bundle.train), sizes)
    planned = sim.trials if estimate is None else min(sim.trials, max(1, int(budget_s // max(estimate, 1e-9))))
    bar = tqdm(total=per_trial * planned, desc="advise", unit="cycle", disable=not progress)
    experiment.on_cycle_end = lambda record: bar.update(1)
    trial_seconds: List[float] = []
    level = diagnostics_log.level
    diagnostics_log.setLevel(logging.ERROR)  # D's per-cycle warnings: summarised in the report instead
    try:
        for trial in range(sim.trials):
            if trial_seconds and time.perf_counter() - started + np.mean(trial_seconds) > budget_s:
                break
            t0 = time.perf_counter()
            for name in names:
                try:
                    experiment.run_trial(name, trial)
                except (ValueError, FloatingPointError) as exc:
                    raise LoopError(f"the simulation of {name} failed (trial {trial}): {exc}") from None
            trial_seconds.append(time.perf_counter() - t0)
            if trial == 0:  # the estimate: as many trials as fit
                fit = 1 + int(max(budget_s - (time.perf_counter() - started), 0.0) // trial_seconds[0])
                bar.total = per_trial * min(sim.trials, fit)
                bar.refresh()
    finally:
        diagnostics_log.setLevel(level)
        bar.close()
    done = len(trial_seconds)
    records = experiment.run_dir.all_records(names, done)
    rows = summarize(records, methods=names)
    results = _method_results(rows, records, names)
    warnings = []
    if done < 2:
        warnings.append(f"only {done} trial fit in --max-minutes {max_minutes:g} (one takes "
                        f"{trial_seconds[0] / 60:.1f} min): no interval; raise --max-minutes to at least "
                        f"{3 * trial_seconds[0] / 60:.0f} for 3 trials")
    for m, r in results.items():
        weak = [c for c in r.get("discriminator", []) if abs((c["auc_heldout"] if c["auc_heldout"] is not None
                                                                else c["auc_train"]) - 0.5) < CHANCE_MARGIN]
        if weak:
            warnings.append(f"{m}: the discriminator barely separates labeled from unlabeled at "
                            f"{', '.join(str(c['labeled']) for c in weak)} labels (AUC near 0.5): its picks are "
                            "close to random there")
    labeled = len(wd.state()["labels"])
    rec = recommendation(results, labeled)
    protocol = {**sizes, "trials": done, "methods": names, "pool": len(bundle.train), "test": len(bundle.test),
                "test_note": bundle.info["test"], "seconds": round(time.perf_counter() - started, 1),
                "max_minutes": max_minutes, "recipe": {k: getattr(sim, k) for k in ("arch", "steps", "epochs",
                                                                                    "ranker_mode", "wae_epochs")}}
    report = _report(results, protocol, rec, warnings)
    write_summary(out / "advice.csv", rows)
    files = {"json": str(wd.files.advice_path), "csv": str(out / "advice.csv"), "text": str(out / "advice.txt"),
             "plots": [str(p) for p in plot_accuracy(records, out, title=f"advice on {labeled} labels")],
             "run": str(out / "run")}
    created = utc_now()
    summary = f"{rec} ({created}, {labeled} labels, {done} trial(s))"
    (out / "advice.txt").write_text(report + "\n")
    write_json(wd.files.advice_path, {"created": created, "workdir": str(wd.root), "labeled": labeled,
                                     "summary": summary, "recommendation": rec, "protocol": protocol,
                                     "methods": [dict(r, method=m) for m, r in results.items()],
                                     "warnings": warnings, "files": files})
    return Advice(summary, rec, results, protocol, warnings, report, files)


def main(argv: Optional[List[str]] = None) -> int:
    """``tavaal advise WORKDIR [--methods ...] [--trials N] [--max-minutes M] [--cycles C]``."""
    p = argparse.ArgumentParser(prog="tavaal advise", description="Which method would have paid off on the labels "
                                "you have? A retrospective comparison inside the labeled set (docs/advise.md).")
    p.add_argument("workdir")
    p.add_argument("--methods", help="comma-separated methods (default: random + the registry's comparison set + "
                                     "the work directory's method)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="at most this many trials")
    p.add_argument("--max-minutes", type=float, default=DEFAULT_MINUTES, help="time budget (the first trial always "
                                                                              "completes)")
    p.add_argument("--cycles", type=int, default=DEFAULT_CYCLES)
    p.add_argument("--device")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None

    def run() -> int:
        result = advise(args.workdir, methods=methods, trials=args.trials, max_minutes=args.max_minutes,
                        cycles=args.cycles, device=args.device, progress=not args.no_progress)
        print(result.report)
        print(f"advice: {result.files['json']}")
        return 0

    return run_cli(run, "interrupted: no advice written")


if __name__ == "__main__":
    sys.exit(main())
