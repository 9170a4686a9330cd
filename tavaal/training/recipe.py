"""The default training recipe of a work directory: chosen from the data, not the paper's CIFAR run.

Without ``--preset``, ``tavaal init`` resolves the training settings with :func:`default_recipe`
from what it knows about the pool and the labels: the number of labeled samples the task learner
trains on, the sample shape ((C, H, W) images or (D,) vectors) and the number of classes. The
paper's recipe (SGD lr 0.1, 200 epochs, a width-64 ResNet-18 and a width-128 WAE trained for
100 epochs of the pool) is made for 1,000+ labels of CIFAR on a GPU; from a few hundred labels
on a CPU it neither learns (SGD at lr 0.1 on 300 samples) nor finishes in reasonable time.

The rule (every value is a :class:`tavaal.config.RunConfig` field; flags and ``--set`` override it):

* **optimiser and schedule** -- Adam, lr 1e-3, cosine decay to 0, L2 weight decay 5e-4: trains
  a fresh network from a few hundred labels without tuning (SGD needs its lr matched to the
  batch and data; Adam at 1e-3 does not).
* **a step budget instead of epochs** -- ``steps`` = 30 passes over the labeled set, at least
  :data:`MIN_STEPS` and at most :data:`MAX_STEPS` steps of :data:`BATCH_SIZE` samples: a tiny
  seed set still gets enough updates, a large one bounded time.
* **task learner that fits the image** -- a ResNet-18 whose multiply-adds per image stay under
  :data:`TASK_MACS_BUDGET`: the CIFAR stem (full resolution) while width 16 fits, else the
  ImageNet stem (stride 4) at the widest of 32 or 16 that fits (16 beyond); vectors: an MLP.
* **augmentation suited to the images** -- random translation (pad 1/8 of the shorter side and
  crop back) for every image; horizontal flips for colour images only (characters, digits and
  documents, usually grayscale, are not mirror-symmetric); none for vectors.
* **a WAE + discriminator that fit the budget** -- the 32x32 VAAL network at width 16 (the
  paper's 128 costs ~35x more per step), larger images downscaled to 32x32 for it (what the
  VAAL authors did for ImageNet), a fixed :data:`WAE_ITERATIONS` iterations of 64 + 64 samples.

With these, one ``tavaal train`` cycle on 28x28 to 64x64 images takes a few minutes on two CPU
cores (see ``benchmarks/results/default-recipe-cpu.md``). Nothing here looks at a test split: the
choices were checked on validation splits of generated shape pools (not the benchmark's test
images): random translation 73% vs 14% without it (28x28 grayscale, 270 labels, 500 steps), Adam
1e-3 and SGD 0.05 on a par (73% / 74%; Adam is kept for its tolerance of the lr); widths, steps and
WAE iterations follow from the time budget. Known limit: when colour is pure nuisance (shapes in
random hues, brighter or darker than random backgrounds) 270 labels at 32-64 px stayed near chance.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..config import RunConfig

__all__ = ["Recipe", "default_recipe", "crop_padding", "task_macs", "RECIPE_HELP", "BATCH_SIZE", "MIN_STEPS",
           "MAX_STEPS", "EPOCHS_OF_STEPS", "TASK_MACS_BUDGET", "WAE_ITERATIONS"]

BATCH_SIZE = 64
"""Task-learner and WAE batch size."""
EPOCHS_OF_STEPS = 30
"""The step budget is this many passes over the labeled set, clipped to [MIN_STEPS, MAX_STEPS]."""
MIN_STEPS = 500
MAX_STEPS = 2000
TASK_MACS_BUDGET = 45e6
"""Multiply-adds per image (forward) the task learner may cost: ~0.1-0.25 s per training step of
64 images on one CPU core."""
TASK_WIDTHS = (32, 16)
"""ResNet-18 first-stage widths the recipe chooses from (widest that fits the budget)."""
WAE_WIDTH = 16
WAE_ITERATIONS = 400
MLP_WIDTH = 256


@dataclass(frozen=True)
class Recipe:
    """Training settings chosen from the data: ``overrides`` (RunConfig field -> value) and, for
    each of them, ``reasons`` (field -> one line saying why)."""

    overrides: Dict[str, Any]
    reasons: Dict[str, str]

    def lines(self, overridden: Sequence[str] = ()) -> List[str]:
        """One line per field: ``"  steps = 600    (why)"``; fields in ``overridden`` are marked
        as replaced by the user's setting."""
        settings = {key: f"{key} = {value}" for key, value in self.overrides.items()}
        width, note = max(map(len, settings.values())), "  [overridden by your setting]"
        return [f"  {setting:<{width}}   {self.reasons[key]}{note if key in overridden else ''}"
                for key, setting in settings.items()]

    def text(self, overridden: Sequence[str] = ()) -> str:
        """The recipe as ``init`` prints it: a header line and :meth:`lines`."""
        return "\n".join(["default recipe (no --preset; chosen from the data, change with --set KEY=VALUE):"]
                         + self.lines(overridden))

    def config(self, base: Optional[RunConfig] = None) -> RunConfig:
        """``base`` (default: the dataclass defaults) with the recipe applied, validated."""
        config = dataclasses.replace(base or RunConfig(), **self.overrides)
        config.validate()
        return config


def crop_padding(input_shape: Sequence[int]) -> int:
    """Padding of the random-translation augmentation for (C, H, W) images: 1/8 of the shorter
    side, at least 1 pixel (4 px for 32x32, as the CIFAR recipe)."""
    if len(input_shape) != 3:
        raise ValueError(f"crop padding needs a (C, H, W) image shape, got {tuple(input_shape)}")
    return max(1, min(int(input_shape[1]), int(input_shape[2])) // 8)


def task_macs(arch: str, width: int, input_shape: Sequence[int]) -> float:
    """Approximate forward multiply-adds per image of a built-in ResNet-18 (``arch``
    "resnet18-cifar" or "resnet18-imagenet") of first-stage ``width`` on (C, H, W) images: the
    4 stages cost ~36 w^2 (H W / s^2) each (each halving of the map quadruples the channels
    squared), plus the stem; s = 1 for the CIFAR stem, 4 for the ImageNet stem."""
    c, h, w = (int(v) for v in input_shape)
    if arch == "resnet18-cifar":
        return 144.0 * width ** 2 * h * w + 9.0 * c * width * h * w
    if arch == "resnet18-imagenet":
        return 144.0 * width ** 2 * h * w / 16 + 49.0 * c * width * h * w / 4
    raise ValueError(f"task_macs knows resnet18-cifar and resnet18-imagenet, got {arch!r}")


def _task_learner(input_shape: Tuple[int, int, int]) -> Tuple[str, int, str]:
    """(arch, width, reason) for images: the CIFAR stem while width 16 fits the budget, else
    the ImageNet stem at the widest width that fits (the narrowest beyond)."""
    c, h, w = input_shape
    cifar = task_macs("resnet18-cifar", TASK_WIDTHS[-1], input_shape) <= TASK_MACS_BUDGET
    arch = "resnet18-cifar" if cifar else "resnet18-imagenet"
    fitting = [k for k in TASK_WIDTHS if task_macs(arch, k, input_shape) <= TASK_MACS_BUDGET]
    width = fitting[0] if fitting else TASK_WIDTHS[-1]
    macs = task_macs(arch, width, input_shape)
    stem = "CIFAR stem (full resolution)" if cifar else "ImageNet stem (stride 4)"
    if cifar:
        note = f"; the paper's width 64 costs {64 ** 2 // width ** 2}x more"
    else:
        note = "" if fitting else "; over budget: training takes longer, a GPU helps"
    return arch, width, (f"ResNet-18 with the {stem} for {h}x{w} images, width {width}: ~{macs / 1e6:.0f} M "
                         f"multiply-adds per image (budget {TASK_MACS_BUDGET / 1e6:.0f} M{note})")


def default_recipe(*, labeled: int, input_shape: Sequence[int], num_classes: int,
                   pool_size: Optional[int] = None) -> Recipe:
    """The training settings for ``labeled`` training labels of samples of ``input_shape``
    ((C, H, W) images or (D,) vectors) in ``num_classes`` classes (``pool_size``: the pool's
    sample count, used only to say how much of it the WAE sees). Every key of the returned
    :attr:`Recipe.overrides` is a :class:`RunConfig` field, explained in :attr:`Recipe.reasons`.
    Raises ValueError for a count below 1 (2 for classes) or a shape that is neither."""
    shape = tuple(int(v) for v in input_shape)
    if int(labeled) < 1:
        raise ValueError(f"the recipe needs at least one labeled sample, got {labeled}")
    if int(num_classes) < 2:
        raise ValueError(f"the recipe needs at least 2 classes, got {num_classes}")
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (D,) with positive sizes, got {shape}")
    if pool_size is not None and int(pool_size) < int(labeled):
        raise ValueError(f"pool_size {pool_size} is smaller than the labeled count {labeled}")
    labeled = int(labeled)
    o: Dict[str, Any] = {}
    why: Dict[str, str] = {}

    def choose(key: str, value: Any, reason: str) -> None:
        o[key] = value
        why[key] = reason

    images = len(shape) == 3
    if images:
        arch, width, reason = _task_learner(shape)
        choose("arch", arch, reason)
        choose("width", width, "first-stage width of the ResNet (see arch)")
    else:
        choose("arch", "mlp", f"vectors of {shape[0]} features: an MLP task learner (two hidden layers)")
        choose("width", MLP_WIDTH, "hidden width of the MLP")
    choose("optimizer", "adam", "Adam trains a fresh network from a few hundred labels without lr tuning "
                                "(SGD at the paper's lr 0.1 does not learn from a small seed set)")
    choose("lr", 1e-3, "Adam's standard learning rate")
    choose("lr_schedule", "cosine", "cosine decay to 0 over the step budget")
    choose("milestones", [], "no step decay (cosine schedule)")
    choose("weight_decay", 5e-4, "L2 regularisation against over-fitting a small labeled set")
    batch = BATCH_SIZE
    choose("batch_size", batch, f"{batch} samples per step (the whole labeled set when smaller)")
    passes = math.ceil(EPOCHS_OF_STEPS * labeled / batch)
    steps = int(min(max(passes, MIN_STEPS), MAX_STEPS))
    bound = (" (at least" if steps == MIN_STEPS else " (at most" if steps == MAX_STEPS else "")
    bound = f"{bound} {steps} steps)" if bound else ""
    choose("steps", steps, f"a step budget instead of a number of epochs (old default 100, paper 200): "
                           f"{EPOCHS_OF_STEPS} passes over {labeled} labels{bound}, "
                           f"~{steps * batch / labeled:.0f} epochs")
    if images:
        c, h, w = shape
        pad = crop_padding(shape)
        if c == 3:
            choose("augment", "crop+flip", f"random translation (pad {pad} px, crop back to {h}x{w}) and "
                                           "horizontal flips: colour images (photographs) are mirror-symmetric")
        else:
            choose("augment", "crop", f"random translation (pad {pad} px, crop back to {h}x{w}); no flips for "
                                      f"{c}-channel images (characters, digits, documents are not mirror-symmetric)")
        choose("wae_variant", "conv32", "the 32x32 VAAL WAE" + ("" if (h, w) == (32, 32) else
                                        f" ({h}x{w} images are resized to 32x32 for it, as the VAAL authors did "
                                        "for ImageNet)"))
        choose("wae_width", WAE_WIDTH, f"first conv width {WAE_WIDTH} of the WAE (the paper's 128 costs ~35x more per "
                                       "iteration); it only has to tell labeled from unlabeled samples apart")
    else:
        choose("augment", "none", "no augmentation for vectors")
        choose("wae_variant", "mlp", "an MLP WAE for vectors")
        choose("wae_width", MLP_WIDTH, f"hidden width {MLP_WIDTH} of the MLP WAE")
    choose("wae_batch_size", batch, f"{batch} labeled + {batch} unlabeled samples per WAE iteration")
    seen = "" if pool_size is None else f" (pool of {int(pool_size)})"
    choose("wae_iterations", WAE_ITERATIONS, f"a fixed {WAE_ITERATIONS} WAE + discriminator iterations instead of "
                                             f"100 epochs of the labeled + unlabeled subset{seen}")
    return Recipe(o, why)


def _help() -> str:
    example = default_recipe(labeled=300, input_shape=(1, 28, 28), num_classes=10)
    return ("default training recipe (without --preset), chosen from the data at init and printed there:\n"
            f"  Adam lr 1e-3, cosine schedule, weight decay 5e-4, batch {BATCH_SIZE}; steps = {EPOCHS_OF_STEPS} "
            f"passes over the labels, {MIN_STEPS}..{MAX_STEPS};\n"
            f"  images: ResNet-18 that fits ~{TASK_MACS_BUDGET / 1e6:.0f} M multiply-adds per image (CIFAR stem "
            "width 32/16 for small images, ImageNet stem\n"
            "  width 32/16 for larger), random translation (+ flips for colour images), the 32x32 WAE at width "
            f"{WAE_WIDTH}, {WAE_ITERATIONS} WAE iterations;\n"
            f"  vectors: MLP width {MLP_WIDTH}, MLP WAE. Every value can be changed with --set KEY=VALUE.\n"
            "  e.g. 300 labels of 1x28x28 images in 10 classes:\n"
            + "\n".join("  " + line for line in example.lines()))


RECIPE_HELP: str = _help()
"""What ``tavaal init --help`` shows about the default recipe (argparse epilog, raw formatting)."""
