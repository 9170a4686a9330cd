"""``python -m benchmarks.disc_training``: how long must the WAE/discriminator train?

The digits recipe trains the WAE + discriminator for a fixed count per cycle (``wae_epochs``
= 6 passes over labeled + unlabeled). Here VAAL and TA-VAAL train for ``--factor`` (4) times
that count (``wae_stop`` plateau with a patience beyond the cap) with a fifth of the labeled and of the unlabeled rows held out of WAE/D training
(``disc_holdout`` 0.2), and D's separation of labeled from unlabeled on those held-out rows
(ROC AUC, ``disc_auc_trace``) is read every tenth of the default count. The table gives, per
cycle, the held-out AUC after 0.5x, 1x (the default), 2x and 4x the default count, the AUC on the
rows D trained on at the end, the spread of D's scores over the scored pool, and where
``wae_stop=plateau`` (patience 3 checks, gain > 0.005) would have stopped.

Data: the digits settings of ``benchmarks/validate.py``, validation split (never the test
split). Writes ``ablation-disc-training.md`` / ``.csv`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from benchmarks.validate import (config_for, machine_info, machine_lines, run_dir_for, run_jobs,
                                write_report)

PATIENCE, MIN_GAIN = 3, 0.005


def plateau_stop(trace: List[List[float]], patience: int = PATIENCE, gain: float = MIN_GAIN) -> int:
    """The iteration at which ``wae_stop=plateau`` stops on this trace (its last one if never)."""
    best, stale = -np.inf, 0
    for it, auc in trace:
        if auc > best + gain:
            best, stale = auc, 0
        else:
            stale += 1
        if stale >= patience:
            return int(it)
    return int(trace[-1][0])


def at(trace: List[List[float]], iteration: float) -> float:
    """The held-out AUC of the last check at or before ``iteration``."""
    done = [auc for it, auc in trace if it <= iteration + 1e-9]
    return done[-1] if done else float("nan")


def validate_auc_lines(root: Path) -> List[str]:
    """Markdown tables of D's separation per cycle read from the run directories under
    ``root/runs`` (records with ``disc_auc_train``): every run of the main table's groups
    (balanced, imbalanced) and, from the other groups, the runs with ``disc_holdout`` > 0 (which
    add the held-out AUC); mean [min, max] over trials."""
    lines = []
    for group in sorted(p.name for p in (root / "runs").iterdir() if p.is_dir()):
        for run in sorted((root / "runs" / group).iterdir()):
            metrics, config = run / "metrics.jsonl", run / "config.json"
            if not metrics.exists() or not config.exists():
                continue
            settings = json.loads(config.read_text())
            records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            records = [r for r in records if r.get("disc_auc_train") is not None]
            if not records:
                continue
            held = settings.get("disc_holdout", 0) > 0
            if group not in ("balanced", "imbalanced") and not held:
                continue  # the main table's runs, and the other groups' runs with held-out rows
            what = (f"{settings['methods'][0]}, ranker_mode {settings.get('ranker_mode')}, disc_holdout "
                    f"{settings.get('disc_holdout')}, wae_stop {settings.get('wae_stop')}, wae_epochs "
                    f"{settings.get('wae_epochs')}")
            lines += [f"### {group}: {what} ({run.name})", "",
                      "| labeled | AUC on trained rows | AUC held out | D score std | D score [q05, q95] | r std |",
                      "|---:|---:|---:|---:|---:|---:|"]
            for size in sorted({r["labeled"] for r in records}):
                mine = [r for r in records if r["labeled"] == size]

                def cell(key):
                    v = [r[key] for r in mine if r.get(key) is not None]
                    return f"{np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]" if v else "-"

                q = f"[{np.mean([r['disc_score_q05'] for r in mine]):.3f}, {np.mean([r['disc_score_q95'] for r in mine]):.3f}]"
                lines.append(f"| {size} | {cell('disc_auc_train')} | {cell('disc_auc_heldout') if held else '-'} | "
                             f"{cell('disc_score_std')} | {q} | {cell('rank_std')} |")
            lines.append("")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.disc_training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--settings", default="balanced,imbalanced")
    parser.add_argument("--methods", default="vaal,tavaal")
    parser.add_argument("--factor", type=float, default=4.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--validate-runs", action="store_true",
                        help="only summarise D's AUC per cycle from benchmarks/validate.py's run directories in --out "
                             "-> ablation-disc-auc.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.validate_runs:
        lines = ["# D's separation per cycle in the runs of `benchmarks/validate.py`", "",
                 "ROC AUC of D's 'labeled' probability, labeled vs unlabeled: on the rows D trained on (what "
                 "selection ranks) and, for runs with disc_holdout > 0, on held-out rows; spread of D's scores over "
                 "the scored pool and (TA-VAAL) of r. Mean [min, max] over trials. Main-table groups (balanced, "
                 "imbalanced) are evaluated on the test split, ablation groups on the validation split.", "",
                 *validate_auc_lines(out)]
        (out / "ablation-disc-auc.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    command = "python -m benchmarks.disc_training " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    jobs, where = [], {}
    base = config_for("tavaal", args.trials)
    for setting in settings:
        for method in methods:
            # plateau mode that never stops (patience beyond the cap): checks every tenth of the default count
            config = config_for(method, args.trials, {"disc_diagnostics": True, "disc_holdout": 0.2,
                                                      "wae_stop": "plateau", "wae_patience": 10 ** 6,
                                                      "wae_cap_factor": args.factor})
            path = run_dir_for(out, f"disc-training-{setting}", method, config)
            jobs.append((setting, str(path), True, config.to_dict(), f"{setting}/{method}"))
            where[(setting, method)] = str(path)
    print(f"discriminator training: {len(jobs)} runs ({args.trials} trials each), validation split", flush=True)
    results = run_jobs(jobs, args.jobs)
    lines = ["# How long must the WAE/discriminator train? Held-out separation vs iterations", "",
             *machine_lines(machine_info(), time.perf_counter() - started, command),
             f"Protocol: the digits recipe of `benchmarks/validate.py` (initial {base.initial}, +{base.budget} per "
             f"cycle, {base.cycles} cycles), {args.trials} trials, validation split; WAE/D trained for {args.factor:g}x "
             f"the default count (wae_epochs {base.wae_epochs:g} over the rows trained on) with 20% of the labeled and of the unlabeled rows held out of WAE/D training. Columns: D's ROC AUC labeled vs "
             "unlabeled on the held-out rows after 0.5x / 1x (default) / 2x / 4x the default count (mean over "
             "trials), on the rows it trained on at the end, the std of D's scores over the scored pool, and "
             f"where `wae_stop=plateau` (patience {PATIENCE}, gain > {MIN_GAIN}) stops, in multiples of the default "
             "count.", ""]
    rows = []
    for setting in settings:
        for method in methods:
            records = results[where[(setting, method)]]
            lines += [f"## {setting}, {method}", "",
                      "| labeled | default count | AUC 0.5x | AUC 1x | AUC 2x | AUC 4x | AUC train (4x) | "
                      "score std | plateau stop (x default) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for cycle in sorted({r["cycle"] for r in records}):
                mine = [r for r in records if r["cycle"] == cycle]
                default = [r["wae_iterations_run"] / args.factor for r in mine]
                cells = {k: [] for k in ("0.5", "1", "2", "4", "train", "std", "stop")}
                for r, d in zip(mine, default):
                    trace = r["disc_auc_trace"]
                    for k in ("0.5", "1", "2", "4"):
                        cells[k].append(at(trace, float(k) * d))
                    cells["train"].append(r["disc_auc_train"])
                    cells["std"].append(r["disc_score_std"])
                    cells["stop"].append(plateau_stop(trace) / d)
                    rows.append({"setting": setting, "method": method, "trial": r["trial"], "cycle": cycle,
                                 "labeled": r["labeled"], "default_iterations": d,
                                 "trace": " ".join(f"{it}:{auc:.4f}" for it, auc in trace),
                                 "auc_train": r["disc_auc_train"], "score_std": r["disc_score_std"],
                                 "plateau_stop": plateau_stop(trace)})
                mean = {k: float(np.mean(v)) for k, v in cells.items()}
                lines.append(f"| {mine[0]['labeled']} | {np.mean(default):.0f} | {mean['0.5']:.3f} | {mean['1']:.3f} | "
                             f"{mean['2']:.3f} | {mean['4']:.3f} | {mean['train']:.3f} | {mean['std']:.3f} | "
                             f"{mean['stop']:.2f} |")
            lines.append("")
    write_report(out, "ablation-disc-training", lines, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
