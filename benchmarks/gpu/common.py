"""Shared helpers of the GPU benchmarks (benchmarks/gpu/bench_*.py, run by scripts/gpu_check.py).

Each benchmark is a plain script: ``python benchmarks/gpu/bench_X.py --out X.json [--device
cuda|cpu] [--scale S]``. It times ours and a baseline side by side in the same process and
writes a JSON object ``{"benchmark": ..., "device": ..., "records": [record, ...]}`` where a
record (see :func:`record`) carries both times, their ratio and the issue's goal. ``--device
cpu --scale 0.001`` (the gpu-check dry run) exercises the same code paths on tiny inputs; its
numbers mean nothing. Records are written as soon as they exist, so a benchmark killed by a
timeout still leaves what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import torch


def parse_args(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--scale", type=float, default=1.0, help="problem-size factor (dry runs: 0.001)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda needs a GPU with CUDA torch")
    return args


def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(n * scale)))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], device: str, rounds: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds, the device synchronised around each call."""
    for _ in range(warmup):
        fn()
    sync(device)
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        sync(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def record(name: str, metric: str, ours: float, baseline: Optional[float], baseline_name: str, unit: str = "s",
           goal: Optional[str] = None, goal_met: Optional[bool] = None, **extra) -> dict:
    """One measured line: ``ratio`` = baseline / ours (> 1: ours is faster) when both exist."""
    ratio = (baseline / ours) if (baseline is not None and ours) else None
    return {"name": name, "metric": metric, "ours": ours, "baseline": baseline, "baseline_name": baseline_name,
            "unit": unit, "speedup_vs_baseline": ratio, "goal": goal, "goal_met": goal_met, **extra}


class Results:
    """Accumulates records and rewrites the JSON file after each one."""

    def __init__(self, path: str, benchmark: str, device: str, scale: float):
        self.path = Path(path)
        self.data = {"benchmark": benchmark, "device": device, "scale": scale, "machine": machine(device),
                     "records": [], "errors": []}
        self.flush()

    def add(self, rec: dict) -> None:
        self.data["records"].append(rec)
        self.flush()

    def error(self, where: str) -> None:
        self.data["errors"].append({"where": where, "traceback": traceback.format_exc()[-4000:]})
        self.flush()

    def flush(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def machine(device: str) -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "loadavg": os.getloadavg()}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count,
                    capability=f"{p.major}.{p.minor}")
    return info


def hbm_bandwidth(device: str, nbytes: int = 2 << 30) -> float:
    """Achieved read bandwidth (bytes/s) of a large reduction: the memory floor's denominator."""
    n = nbytes // 4
    x = torch.ones(n, device=device)
    t = median_time(lambda: x.sum(), device, rounds=5, warmup=2)
    del x
    return nbytes / t
