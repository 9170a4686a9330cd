"""Image folders: images/s read vs images/s scored, so the bottleneck of scoring a folder is visible.

    python benchmarks/bench_image_read.py [--images 600] [--size 224] [--batch 64]
        [--device cpu|cuda] [--out benchmarks/results/image-read-<device>.md]

Writes ``--images`` JPEGs (smooth random content, 256 x 256, quality 90) to a temporary folder,
then measures, each on its own:

* read, CPU decode: ``ImageFolderSource.iter_batches`` (Pillow decode + bilinear resize to
  ``--size``) in the calling process and in :func:`tavaal.data.sources.images.decode_workers`
  worker processes (one per core but one);
* read, GPU decode: :func:`tavaal.data.sources.gpu_jpeg.decode_jpegs` (nvJPEG), where it is
  available (a GPU with torchvision), the files read by the calling process;
* scored: a ResNet-18 (ImageNet stem; :class:`tavaal.models.task.ResNet18ImageNet`) forward on
  ``--device`` from uint8 batches already in memory (normalised there; bf16 autocast on CUDA),
  the images/s that scoring could consume.

The report says which rate bounds the pipeline (the smallest of the best read rate and the score
rate). Only the standard library, numpy, Pillow and torch are needed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tavaal.data.sources.gpu_jpeg import decode_jpegs, gpu_jpeg_unavailable  # noqa: E402
from tavaal.data.sources.images import ImageFolderSource, decode_workers  # noqa: E402
from tavaal.models.task import ResNet18ImageNet  # noqa: E402


def write_jpegs(root: Path, n: int, side: int = 256, seed: int = 0) -> None:
    """n smooth random RGB JPEGs (upsampled noise: realistic entropy for the decoder)."""
    g = np.random.default_rng(seed)
    for k in range(n):
        small = g.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((side, side), Image.BILINEAR)
        img.save(root / f"img_{k:05d}.jpg", quality=90)


def rate_cpu_read(root: Path, size: int, batch: int, workers: int) -> float:
    src = ImageFolderSource(root, (3, size, size))
    t = time.perf_counter()
    seen = sum(int(x.shape[0]) for _, x in src.iter_batches(batch, num_workers=workers))
    return seen / (time.perf_counter() - t)


def rate_gpu_read(root: Path, size: int, batch: int) -> float:
    files = sorted(str(p) for p in root.glob("*.jpg"))
    decode_jpegs(files[:batch], (size, size))  # warm-up (nvJPEG handles, kernels)
    torch.cuda.synchronize()
    t = time.perf_counter()
    seen = 0
    for s in range(0, len(files), batch):
        good, _, _ = decode_jpegs(files[s:s + batch], (size, size))
        seen += len(good)
    torch.cuda.synchronize()
    return seen / (time.perf_counter() - t)


def rate_score(size: int, batch: int, device: str, batches: int) -> float:
    model = ResNet18ImageNet(num_classes=10).to(device).eval()
    x8 = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255

    def step():
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            model((x8.float() - mean) / std)

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(batches):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - t)


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    gpu = f"; GPU {torch.cuda.get_device_name(0)}" if device == "cuda" else ""
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{cpu}, {cores} usable cores (load average {load}){gpu}; torch {torch.__version__}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--score-batches", type=int, default=None, help="batches timed for the score rate "
                    "(default: 20 on CUDA, 2 on the CPU)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(__file__).resolve().parent / "results" / f"image-read-{args.device}.md"
    rates = {}
    with tempfile.TemporaryDirectory(prefix="tavaal-image-read-") as tmp:
        root = Path(tmp)
        write_jpegs(root, args.images)
        workers = decode_workers()
        rates["read, CPU decode, in-process"] = rate_cpu_read(root, args.size, args.batch, 0)
        if workers > 0:
            rates[f"read, CPU decode, {workers} worker process(es)"] = rate_cpu_read(root, args.size, args.batch,
                                                                                    workers)
        why = gpu_jpeg_unavailable()
        if why is None:
            rates["read, GPU decode (nvJPEG)"] = rate_gpu_read(root, args.size, args.batch)
    score_batches = args.score_batches or (20 if args.device == "cuda" else 2)
    rates[f"scored, ResNet-18 on {args.device}"] = rate_score(args.size, args.batch, args.device, score_batches)
    read_best = max(v for k, v in rates.items() if k.startswith("read"))
    score = next(v for k, v in rates.items() if k.startswith("scored"))
    bound = "reading (decode)" if read_best < score else "scoring (the model)"
    lines = [f"# Image folder: read vs scored ({args.images} JPEGs 256x256 -> {args.size}x{args.size}, "
             f"batch {args.batch})", "", f"Machine: {machine(args.device)}", "",
             f"Command: `python benchmarks/bench_image_read.py --images {args.images} --size {args.size} "
             f"--batch {args.batch} --device {args.device}`", "", "| path | images/s |", "|---|---|"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in rates.items()]
    lines += ["", f"Bottleneck: **{bound}** (best read {read_best:,.0f}/s vs scored {score:,.0f}/s)."]
    if why is not None:
        lines += ["", f"GPU decode not measured: {why}."]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"rates": rates, "bottleneck": bound, "gpu_decode": why,
                                                    "machine": machine(args.device), "args": vars(args)},
                                                   indent=1, default=str))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
