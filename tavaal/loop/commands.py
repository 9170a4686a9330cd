"""Command-line front of the labeling loop: ``tavaal init|train|select|unselect|label|status WORKDIR ...``.

Each command parses its arguments, calls the :class:`~tavaal.loop.Workdir` method of the same
name, prints a human-readable summary, and exits with 0 (done), 2 (refused: one ``error:``
block on stderr naming every offending line; the work directory is unchanged) or 130
(interrupted; the work directory keeps its last committed state).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Callable, Dict, List, Optional

from ..config import PRESETS, RunConfig
from ..training.recipe import RECIPE_HELP, default_recipe
from ..data.labelfiles import DEFAULT_POLICY, DISAGREEMENT_POLICIES
from ..data.sources import ON_UNREADABLE
from ..methods import DEFAULT_METHOD, method_names
from . import labelstudio
from .classes import parse_classes
from .errors import LoopError
from .holdout import accuracy_text
from .settings import parse_settings
from .status import batch_table
from .workdir import Workdir

__all__ = ["main", "COMMANDS", "run_cli"]

RECIPE_FIELDS = frozenset(default_recipe(labeled=100, input_shape=(3, 32, 32), num_classes=2).overrides)
"""The RunConfig fields the default recipe chooses (for the help texts)."""
TRAINING_FLAGS = (("--budget", int, "default batch size of tavaal select"),
                  ("--subset", int, "random unlabeled subset for the WAE and selection (None: 10 x budget; 0 = the "
                                    "whole pool)"),
                  ("--epochs", int, "task learner epochs per cycle"),
                  ("--steps", int, "task learner steps per cycle (replaces --epochs)"),
                  ("--batch-size", int, "task learner batch size"), ("--lr", float, "learning rate"),
                  ("--width", int, "task learner width"), ("--latent-dim", int, "WAE latent size"),
                  ("--wae-iterations", int, "WAE + discriminator iterations per cycle"),
                  ("--seed", int, "seed of every random draw"))
"""The typed RunConfig flags of ``tavaal init`` (flag, type, help); ``--arch`` and ``--device`` besides."""


def _holdout(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count (50) or a fraction (0.1), got {text!r}") from None


def _default(name: str) -> str:
    """`` (RunConfig default X)`` for the help of a training flag."""
    value = getattr(RunConfig(), name)
    recipe = " or the default recipe's" if name in RECIPE_FIELDS else ""
    return f" (default: the preset's{recipe}, else {value})"


def _parser_init() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tavaal init", description="Create a work directory for active learning on "
                                "your pool, starting from the labels you have.", epilog=RECIPE_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", help="new (or empty) directory to create")
    p.add_argument("--pool", required=True, help="image folder (recursive), .npy/.npz array (FILE.npz:KEY), "
                                                 "or sharded pool directory (pool.json) of uint8 or float samples")
    p.add_argument("--labels", help="the labels so far: CSV 'id,label' (header aliases such as filename,class are "
                                    "read) or a Label Studio export (JSON, JSON_MIN, CSV, TSV)")
    p.add_argument("--masks", help="segmentation: a folder of label masks (single-channel PNGs of class indices, "
                                   "255 = unlabeled, named like their pool images) instead of --labels; needs "
                                   "--classes (mask value i = class i)")
    p.add_argument("--crop-size", help="with --masks: H,W (or N) random training crops, paired with the masks "
                                       "(default: whole images)")
    p.add_argument("--augment", default="default", help="with --masks: default (crop if --crop-size + flip), "
                                                        "flip, crop, crop+flip, none (default: default)")
    p.add_argument("--classes", help="the class list, comma-separated (or @FILE, one per line); default: the "
                                     "classes of --labels")
    p.add_argument("--preset", choices=sorted(PRESETS), help="training settings of a preset (flags override); "
                                                             "default: the recipe chosen from the data (see below)")
    p.add_argument("--method", choices=method_names(), help=f"what tavaal train trains for (default {DEFAULT_METHOD})")
    p.add_argument("--holdout", type=_holdout, default=None,
                   help="labeled samples held out for the accuracy estimate: a count (50) or a fraction (0.1, "
                        "the default); 0 = none")
    p.add_argument("--image-shape", help="C,H,W the images of a folder pool are decoded to (default: the most "
                                         "common channels and size of the files; init prints what it chose)")
    p.add_argument("--key", help="member of an .npz pool (default X)")
    p.add_argument("--on-disagreement", choices=DISAGREEMENT_POLICIES, default=DEFAULT_POLICY,
                   help="several different answers for one sample in --labels: refuse (default), latest, majority")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while every image file is checked")
    m = p.add_argument_group("your own task model (instead of --arch)")
    m.add_argument("--model", help="torchvision:NAME (needs torchvision) or package.module:factory")
    m.add_argument("--taps", help="comma-separated submodule names whose outputs the Ranker reads "
                                  "(default for torchvision ResNets: layer1..layer4)")
    m.add_argument("--feature-layer", help="submodule whose output is core-set's feature (default: the input of "
                                           "the last Linear)")
    m.add_argument("--weights", help="initial weights: a state-dict file (keys of other shapes are skipped)")
    m.add_argument("--output-key", help="the key of the logits when the model's forward returns a dict "
                                        "(default: none; init says when it is needed)")
    g = p.add_argument_group("training settings (tavaal.config.RunConfig; saved in WORKDIR/config.json; "
                             "change them later with tavaal train WORKDIR --set KEY=VALUE)")
    for flag, kind, text in TRAINING_FLAGS:
        g.add_argument(flag, type=kind, help=text + _default(flag[2:].replace("-", "_")))
    g.add_argument("--arch", help="auto, resnet18-cifar, resnet18-imagenet, mlp; with --masks: auto "
                                  "(= drn-d-22), drn-d-small" + _default("arch"))
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps, checked against the installed torch"
                                    + _default("device"))
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="any RunConfig field")
    return p


def _cmd_init(argv: List[str]) -> int:
    args = _parser_init().parse_args(argv)
    names = [flag[2:].replace("-", "_") for flag, _, _ in TRAINING_FLAGS] + ["arch", "device"]
    overrides: Dict = {name: getattr(args, name) for name in names}
    overrides.update(parse_settings(args.set))
    image_shape = None
    if args.image_shape:
        try:
            image_shape = [int(v) for v in args.image_shape.split(",")]
        except ValueError:
            raise LoopError(f"--image-shape expects C,H,W integers, got {args.image_shape!r}") from None
    wd = Workdir.init(args.workdir, args.pool, args.labels, masks=args.masks, classes=parse_classes(args.classes),
                      preset=args.preset, overrides=overrides, holdout=args.holdout, image_shape=image_shape,
                      key=args.key, method=args.method, model=args.model,
                      taps=[t.strip() for t in args.taps.split(",") if t.strip()] if args.taps else None,
                      feature_layer=args.feature_layer, weights=args.weights, output_key=args.output_key,
                      crop_size=args.crop_size, augment=args.augment, policy=args.on_disagreement,
                      progress=not args.no_progress)
    status = wd.status()
    for note in wd.init_notes:
        print(note)
    print(f"initialised {wd.root}: pool of {status['pool']['size']} samples, {status['labeled']} labeled in "
          f"{len(status['classes'])} classes ({len(wd.meta['holdout'])} held out)")
    print(f"next: {status['next']}")
    return 0


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``tavaal COMMAND WORKDIR ...``."""
    p = argparse.ArgumentParser(prog=f"tavaal {command}", description=description)
    p.add_argument("workdir")
    return p


def _on_unreadable_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--on-unreadable", choices=ON_UNREADABLE, default="skip",
                   help="image files that cannot be decoded (any more): skip them (default: left out of the pool, "
                        "listed in WORKDIR/unreadable.csv and reported) or stop with their list")


def _cmd_train(argv: List[str]) -> int:
    p = _parser("train", "One active-learning cycle on the labels so far (the simulation on benchmark data: "
                         "tavaal simulate / python -m tavaal.train).")
    p.add_argument("--method", choices=method_names(), help="train for this method (default: the work directory's)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps (default: the work directory's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="change a training setting (RunConfig field) for this and every later cycle; recorded in "
                        "the cycle record")
    _on_unreadable_flag(p)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    record = wd.train(method=args.method, device=args.device, progress=not args.no_progress,
                      settings=parse_settings(args.set), on_unreadable=args.on_unreadable)
    metric = record.get("metric", "accuracy")
    acc = accuracy_text(record["holdout_accuracy"], record["holdout"], metric)
    if record.get("settings"):
        print("settings changed for this and later cycles: "
              + ", ".join(f"{k}={v!r}" for k, v in record["settings"].items()))
    print(f"cycle {record['cycle']} ({record['method']}): trained on {record['trained_on']} labels + "
          f"{record['unlabeled_subset']} unlabeled in {record['seconds']:.1f} s; "
          f"{'mIoU' if metric == 'miou' else 'accuracy'} {acc}")
    print(f"models: {wd.root / record['checkpoint']}")
    print(f"next: tavaal select {wd.root} --budget {wd.config.budget}")
    return 0


def _cmd_select(argv: List[str]) -> int:
    p = _parser("select", "Pick the next batch to label with the newest cycle's models (the fused "
                          "scoring/selection path of tavaal.score).")
    p.add_argument("--budget", type=int, help="how many samples (default: the work directory's budget)")
    p.add_argument("--method", choices=method_names(), help="default: what the newest cycle trained for")
    p.add_argument("--subset", type=int, help="score a seeded random subset of M unlabeled samples (0 = all)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="cpu, cuda, ... (default: the work directory's)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ray", metavar="auto|ADDRESS|local:N",
                   help="score on Ray actors (tavaal/vaal/lloss/...; see docs/scale-out.md)")
    p.add_argument("--ray-actors", type=int, help="number of scoring actors (default: cluster CPUs)")
    p.add_argument("--audit", type=int, default=0, metavar="K",
                   help="add K uniformly random samples (marked audit in the batch files); once labeled they join "
                        "the holdout, so the accuracy estimate grows and stays unbiased (default 0)")
    p.add_argument("--dry-run", action="store_true", help="show the batch; record and write nothing")
    p.add_argument("--save-scores", action="store_true",
                   help="also write the score of every scored sample to the batch folder's scores.csv")
    _on_unreadable_flag(p)
    _label_studio_flags(p)
    g = p.add_argument_group("image URLs for Label Studio (image-folder pools; remembered per project; without "
                             "--project: the URLs of label_studio_tasks.json)")
    g.add_argument("--image-root", metavar="DIR", help="Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (a parent "
                                                       "folder of the pool): tasks use /data/local-files/?d=...")
    g.add_argument("--image-url-prefix", metavar="URL", help="tasks use URL + sample id (a pool served over http)")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    link = None
    if _wants_label_studio(args):
        if args.dry_run:  # before check_project: that creates or reuses storage on the server
            raise LoopError("--dry-run records nothing, so there is nothing to push to Label Studio: drop --project")
        link = labelstudio.check_project(wd, args.label_studio, args.project, image_root=args.image_root,
                                         image_url_prefix=args.image_url_prefix)
        addressing = link.target.addressing
    elif args.image_root or args.image_url_prefix:  # label_studio_tasks.json for an import by hand
        addressing = labelstudio.image_addressing(wd, args.image_root, args.image_url_prefix)
    else:
        addressing = None
    batch = wd.select(args.budget, method=args.method, subset=args.subset, batch_size=args.batch_size,
                      progress=not args.no_progress, device=args.device, ray=args.ray, ray_actors=args.ray_actors,
                      audit=args.audit, dry_run=args.dry_run, save_scores=args.save_scores,
                      on_unreadable=args.on_unreadable, image_url=None if addressing is None else addressing.url)
    print(batch.summary)
    audit = f" + {len(batch.audit)} audit" if batch.audit else ""
    if batch.dry_run:
        print(f"dry run: batch {batch.batch} would be ({len(batch.ids)} samples{audit}; nothing was recorded or "
              "written):")
        print(batch_table(batch))
        return 0
    print(f"batch {batch.batch} ({len(batch.ids)} samples{audit}) -> {batch.files['to_label']} and "
          f"{batch.files['label_studio']}")
    for note in batch.notes:
        print(f"note: {note}")
    if "scores" in batch.files:
        print(f"scores of every scored sample: {batch.files['scores']}")
    if link is not None:
        report = labelstudio.push(wd, link, batch)
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(report.summary(link.target.connection.url))
        print(f"next: annotate in Label Studio, then: tavaal label {wd.root} --project {args.project}"
              + (f" --label-studio {args.label_studio}" if args.label_studio else ""))
        return 0
    print(f"next: {wd.status()['next']}")
    return 0


def _label_studio_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Label Studio (pip install \"tavaal[labelstudio]\"; token from LABEL_STUDIO_API_KEY; "
                             "see docs/label-studio.md)")
    g.add_argument("--label-studio", metavar="URL", help="the server (default: $LABEL_STUDIO_URL)")
    g.add_argument("--project", type=int, metavar="ID", help="the Label Studio project id")


def _wants_label_studio(args) -> bool:
    if args.label_studio is not None and args.project is None:
        raise LoopError("--label-studio needs --project ID (the Label Studio project)")
    return args.project is not None


def _cmd_label(argv: List[str]) -> int:
    p = _parser("label", "Merge labels returned by annotators (CSV id,label or a Label Studio JSON export; for a "
                         "work directory with masks: a folder of mask PNGs named like the images).")
    p.add_argument("labels", nargs="?", help="the returned labels file / masks folder (or --project: pull from "
                                             "Label Studio)")
    p.add_argument("--add-classes", action="store_true", help="accept classes outside the class list (appended)")
    p.add_argument("--relabel", action="store_true", help="apply labels that differ from merged ones (corrections; "
                                                          "each sample's history is kept in state.json)")
    p.add_argument("--on-disagreement", choices=DISAGREEMENT_POLICIES, default=DEFAULT_POLICY,
                   help="several different answers for one sample: refuse (default, listing them), take the "
                        "latest, or the majority")
    _label_studio_flags(p)
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    if _wants_label_studio(args):
        if args.labels is not None:
            raise LoopError("give a labels file or --project (pull from Label Studio), not both")
        report = labelstudio.pull(wd, args.label_studio, args.project, relabel=args.relabel,
                                  policy=args.on_disagreement, add_classes=args.add_classes)
    elif args.labels is None:
        raise LoopError("give the returned labels: a labels file (or masks folder), or --project ID to pull them "
                        "from Label Studio")
    else:
        report = wd.label(args.labels, add_classes=args.add_classes, policy=args.on_disagreement,
                          relabel=args.relabel)
    if report.columns:
        print(f"read {report.columns}")
    if not report.changed:
        print(f"nothing new: all {report.unchanged} label(s) were already merged (the work directory is unchanged)")
    else:
        extra = f"; new classes {', '.join(report.new_classes)}" if report.new_classes else ""
        fixed = f"; {len(report.corrected)} corrected ({', '.join(report.corrected[:10])})" if report.corrected else ""
        print(f"merged {report.added} new label(s) ({report.unchanged} already present){fixed}{extra}")
    if report.skipped:
        print(f"{len(report.skipped)} skipped by the annotators (still out for labeling): "
              + ", ".join(report.skipped[:20]))
    print(f"next: {wd.status()['next']}")
    return 0


def _cmd_unselect(argv: List[str]) -> int:
    p = _parser("unselect", "Return the pending samples of a batch to the pool (what came back labeled stays "
                            "labeled).")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--batch", type=int, metavar="K", help="this batch (default: the newest with pending samples)")
    which.add_argument("--all", action="store_true", help="every batch with pending samples")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    returned = wd.unselect(args.batch, all_batches=args.all)
    for k, ids in returned.items():
        print(f"batch {k}: {len(ids)} pending sample(s) returned to the pool")
    print(f"next: {wd.status()['next']}")
    return 0


def _cmd_status(argv: List[str]) -> int:
    p = _parser("status", "Where the labeling loop stands.")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    args = p.parse_args(argv)
    wd = Workdir(args.workdir)
    print(json.dumps(wd.status(), indent=1) if args.json else wd.status_text())
    return 0


COMMANDS: Dict[str, Callable[[List[str]], int]] = {"init": _cmd_init, "train": _cmd_train, "select": _cmd_select,
                                                   "unselect": _cmd_unselect, "label": _cmd_label,
                                                   "status": _cmd_status}


def main(command: str, argv: Optional[List[str]] = None) -> int:
    """Run loop command ``command`` with ``argv``; returns the exit code."""
    return run_cli(lambda: COMMANDS[command](list(argv or [])),
                   "interrupted: the work directory keeps its last committed state")


def run_cli(call: Callable[[], int], interrupted: str) -> int:
    """``call()``'s exit code under the loop's conventions: warnings logged as ``warning: ...``;
    a :class:`LoopError` printed as ``error: ...`` to stderr (2); Ctrl-C prints ``interrupted``
    (130); output piped into a reader that went away (``| head``) is not an error (0)."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return call()
    except LoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head: not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
