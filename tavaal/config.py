"""Run configuration: one dataclass, the paper's presets (Table 1) and their resolution.

Where the paper and the authors' code disagree, the default follows the paper and the code's
choice is an option (see docs/paper-vs-code.md). The presets fill every field the paper gives;
command-line flags override presets; anything neither sets keeps the dataclass default.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .methods import DEFAULT_METHOD, method_names


CHOICES: Dict[str, tuple] = {
    "optimizer": ("sgd", "adam"), "disc_rank_input": ("normalized", "raw"),
    "rank_norm": ("standardized", "sigmoid", "raw"), "lr_schedule": ("multistep", "cosine"),
    "wae_variant": ("auto", "mlp", "conv32", "conv64"), "score_mode": ("eval", "train"),
    "kld_reduction": ("mean", "sum"), "coreset_metric": ("euclidean", "cosine"), "keep_checkpoints": ("last", "all"),
    "arch": ("auto", "resnet18-cifar", "resnet18-imagenet", "mlp", "drn-d-22", "drn-d-small"),
    "precision": ("auto", "fp32", "bf16"), "ranker_mode": ("joint", "probe"), "wae_stop": ("fixed", "plateau"),
    "augment": ("none", "crop", "flip", "crop+flip")}
"""The allowed values of the RunConfig fields with a fixed set of them."""


@dataclass
class RunConfig:
    """Everything that determines an active-learning run (saved as ``RUN_DIR/config.json``)."""

    # data
    dataset: str = "moons"
    data_dir: Optional[str] = None
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    # the active-learning protocol
    methods: List[str] = field(default_factory=lambda: [DEFAULT_METHOD])
    """Selection methods: names of the registry (:mod:`tavaal.methods`)."""
    trials: int = 1
    cycles: int = 5
    initial: int = 20
    budget: int = 10
    subset: Optional[int] = None
    """Size of the random unlabeled subset scored each cycle (paper's subset method).
    None = 10 x budget (the paper); 0 = the whole unlabeled pool."""
    seed: int = 0
    device: str = "cpu"
    fresh_model_each_cycle: bool = True
    """True: new task learner every cycle (official TA-VAAL code); False: keep training it."""

    # task learner + Ranker (Algorithm 1, eq. 2)
    arch: str = "auto"
    width: int = 64
    """First-stage width of the ResNets; hidden width of the MLP task learner."""
    epochs: int = 100
    steps: Optional[int] = None
    """Fixed number of optimisation steps per cycle (batches drawn from an endless, seeded
    shuffle of the labeled set), instead of ``epochs`` passes over it. With steps the learning
    rate schedule (``lr_schedule``) is stepped after every step and ``milestones`` count steps."""
    lr_schedule: str = "multistep"
    """"multistep" (x ``lr_gamma`` at each milestone) or "cosine" (cosine decay to 0 over the
    epochs or steps)."""
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: List[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    augment: str = "none"
    """Training augmentation of the task learner on image pools of the labeling loop: "none",
    "crop" (random translation: pad by 1/8 of the shorter side, crop back), "flip"
    (horizontal), "crop+flip"."""
    eta: float = 1.0
    """Weight of the Ranker loss in L = L_T + eta L_R."""
    ranker_detach_fraction: float = 0.6
    """After epoch ``int(fraction * epochs)`` (0-based, strictly after) the Ranker no longer
    back-propagates into the backbone (paper §7.2 and code: epoch 120 of 200)."""
    ranker_mode: str = "probe"
    """"probe" (default): the Ranker trains on detached stage outputs from the first step, so it
    never changes the task learner (under the same seed the backbone is random's own, and a
    comparison credits a method for its picks only); "joint": the paper's training, the Ranker
    loss reaches the backbone until ``ranker_detach_fraction`` (benchmarks/results/ablation-ranker-mode.md)."""
    ranker_interm_dim: int = 128
    ranker_for_all: bool = False
    """Reproduce the official code's bug B1: every method trains the backbone with the Ranker."""
    margin: float = 1.0

    # conditional WAE + discriminator (eqs. 3-6)
    latent_dim: int = 64
    wae_variant: str = "auto"
    """WAE architecture: "auto" (MLP for vectors, conv for images), "mlp", "conv32", "conv64"."""
    wae_width: int = 128
    """First conv width of the WAE (128 in the official code), or its hidden width for vectors."""
    wae_input_size: Optional[int] = None
    """None: the WAE encodes images at their own size. N: images are resized to N x N for the
    WAE (the paper's "downscaled input" for large frames)."""
    wae_lr: float = 5e-4
    disc_lr: float = 5e-4
    wae_epochs: float = 100.0
    wae_iterations: Optional[int] = None
    """None = int((labeled + unlabeled_used) * wae_epochs / wae_batch_size), the code's rule."""
    wae_batch_size: Optional[int] = None
    """None = batch_size."""
    beta: float = 1.0
    adversary_weight: float = 1.0
    """lambda of L_VAE = L_trans + lambda L_adv."""
    kld_reduction: str = "mean"
    disc_layers: int = 5
    disc_hidden: int = 512
    rank_norm: str = "standardized"
    """How the raw Ranker output becomes r for the decoder (and D): "standardized"
    (sigmoid((raw - mean) / std) with mean/std of the labeled set fixed per cycle; invariant to
    the Ranker's offset and scale), "sigmoid" (the paper's literal reading; saturates when the
    Ranker's offset drifts) or "raw" (no normalisation). See tavaal.models.ranker."""
    disc_rank_input: str = "normalized"
    """What D sees as r: "normalized" (the ``rank_norm`` r, the paper) or "raw" (the code, bug B2)."""
    vae_steps: int = 1
    disc_steps: int = 1
    wae_shuffle: bool = True
    """Shuffle the WAE batches (paper/VAAL); False = sequential as the TA-VAAL code (B11)."""
    wae_augment: bool = False
    disc_diagnostics: bool = True
    """Record each cycle whether D learned (tavaal.training.diagnostics): ROC AUC of D's
    labeled-vs-unlabeled separation (on the rows it trained on, and on ``disc_holdout`` rows),
    the spread of its scores over the scored pool and, for TA-VAAL, of r."""
    disc_holdout: float = 0.0
    """Fraction of the labeled and of the unlabeled rows kept out of WAE/D training (a seeded
    draw of its own) to measure D on rows it did not train on; 0 = none."""
    wae_stop: str = "fixed"
    """"fixed": ``wae_iterations`` (or the official rule); "plateau": stop when D's AUC on the
    ``disc_holdout`` rows (checked every tenth of the fixed count) has not improved for
    ``wae_patience`` checks, after at most ``wae_cap_factor`` x the fixed count."""
    wae_patience: int = 3
    wae_cap_factor: float = 4.0

    # selection
    score_mode: str = "eval"
    """Mode of WAE/D at scoring: "eval" (default) or "train" (the code, bug B10)."""
    mc_samples: int = 10
    mc_dropout: float = 0.3
    coreset_metric: str = "euclidean"
    score_batch_size: int = 512
    keep_checkpoints: str = "last"
    """"last": keep the newest cycle's models per trial; "all": one file per cycle."""
    num_workers: int = 0
    num_threads: Optional[int] = None
    """torch intra-op threads during the run (None = torch's default). Tiny models (the moons
    toy) run several times faster on one thread than on two busy cores."""
    precision: str = "auto"
    """Training and live-scoring arithmetic: "auto" (bf16 autocast on CUDA, fp32 on CPU),
    "fp32" (never autocast; the opt-out) or "bf16" (autocast on any device)."""
    accel: bool = True
    """On CUDA: channels_last, in-memory data gathered and augmented on the device, losses read
    from the device once per epoch / 50 steps (tavaal.training.accel). No effect on CPU."""

    def resolved_subset(self) -> int:
        return 10 * self.budget if self.subset is None else int(self.subset)

    def resolved_wae_batch_size(self) -> int:
        return int(self.wae_batch_size or self.batch_size)

    def validate(self) -> None:
        """Raise ValueError with an actionable message for inconsistent settings."""
        known = method_names()
        unknown = [m for m in self.methods if m not in known]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(known)}")
        if not self.methods:
            raise ValueError("no method given: use --method or --methods")
        positive = {"trials": self.trials, "cycles": self.cycles, "initial": self.initial,
                    "budget": self.budget, "epochs": self.epochs, "batch_size": self.batch_size,
                    "latent_dim": self.latent_dim, "mc_samples": self.mc_samples}
        for name, value in positive.items():
            if value is None or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.subset is not None and self.subset < 0:
            raise ValueError(f"--subset must be >= 0 (0 = whole pool), got {self.subset}")
        if self.subset and self.subset < self.budget:
            raise ValueError(f"--subset {self.subset} is smaller than --budget {self.budget}: "
                             "the subset must hold at least one budget of candidates")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"--steps must be >= 1 (or unset to train for --epochs), got {self.steps}")
        if not 0.0 <= self.ranker_detach_fraction <= 1.0:
            raise ValueError("--ranker-detach-fraction must be in [0, 1]")
        if not 0.0 <= self.disc_holdout < 1.0:
            raise ValueError(f"disc_holdout must be in [0, 1), got {self.disc_holdout}")
        if self.wae_stop == "plateau" and self.disc_holdout <= 0.0:
            raise ValueError("wae_stop 'plateau' watches D on held-out rows: set disc_holdout > 0 (e.g. 0.2)")
        if self.wae_patience < 1 or self.wae_cap_factor < 1.0:
            raise ValueError(f"wae_patience must be >= 1 and wae_cap_factor >= 1, got {self.wae_patience}, "
                             f"{self.wae_cap_factor}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# Paper Table 1 (and §4.1 for the toy). Values the paper leaves open come from the official
# code (facts file §1.3, §3). weight_decay: the paper's text says 0.005, the code 5e-4;
# the paper wins by default (docs/paper-vs-code.md).
_TABLE1 = dict(latent_dim=64, lr=0.1, wae_lr=5e-4, disc_lr=5e-4, eta=1.0, adversary_weight=1.0, beta=1.0,
               batch_size=128, epochs=200, milestones=[160], weight_decay=5e-3, optimizer="sgd",
               arch="resnet18-cifar", trials=5)
# The moons toy of §4.1: 3-layer MLP task learner (Ranker on its mid layer), 2-layer MLP WAE
# encoder/decoder and discriminator, Adam, 100 epochs, 20 initial, +10 per stage.
_MOONS = dict(dataset="moons", arch="mlp", width=32, optimizer="adam", weight_decay=0.0, milestones=[], epochs=100,
              batch_size=32, initial=20, budget=10, cycles=5, subset=0, latent_dim=8, wae_width=32, wae_lr=0.01,
              disc_lr=0.01, disc_layers=2, disc_hidden=32, wae_epochs=100, eta=1.0, num_threads=1)
# §4.4 + Table 1: DRN-D-22, SGD 1e-3, WAE/D Adam 1e-4, eta 0.1, lambda 25, beta 1, batch 4,
# 100 epochs. Not in the paper: momentum 0.9 / weight decay 1e-4 (DRN's recipe).
_DRN = dict(arch="drn-d-22", width=64, latent_dim=128, optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=1e-4,
            milestones=[], wae_lr=1e-4, disc_lr=1e-4, eta=0.1, adversary_weight=25.0, beta=1.0, batch_size=4,
            epochs=100, score_batch_size=8)
PRESETS: Dict[str, Dict[str, Any]] = {
    "cifar10": dict(_TABLE1, dataset="cifar10", initial=1000, budget=1000, cycles=10, subset=10000),
    "cifar100": dict(_TABLE1, dataset="cifar100", initial=2000, budget=2000, cycles=10, subset=20000),
    "cifar10-imb": dict(_TABLE1, dataset="cifar10-imb", initial=1000, budget=1000, cycles=5, subset=10000),
    "caltech101": dict(_TABLE1, dataset="caltech101", latent_dim=128, lr=0.01, wae_lr=1e-4, disc_lr=1e-4, eta=0.2,
                       adversary_weight=15.0, batch_size=16, initial=1000, budget=500, cycles=10, subset=5000,
                       arch="resnet18-imagenet"),
    # Stable toy recipe (the default for moons): a fixed number of Adam steps with a cosine
    # schedule at lr 0.01 instead of 100 epochs at lr 0.1 (which diverges in some cycles), and
    # fewer WAE/D iterations. Measured: see README / benchmarks.
    "moons": dict(_MOONS, lr=0.01, lr_schedule="cosine", steps=200, wae_iterations=200, trials=5),
    # §4.1 exactly, Adam lr 0.1. NOISY: the task learner diverges in some cycles.
    "moons-paper": dict(_MOONS, lr=0.1, trials=3),
    # Stable CPU recipe on scikit-learn's 8x8 digits: an MLP task learner (two hidden layers of
    # 128, on the flattened image, no augmentation: pixel shifts hurt an MLP) trained for a fixed
    # 300 Adam steps with a cosine schedule, whatever the labeled-set size; MLP WAE and
    # discriminator. About a second per cycle.
    "digits": dict(dataset="digits", dataset_options={"augment": "none"}, arch="mlp", width=128, optimizer="adam",
                   lr=1e-3, lr_schedule="cosine", weight_decay=0.0, milestones=[], epochs=30, steps=300, batch_size=32,
                   initial=40, budget=40, cycles=6, subset=0, latent_dim=16, wae_variant="mlp", wae_width=128,
                   wae_lr=5e-4, disc_lr=5e-4, disc_layers=5, disc_hidden=128, wae_epochs=6, wae_batch_size=64,
                   trials=5, num_threads=1),
    # The conv path on digits: a narrow ResNet-18 on the 8x8 images with a conv WAE (minutes on
    # 2 cores); fixed SGD steps with a cosine schedule.
    "digits-resnet": dict(dataset="digits", arch="resnet18-cifar", width=16, optimizer="sgd", lr=0.05,
                          lr_schedule="cosine", weight_decay=5e-4, milestones=[], epochs=30, steps=300,
                          batch_size=64, initial=100, budget=100, cycles=4, subset=500, latent_dim=16,
                          wae_width=16, wae_lr=5e-4, disc_lr=5e-4, disc_layers=5, disc_hidden=128,
                          wae_epochs=6, trials=3),
    # Cityscapes: 200 initial / 200 per stage, 412x412 crops (the reader's default crop_size); the
    # WAE sees whole frames resized to 412x412. Not in the paper: 5 cycles, subset 10 x budget, 4
    # loader workers (PNG decoding of 1024x2048 frames would otherwise starve a GPU).
    "cityscapes": dict(_DRN, dataset="cityscapes", initial=200, budget=200, cycles=5, subset=2000, wae_input_size=412,
                       trials=3, num_workers=4, dataset_options={"crop_size": 412}),
    # The same recipe for a user's images + masks folder (sizes are the user's: set --initial/--budget).
    "segfolder": dict(_DRN, dataset="segfolder"),
    # CPU demo: generated street scenes (64x128), the small DRN, minutes on 2 cores.
    "segshapes": dict(dataset="segshapes", arch="drn-d-small", width=16, optimizer="adam", lr=2e-3,
                      weight_decay=0.0, milestones=[], epochs=12, batch_size=8, initial=16, budget=16, cycles=3,
                      subset=96, latent_dim=32, wae_width=8, wae_lr=1e-3, disc_lr=1e-3, disc_layers=5,
                      disc_hidden=64, wae_epochs=2, eta=0.1, adversary_weight=1.0, score_batch_size=32, trials=1),
}


def resolve_config(preset: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None) -> RunConfig:
    """Dataclass defaults <- preset <- overrides (None values in overrides are ignored). An
    ``epochs`` override without ``steps`` trains for epochs even where the preset sets steps."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    name = preset if preset is not None else (overrides or {}).get("dataset")
    values: Dict[str, Any] = copy.deepcopy(PRESETS.get(name, {}))
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if "epochs" in given and "steps" not in given:
        values["steps"] = None  # an explicit --epochs replaces a preset's fixed step count
    values.update(given)
    config = RunConfig.from_dict(values)
    config.validate()
    return config


def parse_key_values(items: Optional[Sequence[str]], flag: str) -> Dict[str, Any]:
    """Command-line ``KEY=VALUE`` items -> {key: value}; values are Python literals (``0.01``,
    ``[10, 20]``, ``True``) or else strings; ``-`` in keys reads as ``_``. Raises
    :class:`ValueError` (``"FLAG expects KEY=VALUE, got ..."``) for an item without ``=``."""
    values: Dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        values[key.strip().replace("-", "_")] = value
    return values
