"""The training settings of a work directory: a :class:`~tavaal.config.RunConfig` resolved at
``init`` (preset, flags, ``--set KEY=VALUE``) and saved in ``workdir.json`` / ``config.json``."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence

import torch

from ..config import RunConfig, parse_key_values, resolve_config
from .errors import LoopError

__all__ = ["resolve_settings", "NOT_SETTINGS", "parse_settings", "apply_settings", "check_device", "resolve_device"]

NOT_SETTINGS = ("dataset", "data_dir", "dataset_options", "methods", "trials", "cycles", "initial")
"""RunConfig fields a work directory does not take (the pool and the labels define the data;
one train command is one cycle; ``--method`` chooses the method)."""


def resolve_settings(preset: Optional[str], config: Optional[RunConfig], overrides: Optional[Dict[str, Any]],
                     method: Optional[str]) -> RunConfig:
    """The validated RunConfig of a new work directory: ``config``, or ``preset`` (default: the
    RunConfig defaults) with ``overrides`` (None values ignored); ``method`` is the one method
    it trains for. Raises :class:`LoopError` for fields of :data:`NOT_SETTINGS`, invalid values
    and more than one method."""
    if config is not None and (preset is not None or overrides):
        raise LoopError("give a RunConfig or a preset/overrides, not both")
    overrides = dict(overrides or {})
    fixed = sorted(k for k in overrides if k in NOT_SETTINGS)
    if fixed:
        raise LoopError(f"{', '.join(fixed)} do not apply to a work directory (the pool and the labels define "
                        "the data; one train command is one cycle)")
    try:
        if config is None:
            base = resolve_config(preset, None) if preset else RunConfig()
            config = RunConfig.from_dict({**base.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
        if method is not None:
            config = dataclasses.replace(config, methods=[method])
        config = dataclasses.replace(config, dataset="workdir", data_dir=None, dataset_options={}, trials=1)
        config.validate()
    except (ValueError, TypeError) as exc:
        raise LoopError(f"invalid settings: {exc}") from None
    check_device(config.device)
    if len(config.methods) != 1:
        raise LoopError(f"a work directory trains for one method at a time, got {config.methods}")
    return config


def parse_settings(items: Optional[Sequence[str]]) -> Dict[str, Any]:
    """``--set KEY=VALUE`` items -> {field: value} (:func:`tavaal.config.parse_key_values`). Raises
    :class:`LoopError` for an item without ``=``."""
    try:
        return parse_key_values(items, "--set")
    except ValueError as exc:
        raise LoopError(str(exc)) from None


def apply_settings(config: RunConfig, changes: Dict[str, Any]) -> RunConfig:
    """``config`` with the settings ``changes`` (RunConfig fields) applied and validated.
    Raises :class:`LoopError` for unknown fields, fields of :data:`NOT_SETTINGS` and invalid
    values."""
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(k for k in changes if k not in fields)
    if unknown:
        raise LoopError(f"--set: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a training setting "
                        f"(RunConfig fields: {', '.join(sorted(fields - set(NOT_SETTINGS)))})")
    fixed = sorted(k for k in changes if k in NOT_SETTINGS)
    if fixed:
        raise LoopError(f"--set: {', '.join(fixed)} cannot change in a work directory (use --method for the method)")
    try:
        changed = RunConfig.from_dict({**config.to_dict(), **changes})
        changed.validate()
    except (ValueError, TypeError) as exc:
        raise LoopError(f"invalid settings: {exc}") from None
    return changed


def check_device(device: Optional[str]) -> None:
    """LoopError (one line) unless ``device`` (None: not given) is ``auto``, ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps`` and the installed torch can use it."""
    if device is None or device in ("auto", "cpu"):
        return
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise LoopError("--device mps: this torch has no usable MPS (Apple GPU) backend; use --device cpu or auto")
        return
    name, _, index = device.partition(":")
    if name != "cuda" or (index and not index.isdigit()):
        raise LoopError(f"--device {device!r} is not a device: use auto, cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        raise LoopError(f"--device {device}: this torch ({torch.__version__}) cannot use CUDA (a CPU build or no "
                        "GPU visible); use --device cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise LoopError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                        f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")


def resolve_device(device: Optional[str]) -> str:
    """The torch device a command runs on: ``auto`` (or None) is ``cuda`` when this torch sees a
    GPU, else ``mps`` when available, else ``cpu``; anything else is checked by
    :func:`check_device` and returned as given."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    check_device(device)
    return device
