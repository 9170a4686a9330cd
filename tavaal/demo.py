"""``python -m tavaal.demo`` (``make demo``): the labeling loop on your own data, then: does active
learning beat random here? On CPU, in about three minutes.

0. the labeling loop, for real: scikit-learn's digits written as a folder of PNG files plus a seed
   labels CSV (8 per class), then the actual commands a user types on their own data, each run as a
   subprocess: ``tavaal init``, 2 x (``train``, ``select --budget 40``, a stand-in annotator that
   answers from the hidden digits labels, ``label``), ``tavaal status`` (in ``OUT/loop``).
1. moons (paper §4.1, Fig. 1, the stable ``moons`` recipe, 100 WAE/D iterations per cycle):
   random, Learning Loss, VAAL and TA-VAAL.
2. digits (scikit-learn's 8x8 digits, the ``digits`` recipe): random, margin (uncertainty
   sampling) and TA-VAAL.

Both with 5 trials under common random numbers (every method of a trial starts from the same
labeled set and the same cycle-0 models). At the end it prints, per data set, the mean
accuracy per cycle, the paired difference to random with its 95% interval and the AUBC
(``tavaal.stats``); a method "beats random" only where that interval excludes 0. The
paper's exact toy settings are the (noisy) ``moons-paper`` preset.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from .data.labelfiles import labels_csv
from .plots import metric_label
from .rundir import RunDirectory, read_json
from .stats import format_table, summarize

RUNS = {
    "moons": ["--preset", "moons", "--methods", "random,lloss,vaal,tavaal", "--trials", "5",
              "--wae-iterations", "100"],
    "digits": ["--preset", "digits", "--methods", "random,margin,tavaal", "--trials", "5", "--cycles", "5"],
}
"""The two comparisons (``python -m tavaal.train`` arguments), sized to finish in about three
minutes on two cores; ``make validate`` has every method, more cycles and both digits settings."""


LOOP_SETTINGS = ["--preset", "digits", "--holdout", "20", "--subset", "400"]
"""``tavaal init`` flags of the walkthrough: the digits recipe (an MLP task learner and MLP WAE),
20 of the seed labels held out for the accuracy estimate, the WAE and selection on a seeded random
subset of 400 unlabeled images (the paper's subset method, 10 x the budget)."""
LOOP_QUICK = ["--steps", "30", "--set", "wae_epochs=1"]
LOOP_BUDGET, LOOP_CYCLES, SEED_PER_CLASS = 40, 2, 8


def _write_digits_folder(root: Path) -> Dict[str, str]:
    """scikit-learn's 1797 digits as 8x8 grayscale PNGs ``root/digits_png/<row>.png`` (pixel x 15)
    plus ``root/seed_labels.csv`` (the first SEED_PER_CLASS of each class); returns the hidden
    labels {id: class} that only the stand-in annotator reads."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = root / "digits_png"
    folder.mkdir(parents=True)
    truth = {}
    for row, (image, target) in enumerate(zip(digits.images, digits.target)):
        ident = f"{row:04d}.png"
        Image.fromarray((image * 15).astype(np.uint8), mode="L").save(folder / ident)
        truth[ident] = str(int(target))
    seed = [ident for c in range(10) for ident in [i for i, t in truth.items() if t == str(c)][:SEED_PER_CLASS]]
    (root / "seed_labels.csv").write_text(labels_csv({ident: truth[ident] for ident in seed}))
    return truth


def _tavaal(root: Path, *args: str, show: int = 0) -> str:
    """Run ``tavaal ARGS`` (as ``sys.executable -m tavaal.cli``, in ``root``), print the command
    and its output (the first ``show`` lines, all when 0); raises RuntimeError when it fails."""
    print(f"\n$ tavaal {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "tavaal.cli", *args], cwd=root, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if done.returncode != 0:
        raise RuntimeError(f"tavaal {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    lines = done.stdout.rstrip("\n").splitlines()
    for line in lines[:show] if show else lines:
        print(f"  {line}")
    if show and len(lines) > show:
        print(f"  ... ({len(lines) - show} more lines)")
    return done.stdout


def loop_walkthrough(out: Path, quick: bool = False) -> Path:
    """The labeling loop on your own data, for real: digits written as a folder of PNG files and a
    seed labels CSV, then ``tavaal init``, LOOP_CYCLES x (``train``, ``select``, the stand-in
    annotator, ``label``) and ``tavaal status``, each a subprocess of the actual CLI. Returns the
    work directory (``out/loop/work``); raises RuntimeError when a command fails."""
    root = out / "loop"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    truth = _write_digits_folder(root)
    print(f"\nThe labeling loop on your own data, in {root}: each `$ tavaal ...` below is what you would type "
          f"(run here as `{Path(sys.executable).name} -m tavaal.cli ...`).\nYour pool: {len(truth)} images in "
          f"digits_png/; the labels you have: seed_labels.csv ({SEED_PER_CLASS} per class).", flush=True)
    started = time.perf_counter()
    _tavaal(root, "init", "work", "--pool", "digits_png", "--labels", "seed_labels.csv", *LOOP_SETTINGS,
            *(LOOP_QUICK if quick else []))
    for cycle in range(LOOP_CYCLES):
        _tavaal(root, "train", "work", "--no-progress")
        _tavaal(root, "select", "work", "--budget", str(LOOP_BUDGET), "--no-progress")
        print("\n$ head -4 work/to_label.csv")
        with open(root / "work" / "to_label.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for line in (root / "work" / "to_label.csv").read_text().splitlines()[:4]:
            print(f"  {line}")
        returned = f"returned_labels_{cycle}.csv"
        (root / returned).write_text(labels_csv({row["id"]: truth[row["id"]] for row in rows}))
        print(f"\n[stand-in for your annotators: {len(rows)} labels answered from scikit-learn's digits "
              f"targets, which tavaal never sees -> {returned}]", flush=True)
        _tavaal(root, "label", "work", returned)
    _tavaal(root, "status", "work")
    print(f"\nlabeling loop: {LOOP_CYCLES} cycles in {time.perf_counter() - started:.0f} s", flush=True)
    return root / "work"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tavaal.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_runs", help="where the loop walkthrough and the two runs go")
    parser.add_argument("--quick", action="store_true",
                        help="2 trials, 3 cycles, short training; short loop training too (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="resume existing demo runs instead of replacing them")
    parser.add_argument("--sequential", action="store_true",
                        help="run the two comparisons one after the other (default: side by side, one core each)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commands = {}
    for name, run in RUNS.items():
        argv_run = list(run) + ["--out", str(out / name), "--no-progress"]
        if args.quick:
            argv_run += ["--trials", "2", "--cycles", "3", "--steps", "40", "--wae-iterations", "20"]
        if args.keep:
            argv_run.append("--resume")
        elif (out / name).exists():
            shutil.rmtree(out / name)
        commands[name] = [sys.executable, "-m", "tavaal.train"] + argv_run
    demo_started = time.perf_counter()
    try:
        loop_walkthrough(out, quick=args.quick)
    except RuntimeError as error:
        print(f"labeling loop: FAILED\n{error}", file=sys.stderr)
        return 1
    env = dict(os.environ, OMP_NUM_THREADS="1")
    started = time.perf_counter()
    print(f"\ndemo: {', '.join(RUNS)} ({'one after the other' if args.sequential else 'side by side'}); "
          f"logs in {out}/<name>.log", flush=True)
    running = {}
    for name, command in commands.items():
        log = open(out / f"{name}.log", "w")
        running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log)
        if args.sequential:
            running[name][0].wait()
    failed = []
    for name, (process, log) in running.items():
        code = process.wait()
        log.close()
        print(f"  {name}: {'done' if code == 0 else f'FAILED (exit {code})'} after "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
            print((out / f"{name}.log").read_text()[-3000:], file=sys.stderr)
    seconds = time.perf_counter() - started
    if failed:
        return 1

    print("\n" + "=" * 100)
    for name in RUNS:
        run_dir = RunDirectory(out / name)
        config = read_json(run_dir.config_path)
        records = run_dir.all_records(config["methods"], config["trials"])
        print(f"\n{name}: {config['trials']} trials, initial {config['initial']}, +{config['budget']} per cycle, "
              f"{config['cycles']} cycles")
        print(format_table(summarize(records, methods=config["methods"]), metric=metric_label(records)))
    print(f"\ndemo finished in {time.perf_counter() - demo_started:.0f} s (the comparisons {seconds:.0f} s). "
          f"The labeling loop's work directory: {out / 'loop' / 'work'}. Plots:")
    for png in sorted(out.glob("*/*.png")):
        print(f"  {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
