"""Run configuration: one dataclass, the paper's presets (Table 1) and their resolution.

Where the paper and the authors' code disagree, the default follows the paper and the code's
choice is an option (see docs/paper-vs-code.md). The presets fill every field the paper gives;
command-line flags override presets; anything neither sets keeps the dataclass default.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

METHODS = ("random", "entropy", "mcdropout", "coreset", "lloss", "lloss2", "vaal", "tavaal")
"""Selection methods. ``lloss`` is Learning Loss (margin loss), ``lloss2`` the paper's
"learning loss_v2" (Learning Loss trained with the ranking loss of eq. 1)."""


@dataclass
class RunConfig:
    """Everything that determines an active-learning run (saved as ``RUN_DIR/config.json``)."""

    # data
    dataset: str = "moons"
    data_dir: Optional[str] = None
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    # the active-learning protocol
    methods: List[str] = field(default_factory=lambda: ["tavaal"])
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
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: List[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    eta: float = 1.0
    """Weight of the Ranker loss in L = L_T + eta L_R."""
    ranker_detach_fraction: float = 0.6
    """After epoch ``int(fraction * epochs)`` (0-based, strictly after) the Ranker no longer
    back-propagates into the backbone (paper §7.2 and code: epoch 120 of 200)."""
    ranker_interm_dim: int = 128
    ranker_for_all: bool = False
    """Reproduce the official code's bug B1: every method trains the backbone with the Ranker."""
    margin: float = 1.0

    # conditional WAE + discriminator (eqs. 3-6)
    latent_dim: int = 64
    wae_width: int = 128
    """First conv width of the WAE (128 in the official code), or its hidden width for vectors."""
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
    disc_rank_input: str = "normalized"
    """What D sees as r: "normalized" (sigmoid(r), the paper) or "raw" (the code, bug B2)."""
    vae_steps: int = 1
    disc_steps: int = 1
    wae_shuffle: bool = True
    """Shuffle the WAE batches (paper/VAAL); False = sequential as the TA-VAAL code (B11)."""
    wae_augment: bool = False

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

    def resolved_subset(self) -> int:
        return 10 * self.budget if self.subset is None else int(self.subset)

    def resolved_wae_batch_size(self) -> int:
        return int(self.wae_batch_size or self.batch_size)

    def validate(self) -> None:
        """Raise ValueError with an actionable message for inconsistent settings."""
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
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
        if not 0.0 <= self.ranker_detach_fraction <= 1.0:
            raise ValueError("--ranker-detach-fraction must be in [0, 1]")
        choices = {"optimizer": ("sgd", "adam"), "disc_rank_input": ("normalized", "raw"),
                   "score_mode": ("eval", "train"), "kld_reduction": ("mean", "sum"),
                   "coreset_metric": ("euclidean", "cosine"), "keep_checkpoints": ("last", "all"),
                   "arch": ("auto", "resnet18-cifar", "resnet18-imagenet", "mlp")}
        for name, allowed in choices.items():
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
PRESETS: Dict[str, Dict[str, Any]] = {
    "cifar10": dict(dataset="cifar10", latent_dim=64, lr=0.1, wae_lr=5e-4, disc_lr=5e-4, eta=1.0,
                    adversary_weight=1.0, beta=1.0, batch_size=128, epochs=200, initial=1000,
                    budget=1000, cycles=10, subset=10000, milestones=[160], weight_decay=5e-3,
                    optimizer="sgd", arch="resnet18-cifar", trials=5),
    "cifar100": dict(dataset="cifar100", latent_dim=64, lr=0.1, wae_lr=5e-4, disc_lr=5e-4, eta=1.0,
                     adversary_weight=1.0, beta=1.0, batch_size=128, epochs=200, initial=2000,
                     budget=2000, cycles=10, subset=20000, milestones=[160], weight_decay=5e-3,
                     optimizer="sgd", arch="resnet18-cifar", trials=5),
    "cifar10-imb": dict(dataset="cifar10-imb", latent_dim=64, lr=0.1, wae_lr=5e-4, disc_lr=5e-4,
                        eta=1.0, adversary_weight=1.0, beta=1.0, batch_size=128, epochs=200,
                        initial=1000, budget=1000, cycles=5, subset=10000, milestones=[160],
                        weight_decay=5e-3, optimizer="sgd", arch="resnet18-cifar", trials=5),
    "caltech101": dict(dataset="caltech101", latent_dim=128, lr=0.01, wae_lr=1e-4, disc_lr=1e-4,
                       eta=0.2, adversary_weight=15.0, beta=1.0, batch_size=16, epochs=200,
                       initial=1000, budget=500, cycles=10, subset=5000, milestones=[160],
                       weight_decay=5e-3, optimizer="sgd", arch="resnet18-imagenet", trials=5),
    # §4.1: 3-layer MLP task learner with Adam lr 0.1, Ranker on its mid layer, 2-layer MLP
    # WAE encoder/decoder and discriminator, Adam 0.01, 100 epochs, 20 initial, +10 per stage.
    "moons": dict(dataset="moons", arch="mlp", width=32, optimizer="adam", lr=0.1,
                  weight_decay=0.0, milestones=[], epochs=100, batch_size=32, initial=20, budget=10,
                  cycles=5, subset=0, latent_dim=8, wae_width=32, wae_lr=0.01, disc_lr=0.01,
                  disc_layers=2, disc_hidden=32, wae_epochs=100, eta=1.0, trials=3,
                  num_threads=1),
    # CPU-sized: a narrow ResNet-18 on scikit-learn's 8x8 digits, minutes on 2 cores.
    "digits": dict(dataset="digits", arch="resnet18-cifar", width=16, optimizer="sgd", lr=0.05,
                   weight_decay=5e-4, milestones=[24], epochs=30, batch_size=64, initial=100,
                   budget=100, cycles=4, subset=500, latent_dim=16, wae_width=16, wae_lr=5e-4,
                   disc_lr=5e-4, disc_layers=5, disc_hidden=128, wae_epochs=6, trials=1),
}


def resolve_config(preset: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None) -> RunConfig:
    """Dataclass defaults <- preset <- overrides (None values in overrides are ignored)."""
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    elif overrides and overrides.get("dataset") in PRESETS:
        values.update(PRESETS[overrides["dataset"]])
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    config = RunConfig.from_dict(values)
    config.validate()
    return config
