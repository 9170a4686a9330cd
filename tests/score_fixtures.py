"""Shared, process-cached trained runs and artifacts for the export/score tests.

Imported by tests/test_export*.py, tests/test_score*.py and tests/test_cpp_scorer.py; every
expensive object (tiny trainings, exports) is built once per test process (lru_cache) in a
temporary directory removed at exit. No tests live here.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

_ROOT = Path(tempfile.mkdtemp(prefix="tavaal-score-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)

MOONS_METHODS = ("tavaal", "vaal", "lloss", "coreset")


@functools.lru_cache(maxsize=None)
def moons_run() -> Path:
    """A 1-cycle moons run of tavaal, vaal, lloss and coreset (MLP models, ~20 s)."""
    from tavaal.config import resolve_config
    from tavaal.experiment import run_experiment

    out = _ROOT / "moons-run"
    cfg = resolve_config("moons", {"methods": list(MOONS_METHODS), "trials": 1, "cycles": 1, "epochs": 5,
                                   "wae_iterations": 20})
    run_experiment(cfg, out, progress=False)
    return out


@functools.lru_cache(maxsize=None)
def digits_run() -> Path:
    """A 1-cycle digits tavaal run (narrow ResNet-18 on 8x8 images)."""
    from tavaal.config import resolve_config
    from tavaal.experiment import run_experiment

    out = _ROOT / "digits-run"
    cfg = resolve_config("digits", {"methods": ["tavaal"], "trials": 1, "cycles": 1, "epochs": 1, "wae_iterations": 2,
                                    "arch": "resnet18-cifar", "width": 8, "wae_width": 8, "subset": 300, "initial": 50, "budget": 20})
    run_experiment(cfg, out, progress=False)
    return out


@functools.lru_cache(maxsize=None)
def artifacts(run: str, method: str = "tavaal", exporter: str = "legacy") -> Path:
    """Export (method, trial 0) of ``run`` ("moons" or "digits"); digits uses ``exporter``."""
    from tavaal.export import export_run

    run_dir = moons_run() if run == "moons" else digits_run()
    out = _ROOT / f"art-{run}-{method}-{exporter}"
    export_run(run_dir, out, method=method, onnx_exporter=exporter)
    return out


@functools.lru_cache(maxsize=None)
def digits_bundle():
    from tavaal.data import load_dataset

    return load_dataset("digits", seed=0)


@functools.lru_cache(maxsize=None)
def moons_bundle():
    from tavaal.data import load_dataset

    return load_dataset("moons", seed=0)


@functools.lru_cache(maxsize=None)
def pool_npy(run: str) -> Path:
    """The normalised train split of the run's dataset as a float32 .npy pool."""
    bundle = digits_bundle() if run == "digits" else moons_bundle()
    x, _ = bundle.train.get_batch(None)
    path = _ROOT / f"{run}-pool.npy"
    np.save(path, x.numpy().astype(np.float32))
    return path


def labeled_rows(run: str, method: str = "tavaal") -> np.ndarray:
    """The labeled set the run trained its last cycle on."""
    import json

    run_dir = moons_run() if run == "moons" else digits_run()
    with open(run_dir / method / "trial_0" / "labeled_cycle_00.json") as f:
        return np.asarray(json.load(f), dtype=np.int64)


def scratch(name: str) -> Path:
    path = _ROOT / "scratch" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
