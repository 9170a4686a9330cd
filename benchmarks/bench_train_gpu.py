"""One CIFAR-10-preset active-learning cycle: accelerated training vs the plain fp32 loop, same run.

Run::

    python benchmarks/bench_train_gpu.py                        # CUDA if available, else a tiny CPU variant
    python benchmarks/bench_train_gpu.py --out benchmarks/results/train-gpu-$(date +%F).md --json r.json
    python -m pytest benchmarks/bench_train_gpu.py -s            # the same as a (GPU-only) test

What is timed, per mode (the cifar10 preset: ResNet-18 width 64 + Ranker, conv32 WAE with
128 base channels, d = 64, 5-layer 512-wide discriminator, batch 128, 5,000 labeled, an
unlabeled subset of 10,000; the preset's 200 epochs scaled down to ``--steps`` optimisation
steps and ``--wae-iterations`` WAE/D iterations):

1. ``train_task_models`` (TA-VAAL: ranking loss), crop+flip augmentation;
2. ``train_adversarial_models`` (rank-conditioned WAE + D);
3. scoring the subset with ``predict`` (Ranker output and mu).

Modes: **plain** = ``precision="fp32", accel=False`` (the original loop: batches gathered,
normalised and augmented on the CPU, moved per batch, losses read every step) and
**accelerated** = the defaults on CUDA (bf16 autocast, channels_last, data and
augmentation on the device, losses read every 50 steps). Both run in the same process on
the same generated data (random uint8 images and labels: speed does not depend on the
pixels), after a short warm-up of each mode; ``torch.backends.cudnn.benchmark`` is on for
both. The report gives seconds per phase, the ratio plain / accelerated, the final losses
of both (sanity: finite, similar) and the machine (``lscpu | head``, ``uptime``, GPU).

Without CUDA a tiny variant runs (2,000 images, width 16, a few steps) comparing explicit
bf16 autocast with fp32 on the CPU -- it only shows the mechanism works; the GPU number is
the one that matters.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tavaal.config import resolve_config  # noqa: E402
from tavaal.data.bundle import ArrayDataset  # noqa: E402
from tavaal.data.defaults import CIFAR10_MEAN, CIFAR10_STD, build_augment  # noqa: E402
from tavaal.training import (build_adversarial_models, build_task_models, predict,  # noqa: E402
                             train_adversarial_models, train_task_models)

MODES = {"plain": {"precision": "fp32", "accel": False}, "accelerated": {"precision": "auto", "accel": True}}
CPU_MODES = {"plain": {"precision": "fp32", "accel": False}, "accelerated": {"precision": "bf16", "accel": True}}


def _sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> Dict[str, str]:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "lscpu": "\n".join(_sh("lscpu").splitlines()[:10]), "uptime": _sh("uptime")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = str(torch.version.cuda)
        info["nvidia-smi"] = _sh("nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm "
                                 "--format=csv,noheader")
    return info


def synthetic_cifar(n: int, seed: int = 0):
    """(train ArrayDataset of n random 3x32x32 uint8 images, crop+flip augmentation)."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    targets = torch.randint(0, 10, (n,), generator=g).numpy()
    dataset = ArrayDataset(data, targets, CIFAR10_MEAN, CIFAR10_STD)
    augment = build_augment("crop+flip", "crop+flip", (3, 32, 32), CIFAR10_MEAN, CIFAR10_STD, padding=4)
    return dataset, augment


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_cycle(mode: Dict, dataset, augment, labeled, unlabeled, *, device: str, steps: int, wae_iterations: int,
              overrides: Dict, seed: int = 0) -> Dict[str, float]:
    """One cycle in ``mode``; returns seconds per phase and the final losses."""
    config = resolve_config("cifar10", dict(overrides, steps=steps, wae_iterations=wae_iterations, device=device,
                                            lr_schedule="cosine", **mode))
    torch.manual_seed(seed)
    task = build_task_models(config, (3, 32, 32), 10, with_ranker=True)
    adversarial = build_adversarial_models(config, (3, 32, 32), rank_conditioned=True)
    out: Dict[str, float] = {}
    _sync(device)
    t0 = time.perf_counter()
    history = train_task_models(task, dataset, labeled, config, ranker_loss="ranking", augment=augment,
                                seed=seed, device=device)
    _sync(device)
    t1 = time.perf_counter()
    losses = train_adversarial_models(adversarial, dataset, labeled, unlabeled, config, task=task, seed=seed,
                                      device=device)
    _sync(device)
    t2 = time.perf_counter()
    adversarial.train(False)
    scored = predict(dataset, unlabeled, backbone=task.backbone, ranker=task.ranker, outputs=("rank",),
                     batch_size=config.score_batch_size, device=device)
    scored.update(predict(dataset, unlabeled, wae=adversarial.wae, outputs=("mu",),
                          batch_size=config.score_batch_size, device=device))
    _sync(device)
    t3 = time.perf_counter()
    out.update(task_s=t1 - t0, wae_d_s=t2 - t1, score_s=t3 - t2, total_s=t3 - t0,
               task_loss=history["task_loss"], ranker_loss=history["ranker_loss"], **losses,
               scores_finite=float(bool(torch.isfinite(scored["rank"]).all() and torch.isfinite(scored["mu"]).all())))
    return out


def benchmark(device: Optional[str] = None, steps: Optional[int] = None, wae_iterations: Optional[int] = None,
              labeled_size: int = 5000, subset: int = 10000, warmup: int = 10, seed: int = 0) -> Dict:
    """Run both modes (warm-up, then timed) and return the results with their ratios."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.startswith("cuda")
    if gpu:
        torch.backends.cudnn.benchmark = True
        n, overrides, modes = 50000, {}, MODES
        steps, wae_iterations = steps or 300, wae_iterations or 300
    else:  # tiny CPU variant: shows the mechanism, not the GPU speed-up
        n, overrides, modes = 2000, {"width": 16, "wae_width": 16, "disc_hidden": 64, "batch_size": 64}, CPU_MODES
        labeled_size, subset = min(labeled_size, 500), min(subset, 1000)
        steps, wae_iterations, warmup = steps or 8, wae_iterations or 8, min(warmup, 2)
    dataset, augment = synthetic_cifar(n, seed)
    perm = np.random.default_rng(seed).permutation(n)
    labeled, unlabeled = perm[:labeled_size], perm[labeled_size:labeled_size + subset]
    kw = dict(device=device, overrides=overrides, seed=seed)
    for mode in modes.values():  # warm-up: cudnn autotuning, allocator, device copy of the data
        run_cycle(mode, dataset, augment, labeled, unlabeled, steps=warmup, wae_iterations=warmup, **kw)
    results = {name: run_cycle(mode, dataset, augment, labeled, unlabeled, steps=steps,
                               wae_iterations=wae_iterations, **kw) for name, mode in modes.items()}
    ratio = {k: results["plain"][k] / max(results["accelerated"][k], 1e-12)
             for k in ("task_s", "wae_d_s", "score_s", "total_s")}
    note = ("" if gpu else "CPU tiny variant (no CUDA here): 2,000 images, width 16, explicit bf16 autocast vs "
            "fp32; channels_last and device-resident data are CUDA-only. Not the GPU measurement.")
    return {"device": device, "modes": modes, "steps": steps, "wae_iterations": wae_iterations,
            "labeled": int(labeled_size), "subset": int(subset), "images": n, "results": results,
            "ratio_plain_over_accelerated": ratio, "note": note, "machine": machine()}


def to_markdown(report: Dict) -> str:
    r, ratio = report["results"], report["ratio_plain_over_accelerated"]
    lines = [f"# Training speed: accelerated vs plain fp32 ({report['device']})", ""]
    if report["note"]:
        lines += [f"**Note:** {report['note']}", ""]
    lines += [f"One cifar10-preset cycle: {report['labeled']:,} labeled, subset {report['subset']:,}, "
              f"{report['steps']} task steps, {report['wae_iterations']} WAE/D iterations, "
              f"{report['images']:,} generated 3x32x32 images. Modes: {json.dumps(report['modes'])}.", "",
              "| phase | plain (s) | accelerated (s) | plain / accelerated |", "|---|---|---|---|"]
    for key, label in (("task_s", "task learner + Ranker"), ("wae_d_s", "WAE + discriminator"),
                       ("score_s", "scoring the subset"), ("total_s", "total")):
        lines.append(f"| {label} | {r['plain'][key]:.2f} | {r['accelerated'][key]:.2f} | {ratio[key]:.2f}x |")
    lines += ["", "Final losses (sanity): " + "; ".join(
        f"{m}: task {r[m]['task_loss']:.3f}, ranker {r[m]['ranker_loss']:.3f}, WAE {r[m]['wae_loss']:.3f}, "
        f"D {r[m]['discriminator_loss']:.3f}" for m in ("plain", "accelerated")), "", "Machine:", "", "```"]
    lines += [f"{k}: {v}" for k, v in report["machine"].items() if k != "lscpu"]
    lines += [report["machine"].get("lscpu", ""), "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", help="cuda (default when available) or cpu (tiny variant)")
    p.add_argument("--steps", type=int, help="task-learner steps per mode (GPU default 300)")
    p.add_argument("--wae-iterations", type=int, help="WAE/D iterations per mode (GPU default 300)")
    p.add_argument("--labeled", type=int, default=5000)
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--out", help="write the markdown report here")
    p.add_argument("--json", help="write the raw results here")
    args = p.parse_args(argv)
    report = benchmark(args.device, args.steps, args.wae_iterations, args.labeled, args.subset)
    text = to_markdown(report)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA torch")
def test_train_gpu_speed():
    """GPU only (no timing threshold): both modes train to finite losses; the ratio is reported."""
    report = benchmark()
    print(to_markdown(report))
    for mode in ("plain", "accelerated"):
        res = report["results"][mode]
        assert np.isfinite(res["task_loss"]) and np.isfinite(res["wae_loss"]) and res["scores_finite"] == 1.0
    assert report["ratio_plain_over_accelerated"]["total_s"] > 0


if __name__ == "__main__":
    sys.exit(main())
