"""Save and rebuild the models of one cycle (checkpoints of :mod:`tavaal.cycle`).

A checkpoint is ``{"format": 1, "spec", "method", "trial", "cycle", "task", "adversarial"}``;
``spec`` (:func:`model_spec`) holds what is needed to rebuild the models, including
``"user_model"`` (``{"factory": "package.module:callable", "kwargs", "taps",
"feature_layer", "weights"}``) for a bring-your-own task model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .config import RunConfig
from .models import build_user_model
from .rundir import read_json, save_torch
from .training import AdversarialModels, TaskModels, build_adversarial_models, build_task_models

CHECKPOINT_FORMAT = 1
SUPPORTED_FORMATS = (1,)


def model_spec(config: RunConfig, training, *, dataset: str, input_shape: Sequence[int], num_classes: int,
               task: str, mean: Optional[Sequence[float]], std: Optional[Sequence[float]],
               user_model: Optional[dict] = None) -> dict:
    """What is needed to rebuild the models of a checkpoint (export reads it): ``config``'s
    architecture fields, what the method trains (``training``: a
    :class:`tavaal.methods.Training`), the data's shape, classes, task and normalisation, and
    the user model's description (None: the built-in learner of ``config.arch``)."""
    return {
        "format": CHECKPOINT_FORMAT, "dataset": dataset, "input_shape": list(input_shape),
        "num_classes": int(num_classes), "task": task, "arch": config.arch, "width": config.width,
        "ranker_interm_dim": config.ranker_interm_dim, "dropout": training.dropout, "with_ranker": training.with_ranker,
        "adversarial": training.adversarial, "latent_dim": config.latent_dim, "wae_width": config.wae_width,
        "wae_input_size": config.wae_input_size, "wae_variant": config.wae_variant,
        "disc_hidden": config.disc_hidden, "disc_layers": config.disc_layers,
        "rank_mode": config.disc_rank_input, "rank_norm": config.rank_norm,
        "mean": None if mean is None else [float(v) for v in np.atleast_1d(mean)],
        "std": None if std is None else [float(v) for v in np.atleast_1d(std)],
        "user_model": None if user_model is None else dict(user_model),
    }


@dataclass
class CycleModels:
    """The trained models of one (method, trial, cycle) and the spec they were built from."""

    spec: dict
    method: str
    trial: int
    cycle: int
    task: TaskModels
    adversarial: Optional[AdversarialModels]


def save_cycle_models(path: Path, models: CycleModels) -> Path:
    """Write ``models`` as a checkpoint (atomically) that :func:`load_cycle_models` reads."""
    save_torch(Path(path), {"format": 1, "spec": models.spec, "method": models.method, "trial": models.trial,
                            "cycle": models.cycle, "task": models.task.state_dict(),
                            "adversarial": None if models.adversarial is None else models.adversarial.state_dict()})
    return Path(path)


def load_cycle_models(path: Path, map_location="cpu") -> CycleModels:
    """Load ``checkpoint.pt``; raises ValueError for an unknown format, FileNotFoundError if absent."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("format") not in SUPPORTED_FORMATS:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r} is not supported by this tavaal "
                         f"(supports {SUPPORTED_FORMATS})")
    spec = state["spec"]
    config = _architecture(spec)
    input_shape = tuple(spec["input_shape"])
    backbone = None
    if spec.get("user_model"):  # bring-your-own model: rebuilt from its import path (weights from the checkpoint)
        backbone = build_user_model(spec["user_model"], input_shape, load_weights=False)
    task = build_task_models(config, input_shape, spec["num_classes"], with_ranker=spec["with_ranker"],
                             dropout=spec["dropout"], task=spec.get("task", "classification"), backbone=backbone)
    task.load_state_dict(state["task"])
    task.eval()
    adversarial = None
    if spec["adversarial"] is not None and state.get("adversarial") is not None:
        adversarial = build_adversarial_models(config, input_shape, rank_conditioned=spec["adversarial"] == "rank")
        adversarial.load_state_dict(state["adversarial"])
        adversarial.train(False)
    return CycleModels(spec, state["method"], int(state["trial"]), int(state["cycle"]), task, adversarial)


def _architecture(spec: dict) -> RunConfig:
    """The architecture fields of ``spec`` as the RunConfig the model builders read (keys that
    older checkpoints lack: the values those versions used)."""
    return RunConfig(arch=spec["arch"], width=spec["width"], ranker_interm_dim=spec["ranker_interm_dim"],
                     rank_norm=spec.get("rank_norm", "sigmoid"), latent_dim=spec["latent_dim"],
                     wae_width=spec["wae_width"], wae_variant=spec.get("wae_variant", "auto"),
                     wae_input_size=spec.get("wae_input_size"), disc_hidden=spec["disc_hidden"],
                     disc_layers=spec["disc_layers"], disc_rank_input=spec["rank_mode"])


def run_config(run_dir: Path) -> RunConfig:
    """The resolved RunConfig saved in ``run_dir/config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a tavaal run directory (no config.json)")
    return RunConfig.from_dict(read_json(path))
