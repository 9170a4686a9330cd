"""Rebuild the models of a cycle checkpoint written by :mod:`tavaal.experiment`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .config import RunConfig
from .models import Discriminator, Ranker, build_task_learner, build_wae
from .training import AdversarialModels, TaskModels

SUPPORTED_FORMATS = (1,)


@dataclass
class CycleModels:
    """The trained models of one (method, trial, cycle) and the spec they were built from."""

    spec: dict
    method: str
    trial: int
    cycle: int
    task: TaskModels
    adversarial: Optional[AdversarialModels]


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
    input_shape = tuple(spec["input_shape"])
    backbone = build_task_learner(input_shape, spec["num_classes"], arch=spec["arch"], width=spec["width"],
                                  dropout=spec["dropout"])
    ranker = Ranker(backbone.stage_channels, interm_dim=spec["ranker_interm_dim"]) if spec["with_ranker"] else None
    task = TaskModels(backbone, ranker)
    task.load_state_dict(state["task"])
    task.eval()
    adversarial = None
    if spec["adversarial"] is not None and state.get("adversarial") is not None:
        conditioned = spec["adversarial"] == "rank"
        wae = build_wae(input_shape, spec["latent_dim"], rank_conditioned=conditioned, base_channels=spec["wae_width"],
                        hidden_dim=spec["wae_width"])
        disc = Discriminator(spec["latent_dim"], hidden_dim=spec["disc_hidden"], num_layers=spec["disc_layers"],
                             rank_conditioned=conditioned)
        adversarial = AdversarialModels(wae, disc, rank_mode=spec["rank_mode"])
        adversarial.load_state_dict(state["adversarial"])
        adversarial.train(False)
    return CycleModels(spec, state["method"], int(state["trial"]), int(state["cycle"]), task, adversarial)


def run_config(run_dir: Path) -> RunConfig:
    """The resolved RunConfig saved in ``run_dir/config.json``."""
    from .rundir import read_json

    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a tavaal run directory (no config.json)")
    return RunConfig.from_dict(read_json(path))
