"""``python -m tavaal.train``: active-learning cycles for TA-VAAL and its baselines.

Examples::

    python -m tavaal.train --dataset moons --method tavaal --cycles 5
    python -m tavaal.train --preset moons --methods random,lloss,vaal,tavaal --trials 3 --out runs/moons
    python -m tavaal.train --preset cifar10 --data-dir ~/data --method tavaal --out runs/c10
    python -m tavaal.train --out runs/c10 --resume          # continue an interrupted run
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .config import CHOICES, PRESETS, RunConfig, parse_key_values, resolve_config
from .data.download import download_dataset
from .experiment import Experiment, RunExistsError
from .methods import method_names
from .plots import metric_label, plot_accuracy, plot_selection_scatter
from .rundir import RunDirectory, read_json
from .stats import format_table, summarize, write_summary

log = logging.getLogger("tavaal")


def _key_values(items: Optional[List[str]], flag: str) -> Dict[str, Any]:
    try:
        return parse_key_values(items, flag)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tavaal.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="moons, digits, cifar10, cifar100, cifar10-imb, svhn, fashionmnist, "
                                     "caltech101, folder, npz; segmentation: cityscapes, segfolder, segshapes")
    p.add_argument("--data-dir", help="folder (or file, for npz) holding the dataset's files")
    p.add_argument("--preset", choices=sorted(PRESETS), help="settings of the paper's Table 1 (flags override)")
    p.add_argument("--method", help=f"one of {', '.join(method_names())}")
    p.add_argument("--methods", help="comma-separated methods to compare, e.g. random,lloss,vaal,tavaal")
    p.add_argument("--trials", type=int)
    p.add_argument("--cycles", type=int, help="number of active-learning cycles (accuracy points)")
    p.add_argument("--initial", type=int, help="size of the random initial labeled set")
    p.add_argument("--budget", type=int, help="samples labeled per cycle")
    p.add_argument("--subset", type=int, help="random unlabeled subset scored per cycle (default 10 x budget; 0 = all)")
    p.add_argument("--epochs", type=int, help="task learner epochs per cycle")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--wae-iterations", type=int, help="WAE/discriminator iterations per cycle (default: the code's rule)")
    p.add_argument("--disc-layers", type=int, help="discriminator depth (paper 5, official code 3)")
    p.add_argument("--disc-rank-input", choices=CHOICES["disc_rank_input"],
                   help="r seen by D: normalised (paper) or raw (code)")
    p.add_argument("--rank-norm", choices=CHOICES["rank_norm"],
                   help="Ranker output -> r: standardized (offset/scale invariant, default), sigmoid (paper), raw")
    p.add_argument("--steps", type=int, help="task learner optimisation steps per cycle (instead of --epochs)")
    p.add_argument("--score-mode", choices=CHOICES["score_mode"], help="WAE/D mode when scoring (code: train)")
    p.add_argument("--keep-training", action="store_true", help="keep the task learner across cycles")
    p.add_argument("--ranker-for-all", action="store_true", help="train every method with the Ranker (code bug B1)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=CHOICES["precision"],
                   help="training/scoring arithmetic: auto = bf16 autocast on CUDA, fp32 on CPU (default); "
                        "fp32 opts out")
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any RunConfig field, e.g. --set beta=0.5")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="dataset option, e.g. --dataset-option imbalance_ratio=100")
    p.add_argument("--download", action="store_true",
                   help="fetch the dataset into --data-dir first if missing (cifar10, cifar10-imb, cifar100, svhn, "
                        "mnist, fashionmnist; MD5-verified, resumable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    if args.method and args.methods:
        raise SystemExit("error: give --method or --methods, not both")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    overrides: Dict[str, Any] = {name: value for name, value in vars(args).items() if name in fields}  # same-name flags
    overrides.update(methods=[args.method] if args.method else methods,
                     fresh_model_each_cycle=False if args.keep_training else None,
                     ranker_for_all=True if args.ranker_for_all else None)
    options = _key_values(args.dataset_option, "--dataset-option")
    if options:
        overrides["dataset_options"] = options
    extra = _key_values(args.set, "--set")
    unknown = sorted(set(extra) - fields)
    if unknown:
        raise SystemExit(f"error: unknown --set key(s) {unknown}; see RunConfig in tavaal/config.py")
    overrides.update(extra)
    return resolve_config(args.preset, overrides)


def print_row(record: Dict) -> None:
    print(f"  {record['method']:<10} trial {record['trial']}  cycle {record['cycle']:>2}  "
          f"labeled {record['labeled']:>6}  {metric_label([record])} {100 * record['accuracy']:6.2f}%  "
          f"selection {record['selection_seconds']:8.3f} s", flush=True)


def write_outputs(run_dir: RunDirectory, config: RunConfig, records: List[Dict], bundle, plots: bool = True) -> List[Path]:
    """summary.csv (tavaal.stats: mean accuracy per cycle, paired difference to random with
    95% intervals, AUBC) and the figures of a finished run; returns the written paths."""
    written = [write_summary(run_dir.root / "summary.csv", summarize(records, methods=config.methods))]
    if not plots or not records:
        return written
    written += plot_accuracy(records, run_dir.root, title=config.dataset)
    if bundle.points is not None:
        last = config.cycles - 1
        selections = {}
        for method in config.methods:
            trial_dir = run_dir.trial_dir(method, 0)
            if (trial_dir / f"labeled_cycle_{last:02d}.json").exists():
                selections[method] = {kind: np.asarray(read_json(trial_dir / f"{kind}_cycle_{last:02d}.json"),
                                                       dtype=np.int64) for kind in ("labeled", "selected")}
        if selections:
            written.append(plot_selection_scatter(np.asarray(bundle.points), np.asarray(bundle.train_targets),
                                                  selections, run_dir.root, cycle=last))
    return written


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.resume and args.out and (Path(args.out) / "config.json").exists():
            config = RunConfig.from_dict(read_json(Path(args.out) / "config.json"))
        else:
            config = config_from_args(args)
        if args.download:
            download_dataset(config.dataset, config.data_dir, progress=not args.no_progress)
        out = Path(args.out or f"runs/{config.dataset}")
        print(f"tavaal: {config.dataset}, methods {','.join(config.methods)}, {config.trials} trial(s) x "
              f"{config.cycles} cycles, initial {config.initial}, budget {config.budget}, run dir {out}", flush=True)
        experiment = Experiment(config, out, resume=args.resume, progress=not args.no_progress, on_cycle_end=print_row)
        records = experiment.run()
    except KeyboardInterrupt:
        print("\ninterrupted: completed cycles are saved; continue with --resume --out <RUN_DIR>", file=sys.stderr)
        return 130
    except (ValueError, OSError, RunExistsError) as error:  # OSError: FileNotFoundError, DownloadError
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write_outputs(experiment.run_dir, experiment.config, records, experiment.bundle, plots=not args.no_plots)
    print("\n" + format_table(summarize(records, methods=experiment.config.methods), metric=metric_label(records))
          + "\n")
    print(f"done: {len(records)} cycle records in {experiment.run_dir.root / 'metrics.jsonl'}")
    for path in written:
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
