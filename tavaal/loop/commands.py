"""Command-line front of the labeling loop: ``tavaal init|train|select|label|status WORKDIR ...``.

Each command parses its arguments, calls the :class:`~tavaal.loop.Workdir` method of the same
name, prints a human-readable summary, and exits with 0 (done), 2 (refused: one ``error:``
block on stderr naming every offending line; the work directory is unchanged) or 130
(interrupted; the work directory keeps its last committed state).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable, Dict, List, Optional

from .classes import parse_classes
from .errors import LoopError

__all__ = ["main", "COMMANDS"]


def _parse_value(text: str):
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _holdout(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count (50) or a fraction (0.1), got {text!r}") from None


def _parser_init() -> argparse.ArgumentParser:
    from ..config import PRESETS
    from ..strategies import STRATEGIES as METHODS

    p = argparse.ArgumentParser(prog="tavaal init", description="Create a work directory for active learning on "
                                "your pool, starting from the labels you have.")
    p.add_argument("workdir", help="new (or empty) directory to create")
    p.add_argument("--pool", required=True, help="image folder (recursive), .npy/.npz array (FILE.npz:KEY), "
                                                 "or sharded pool directory (pool.json) of uint8 or float samples")
    p.add_argument("--labels", help="CSV 'id,label' or a Label Studio JSON export of the labels so far")
    p.add_argument("--masks", help="segmentation: a folder of label masks (single-channel PNGs of class indices, "
                                   "255 = unlabeled, named like their pool images) instead of --labels; needs "
                                   "--classes (mask value i = class i)")
    p.add_argument("--crop-size", help="with --masks: H,W (or N) random training crops, paired with the masks")
    p.add_argument("--augment", default="default", help="with --masks: default (crop if --crop-size + flip), "
                                                        "flip, crop, crop+flip, none")
    p.add_argument("--classes", help="the class list, comma-separated (or @FILE, one per line); default: the "
                                     "classes of --labels")
    p.add_argument("--preset", choices=sorted(PRESETS), help="training settings of a preset (flags override)")
    p.add_argument("--method", choices=METHODS, help="what tavaal train trains for (default tavaal)")
    p.add_argument("--holdout", type=_holdout, default=None,
                   help="labeled samples held out for the accuracy estimate: a count (50) or a fraction (0.1, "
                        "the default); 0 = none")
    p.add_argument("--image-shape", help="C,H,W images of a folder pool are decoded to (default: the first image's)")
    p.add_argument("--key", help="member of an .npz pool (default X)")
    m = p.add_argument_group("your own task model (instead of --arch)")
    m.add_argument("--model", help="torchvision:NAME (needs torchvision) or package.module:factory")
    m.add_argument("--taps", help="comma-separated submodule names whose outputs the Ranker reads "
                                  "(default for torchvision ResNets: layer1..layer4)")
    m.add_argument("--feature-layer", help="submodule whose output is core-set's feature (default: the input of "
                                           "the last Linear)")
    m.add_argument("--weights", help="initial weights: a state-dict file (keys of other shapes are skipped)")
    g = p.add_argument_group("training settings (tavaal.config.RunConfig; saved in WORKDIR/config.json)")
    for flag, kind, text in (("--budget", int, "default batch size of tavaal select"),
                             ("--subset", int, "random unlabeled subset for the WAE and selection (default 10 x budget;"
                                               " 0 = the whole pool)"),
                             ("--epochs", int, "task learner epochs per cycle"), ("--steps", int, "task learner "
                                                                                                  "steps per cycle"),
                             ("--batch-size", int, None), ("--lr", float, None), ("--width", int, None),
                             ("--latent-dim", int, None), ("--wae-iterations", int, None), ("--seed", int, None)):
        g.add_argument(flag, type=kind, help=text)
    g.add_argument("--arch", help="auto, resnet18-cifar, resnet18-imagenet, mlp; with --masks: auto "
                                       "(= drn-d-22), drn-d-small")
    g.add_argument("--device", help="cpu, cuda, ...")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="any RunConfig field")
    return p


def _cmd_init(argv: List[str]) -> int:
    args = _parser_init().parse_args(argv)
    overrides: Dict = {name: getattr(args, name) for name in ("budget", "subset", "epochs", "steps", "batch_size", "lr",
                                                              "width", "latent_dim", "wae_iterations", "seed", "arch",
                                                              "device")}
    for item in args.set or []:
        if "=" not in item:
            raise LoopError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip().replace("-", "_")] = _parse_value(value)
    image_shape = None
    if args.image_shape:
        try:
            image_shape = [int(v) for v in args.image_shape.split(",")]
        except ValueError:
            raise LoopError(f"--image-shape expects C,H,W integers, got {args.image_shape!r}") from None
    if (args.labels is None) == (args.masks is None):
        raise LoopError("give the labels so far: --labels FILE (classification) or --masks FOLDER (segmentation)")
    if args.masks is not None:
        from .masks import MaskWorkdir

        if args.model or args.taps or args.feature_layer or args.weights or args.key:
            raise LoopError("--model/--taps/--feature-layer/--weights/--key do not apply with --masks (segmentation "
                            "uses the built-in DRN: --arch drn-d-22 or drn-d-small)")
        wd = MaskWorkdir.init(args.workdir, args.pool, args.masks, classes=parse_classes(args.classes),
                              preset=args.preset, overrides=overrides, holdout=args.holdout, image_shape=image_shape,
                              method=args.method, crop_size=args.crop_size, augment=args.augment)
    else:
        wd = _init_labels(args, overrides, image_shape)
    status = wd.status()
    print(f"initialised {wd.root}: pool of {status['pool']['size']} samples, {status['labeled']} labeled in "
          f"{len(status['classes'])} classes ({len(wd.meta['holdout'])} held out)")
    print(f"next: {status['next']}")
    return 0


def _init_labels(args, overrides, image_shape):
    from .workdir import Workdir

    if args.crop_size is not None or args.augment != "default":
        raise LoopError("--crop-size / --augment apply with --masks only")
    return Workdir.init(args.workdir, args.pool, args.labels, classes=parse_classes(args.classes), preset=args.preset,
                      overrides=overrides, holdout=args.holdout, image_shape=image_shape, key=args.key,
                      method=args.method, model=args.model,
                      taps=[t.strip() for t in args.taps.split(",") if t.strip()] if args.taps else None,
                      feature_layer=args.feature_layer, weights=args.weights)


def _cmd_train(argv: List[str]) -> int:
    from ..strategies import STRATEGIES as METHODS
    from .workdir import Workdir

    p = argparse.ArgumentParser(prog="tavaal train", description="One active-learning cycle on the labels so far "
                                "(the simulation on benchmark data: tavaal simulate / python -m tavaal.train).")
    p.add_argument("workdir")
    p.add_argument("--method", choices=METHODS, help="train for this method (default: the work directory's)")
    p.add_argument("--device")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    record = wd.train(method=args.method, device=args.device, progress=not args.no_progress)
    acc = ("n/a (no holdout)" if record["holdout_accuracy"] is None
           else f"{100 * record['holdout_accuracy']:.2f}% on {record['holdout']} held-out labels")
    metric = "mIoU" if record.get("metric") == "miou" else "accuracy"
    print(f"cycle {record['cycle']} ({record['method']}): trained on {record['trained_on']} labels + "
          f"{record['unlabeled_subset']} unlabeled in {record['seconds']:.1f} s; {metric} {acc}")
    print(f"models: {wd.root / record['checkpoint']}")
    print(f"next: tavaal select {wd.root} --budget {wd.config.budget}")
    return 0


def _cmd_select(argv: List[str]) -> int:
    from .workdir import SELECT_METHODS, Workdir

    p = argparse.ArgumentParser(prog="tavaal select", description="Pick the next batch to label with the newest "
                                "cycle's models (the fused scoring/selection path of tavaal.score).")
    p.add_argument("workdir")
    p.add_argument("--budget", type=int, help="how many samples (default: the work directory's budget)")
    p.add_argument("--method", choices=SELECT_METHODS, help="default: what the newest cycle trained for")
    p.add_argument("--subset", type=int, help="score a seeded random subset of M unlabeled samples (0 = all)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="cpu, cuda, ... (default: the work directory's)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ray", metavar="auto|ADDRESS|local:N",
                   help="score on Ray actors (tavaal/vaal/lloss/...; see docs/scale-out.md)")
    p.add_argument("--ray-actors", type=int, help="number of scoring actors (default: cluster CPUs)")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    batch = wd.select(args.budget, method=args.method, subset=args.subset, batch_size=args.batch_size,
                      progress=not args.no_progress, device=args.device, ray=args.ray, ray_actors=args.ray_actors)
    print(batch.summary)
    print(f"batch {batch.batch} ({len(batch.ids)} samples) -> {batch.files['to_label']} and "
          f"{batch.files['label_studio']}")
    print(f"next: {wd.status()['next']}")
    return 0


def _cmd_label(argv: List[str]) -> int:
    from .workdir import Workdir

    p = argparse.ArgumentParser(prog="tavaal label", description="Merge labels returned by annotators (CSV id,label "
                                "or a Label Studio JSON export; for a work directory with masks: a folder of "
                                "mask PNGs named like the images).")
    p.add_argument("workdir")
    p.add_argument("labels")
    p.add_argument("--add-classes", action="store_true", help="accept classes outside the class list (appended)")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    report = wd.label(args.labels, add_classes=args.add_classes)
    if not report.changed:
        print(f"nothing new: all {report.unchanged} label(s) were already merged (the work directory is unchanged)")
    else:
        extra = f"; new classes {', '.join(report.new_classes)}" if report.new_classes else ""
        print(f"merged {report.added} new label(s) ({report.unchanged} already present){extra}")
    print(f"next: {wd.status()['next']}")
    return 0


def _cmd_status(argv: List[str]) -> int:
    from .workdir import Workdir

    p = argparse.ArgumentParser(prog="tavaal status", description="Where the labeling loop stands.")
    p.add_argument("workdir")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    print(json.dumps(wd.status(), indent=1) if args.json else wd.status_text())
    return 0


COMMANDS: Dict[str, Callable[[List[str]], int]] = {"init": _cmd_init, "train": _cmd_train, "select": _cmd_select,
                                                   "label": _cmd_label, "status": _cmd_status}


def main(command: str, argv: Optional[List[str]] = None) -> int:
    """Run loop command ``command`` with ``argv``; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return COMMANDS[command](list(argv or []))
    except LoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the work directory keeps its last committed state", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head: not an error of the command
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
