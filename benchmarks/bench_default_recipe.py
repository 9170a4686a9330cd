"""The default recipe (no ``--preset``) against the old default: one loop cycle from a few hundred labels.

For each pool, the same seed labels and the same held-back test images, this runs, as a user
would, ``tavaal init WORKDIR --pool POOL --labels SEED.csv --holdout H`` and one
``tavaal train WORKDIR``:

* **new** -- this checkout (``tavaal.training.recipe.default_recipe``, chosen at init);
* **old** -- the code before the recipe (``--old-code``, default ``/work/baseline``: the same CLI
  with that package first on ``PYTHONPATH``), whose default is the paper's CIFAR recipe (SGD lr 0.1,
  100 epochs, ResNet-18 width 64, WAE width 128 for 100 epochs of the data). A full old cycle takes
  ~30 minutes on two cores, so it is CAPPED: ``--old-epochs`` task epochs (``--epochs``) and
  ``--old-wae-iterations`` WAE iterations (``--wae-iterations``); the time a full old cycle would take
  is extrapolated from the measured time per epoch and per WAE iteration and reported separately.

Recorded per pool and recipe: the loop's holdout accuracy (the ``H`` held-out seed labels, as
``tavaal status`` reports it), the accuracy on the test images (labeled images that are not in
the pool and are never used for any choice), and the wall time of ``train``.

Pools (written once under ``benchmarks/.cache/default-recipe/``, git-ignored):

* ``digits`` -- scikit-learn's bundled 8x8 digits (1,797 images, 10 classes) written AS-IS as 8x8
  grayscale PNGs (pixel values 0..16 scaled to 0..255): 1,497 pool images, 300 test images;
* ``shapes28`` -- generated 28x28 grayscale images of 10 shape classes (circle, square, triangle,
  diamond, plus, cross, star, hexagon, arrow, crescent; random position, size, rotation, stroke,
  fill, contrast polarity, clutter lines, blur and pixel noise), rendered with Pillow at 4x and
  downsampled: 2,000 pool images, 1,000 test images;
* ``shapes64rgb`` -- the same classes as 64x64 colour images (random hues, shapes brighter than the
  background): 2,000 + 1,000.

Run::

    nice -n 10 env OMP_NUM_THREADS=2 python benchmarks/bench_default_recipe.py            # all pools
    python benchmarks/bench_default_recipe.py --pools shapes28 --labeled 300 --no-old

Results: ``benchmarks/results/default-recipe-cpu.{json,md}`` (with the CPU model and the load average
before and after each run: the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "default-recipe"
RESULTS = ROOT / "benchmarks" / "results"
SHAPES = ("circle", "square", "triangle", "diamond", "plus", "cross", "star", "hexagon", "arrow", "crescent")
POOLS = {"digits": dict(size=8, channels=1, pool=1497, test=300),
         "shapes28": dict(size=28, channels=1, pool=2000, test=1000),
         "shapes64rgb": dict(size=64, channels=3, pool=2000, test=1000)}


# ------------------------------------------------------------------------------------------ pools
def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> List[Tuple[float, float]]:
    def ring(n: int, rad: float, offset: float = 0.0):
        return [(cx + rad * math.cos(angle + offset + 2 * math.pi * k / n),
                 cy + rad * math.sin(angle + offset + 2 * math.pi * k / n)) for k in range(n)]

    if kind == "square":
        return ring(4, r, math.pi / 4)
    if kind == "diamond":  # a rhombus: alternate vertices at 0.6 r
        return [(cx + (x - cx) * (0.6 if i % 2 else 1.0), cy + (y - cy) * (0.6 if i % 2 else 1.0))
                for i, (x, y) in enumerate(ring(4, r))]
    if kind == "triangle":
        return ring(3, r)
    if kind == "hexagon":
        return ring(6, r)
    if kind == "star":
        return [p for pair in zip(ring(5, r), ring(5, 0.42 * r, math.pi / 5)) for p in pair]
    if kind == "arrow":
        c, s = math.cos(angle), math.sin(angle)
        outline = [(-1, -0.25), (0.2, -0.25), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.25), (-1, 0.25)]
        return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in outline]
    raise KeyError(kind)


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def render_shape(kind: str, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, channels) uint8 image of shape class ``kind``: random position, size,
    rotation, stroke width, filled or outlined, colours (grayscale: random contrast polarity; colour:
    random hues, the shape brighter than the background),
    0-2 clutter lines, optional blur and Gaussian pixel noise; drawn at 4x and downsampled."""
    from PIL import Image, ImageDraw, ImageFilter

    s = 4 * size
    if channels == 3:
        bg, fg = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
        while _luma(fg) - _luma(bg) < 80:  # shapes brighter than their background, any hues
            bg, fg = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
        mode = "RGB"
    else:
        b, f = int(rng.integers(0, 100)), int(rng.integers(150, 256))
        if rng.random() < 0.5:
            b, f = 255 - b, 255 - f
        bg, fg, mode = b, f, "L"
    img = Image.new(mode, (s, s), bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 3))):
        ends = [tuple(float(v) for v in rng.uniform(0, s, 2)) for _ in range(2)]
        colour = fg if channels == 1 else tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line(ends, fill=colour, width=max(1, s // 40))
    r = float(rng.uniform(0.22, 0.4)) * s
    cx, cy = (float(v) for v in rng.uniform(1.05 * r, s - 1.05 * r, 2))
    angle = float(rng.uniform(0, 2 * math.pi))
    stroke = int(max(2, rng.uniform(0.04, 0.1) * s))
    filled = rng.random() < 0.5
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg if filled else None, outline=fg, width=stroke)
    elif kind == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
        ox, oy = cx + 0.45 * r * math.cos(angle), cy + 0.45 * r * math.sin(angle)
        draw.ellipse([ox - 0.85 * r, oy - 0.85 * r, ox + 0.85 * r, oy + 0.85 * r], fill=bg)
    elif kind in ("plus", "cross"):  # plus: arms within 27 deg of the axes; cross: 45..72 deg
        tilt = (angle % (math.pi / 2)) * 0.3 + (0.0 if kind == "plus" else math.pi / 4)
        for k in range(2):
            t = tilt + k * math.pi / 2
            dx, dy = r * math.cos(t), r * math.sin(t)
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=fg, width=int(1.5 * stroke))
    else:
        draw.polygon(_shape_points(kind, cx, cy, r, angle), fill=fg if filled else None, outline=fg, width=stroke)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8))))
    arr = np.asarray(img).astype(np.float32)
    arr = np.clip(arr + rng.normal(0.0, rng.uniform(2, 20), arr.shape), 0, 255).astype(np.uint8)
    return arr if arr.ndim == 3 else arr[:, :, None]


def shapes_images(n: int, size: int, channels: int, seed: int) -> Tuple[np.ndarray, List[str]]:
    """``n`` generated shape images (n, size, size, channels) uint8 and their class names."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(SHAPES), n)
    return np.stack([render_shape(SHAPES[k], size, channels, rng) for k in classes]), [SHAPES[k] for k in classes]


def digits_images() -> Tuple[np.ndarray, List[str]]:
    """scikit-learn's 8x8 digits as (1797, 8, 8, 1) uint8 (0..16 scaled to 0..255) and their digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, [str(int(t)) for t in digits.target]


def write_images(folder: Path, images: np.ndarray, names: Sequence[str]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / name)


def build_pool(name: str, labeled: int, seed: int) -> Dict[str, Path]:
    """Write pool ``name`` once: ``pool/`` (PNG files), ``test/`` + ``test.csv`` (held-back labeled
    images), ``seed.csv`` (``labeled`` random pool images with their labels). Returns the paths."""
    spec = POOLS[name]
    base = CACHE / f"{name}-{labeled}-{seed}"
    paths = {"pool": base / "pool", "test": base / "test", "test_labels": base / "test.csv",
             "seed": base / "seed.csv"}
    if paths["seed"].exists():
        return paths
    if base.exists():
        shutil.rmtree(base)
    total = spec["pool"] + spec["test"]
    if name == "digits":
        images, labels = digits_images()
    else:
        images, labels = shapes_images(total, spec["size"], spec["channels"], seed=1000 + seed)
    order = np.random.default_rng(seed).permutation(len(labels))[:total]
    pool_idx, test_idx = order[:spec["pool"]], order[spec["pool"]:]
    pool_names = [f"img_{i:05d}.png" for i in range(len(pool_idx))]
    test_names = [f"test_{i:05d}.png" for i in range(len(test_idx))]
    write_images(paths["pool"], images[pool_idx], pool_names)
    write_images(paths["test"], images[test_idx], test_names)
    paths["test_labels"].write_text("id,label\n" + "".join(f"{n},{labels[i]}\n" for n, i in zip(test_names, test_idx)))
    chosen = np.sort(np.random.default_rng(seed + 1).choice(len(pool_idx), size=labeled, replace=False))
    paths["seed"].write_text("id,label\n" + "".join(f"{pool_names[k]},{labels[pool_idx[k]]}\n" for k in chosen))
    return paths


# ------------------------------------------------------------------------------------------ runs
def _env(code: Optional[Path], threads: int) -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(code) if code is not None else str(ROOT)
    return env


def _cli(args: List[str], code: Optional[Path], threads: int, log) -> Tuple[float, str]:
    """The ``tavaal ARGS`` command with ``code`` first on the path; returns (seconds, stdout)."""
    started = time.perf_counter()
    command = [sys.executable, "-c", "import sys; from tavaal.cli import main; sys.exit(main())", *args]
    proc = subprocess.run(command, env=_env(code, threads), cwd=str(code or ROOT),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    log.write(f"$ tavaal {' '.join(args)}   [{code or ROOT}, {seconds:.1f} s]\n{proc.stdout}{proc.stderr}\n")
    log.flush()
    if proc.returncode != 0:
        raise RuntimeError(f"tavaal {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def evaluate_test(workdir: Path, test: Path, test_labels: Path) -> Dict:
    """Accuracy of ``workdir``'s newest task learner on the test images (child process: runs with
    the package of the code that trained it). Prints one JSON line."""
    import torch
    from PIL import Image

    from tavaal.checkpoint import load_cycle_models

    state = json.loads((workdir / "state.json").read_text())
    meta_file = next(p for p in (workdir / "workdir.json", workdir / "meta.json") if p.exists())  # new / old name
    meta = json.loads(meta_file.read_text())
    record = state["cycles"][-1]
    models = load_cycle_models(workdir / record["checkpoint"])
    c = int(meta["input_shape"][0])
    mean = torch.tensor(meta["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(meta["std"], dtype=torch.float32).view(-1, 1, 1)
    index = {name: k for k, name in enumerate(state["classes"])}
    rows = [line.split(",") for line in test_labels.read_text().splitlines()[1:]]
    def pixels(name: str) -> np.ndarray:  # (C, H, W) uint8, decoded as the pool's channels
        with Image.open(test / name) as img:
            arr = np.asarray(img.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    x = torch.from_numpy(np.stack([pixels(name) for name, _ in rows])).float().div(255.0)
    x = (x - mean) / std
    y = torch.tensor([index[label] for _, label in rows])
    backbone = models.task.backbone.eval()
    with torch.no_grad():
        predicted = torch.cat([backbone(x[i:i + 256])[0].argmax(1) for i in range(0, len(x), 256)])
    result = {"test_accuracy": float((predicted == y).float().mean()), "test_images": len(rows),
              "holdout_accuracy": record.get("holdout_accuracy"), "holdout": record.get("holdout"),
              "trained_on": record.get("trained_on"), "train_seconds": record.get("train_seconds"),
              "adversarial_seconds": record.get("adversarial_seconds"), "seconds": record.get("seconds"),
              "config": json.loads((workdir / "config.json").read_text())}
    print(json.dumps(result))
    return result


def load_average() -> List[float]:
    return [round(v, 2) for v in os.getloadavg()]


def run_one(name: str, paths: Dict[str, Path], recipe: str, args, log) -> Dict:
    """init + one train (+ test evaluation) of ``recipe`` ("new" or "old") on pool ``name``."""
    code = None if recipe == "new" else Path(args.old_code)
    workdir = CACHE / "work" / f"{name}-{recipe}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    init = ["init", str(workdir), "--pool", str(paths["pool"]), "--labels", str(paths["seed"]),
            "--holdout", str(args.holdout), "--seed", str(args.seed)]
    if recipe == "old":
        init += ["--epochs", str(args.old_epochs), "--wae-iterations", str(args.old_wae_iterations)]
    else:
        init += [part for item in args.set for part in ("--set", item)]
    load_before = load_average()
    init_seconds, init_out = _cli(init, code, args.threads, log)
    train_seconds, _ = _cli(["train", str(workdir), "--no-progress"], code, args.threads, log)
    load_after = load_average()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--evaluate", str(workdir),
                           str(paths["test"]), str(paths["test_labels"])], env=_env(code, args.threads),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"test evaluation of {workdir} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    config = result.pop("config")
    result.update({"pool": name, "recipe": recipe, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "command": "tavaal " + " ".join(init[:1] + ["WORKDIR"] + init[2:]),
                   "code": str(code or ROOT), "init_seconds": round(init_seconds, 1),
                   "train_wall_seconds": round(train_seconds, 1), "load_before": load_before, "load_after": load_after,
                   "init_output": init_out.strip().splitlines(),
                   "settings": {k: config[k] for k in ("arch", "width", "optimizer", "lr", "lr_schedule",
                                                       "weight_decay", "epochs", "steps", "batch_size", "wae_width",
                                                       "wae_variant", "wae_iterations", "wae_epochs", "augment",
                                                       "latent_dim") if k in config}})
    if recipe == "old":
        result["full_cycle_estimate_seconds"] = round(full_old_cycle_estimate(result, config, args), 0)
    return result


def full_old_cycle_estimate(result: Dict, config: Dict, args) -> float:
    """Seconds a full old-default cycle (``epochs`` 100, the official WAE rule) would take: the
    measured time per task epoch and per WAE iteration times the full counts."""
    per_epoch = result["train_seconds"] / args.old_epochs
    per_iteration = result["adversarial_seconds"] / args.old_wae_iterations
    trained, subset = int(result["trained_on"]), int(config["subset"] or 0) or 10 * int(config["budget"])
    wae_full = max(1, int((trained + subset) * float(config["wae_epochs"]) / int(config["wae_batch_size"]
                                                                                  or config["batch_size"])))
    return per_epoch * 100 + per_iteration * wae_full


# ------------------------------------------------------------------------------------------ report
def machine() -> Dict:
    model = platform.processor() or ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                     model)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def merged(results: List[Dict]) -> List[Dict]:
    """``results`` plus those of earlier runs in the JSON for other (pool, recipe) pairs, so that
    pools can be run one invocation at a time."""
    path = RESULTS / "default-recipe-cpu.json"
    ours = {(r["pool"], r["recipe"]) for r in results}
    earlier = json.loads(path.read_text())["results"] if path.exists() else []
    return [r for r in earlier if (r["pool"], r["recipe"]) not in ours] + results


def write_report(results: List[Dict], args, started: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = merged(results)
    info = {"machine": machine(), "started": started, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "threads": args.threads, "labeled": args.labeled, "holdout": args.holdout, "seed": args.seed,
            "old_epochs": args.old_epochs, "old_wae_iterations": args.old_wae_iterations, "results": results}
    (RESULTS / "default-recipe-cpu.json").write_text(json.dumps(info, indent=2) + "\n")
    m = info["machine"]
    lines = ["# The default recipe vs the old default: one loop cycle from a few hundred labels", "",
             f"Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs; load average before/after each "
             f"train below), OMP_NUM_THREADS={args.threads}, `nice -n 10`. This invocation {started} .. "
             f"{info['finished']} (each run's end time is in the JSON).", "",
             f"Per pool: {args.labeled} seed labels, {args.holdout} of them held out by the loop (`--holdout "
             f"{args.holdout}`); test accuracy on labeled images that are not in the pool and were never used "
             "for any choice. `tavaal init WORKDIR --pool POOL --labels SEED.csv --holdout "
             f"{args.holdout} --seed {args.seed}` then `tavaal train WORKDIR`.", "",
             f"- **new**: this checkout, no `--preset` (the recipe of `tavaal.training.recipe`, chosen at init).",
             f"- **old (capped)**: the code before it (`{args.old_code}`), no `--preset` (SGD lr 0.1, ResNet-18 "
             f"width 64, WAE width 128), capped to `--epochs E --wae-iterations N` (E and N of each run in its "
             "settings column; its default is 100 epochs and the official WAE rule, (L + U) x 100 / 128 iterations); "
             "'full old cycle' extrapolates the measured time per epoch and per WAE iteration to the uncapped "
             "counts, on this loaded machine.", "",
             "| pool | recipe | holdout acc | test acc | train wall s | task s | WAE s | load before / after "
             "| settings |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["settings"]
        brief = (f"{s.get('arch')} w{s.get('width')}, {s.get('optimizer')} lr {s.get('lr')} {s.get('lr_schedule')}, "
                 + (f"{s['steps']} steps" if s.get("steps") else f"{s.get('epochs')} epochs")
                 + f", aug {s.get('augment', 'none')}, WAE w{s.get('wae_width')} x{s.get('wae_iterations')}")
        lines.append(f"| {r['pool']} | {r['recipe']} | {_pct(r['holdout_accuracy'])} (n={r['holdout']}) | "
                     f"{_pct(r['test_accuracy'])} (n={r['test_images']}) | {r['train_wall_seconds']} | "
                     f"{r['train_seconds']} | {r['adversarial_seconds']} | {r['load_before'][0]} / "
                     f"{r['load_after'][0]} | {brief} |")
    lines += ["", "| pool | test acc new / old (capped) | train wall new / old capped | full old cycle "
                  "(extrapolated) | "
                  "new / full old time |", "|---|---|---|---|---|"]
    by = {(r["pool"], r["recipe"]): r for r in results}
    for pool in dict.fromkeys(r["pool"] for r in results):
        new, old = by.get((pool, "new")), by.get((pool, "old"))
        if not (new and old):
            continue
        ratio = new["test_accuracy"] / old["test_accuracy"] if old["test_accuracy"] else float("inf")
        full = old.get("full_cycle_estimate_seconds")
        lines.append(f"| {pool} | {_pct(new['test_accuracy'])} / {_pct(old['test_accuracy'])} (x{ratio:.1f}) | "
                     f"{new['train_wall_seconds']} s / {old['train_wall_seconds']} s | {full:.0f} s "
                     f"(~{full / 60:.0f} min) | {new['train_wall_seconds'] / full:.2f} |")
    lines += ["", "Pools: `digits` = scikit-learn's 8x8 digits written as-is as 8x8 grayscale PNGs; `shapes28` = "
              "generated 28x28 grayscale shapes (10 classes); `shapes64rgb` = the same shapes as 64x64 colour images "
              "(random hues); see the script's docstring. The machine was shared with other jobs (load average 4-9 "
              "on 2 cores during these runs), so wall times are several times those of an idle machine. The "
              "resolved new recipe per pool (as `tavaal init` prints it) is in the JSON (`init_output`)."]
    (RESULTS / "default-recipe-cpu.md").write_text("\n".join(lines) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pools", nargs="+", default=list(POOLS), choices=list(POOLS))
    p.add_argument("--labeled", type=int, default=300, help="seed labels per pool")
    p.add_argument("--holdout", type=int, default=50, help="of which held out by the loop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the runs")
    p.add_argument("--old-code", default="/work/baseline", help="checkout of the code before the recipe")
    p.add_argument("--old-epochs", type=int, default=20, help="cap of the old default's 100 task epochs")
    p.add_argument("--old-wae-iterations", type=int, default=5, help="cap of the old default's WAE iterations")
    p.add_argument("--no-old", action="store_true", help="run the new default only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the new default's init (e.g. steps=50 for a quick check of this script)")
    p.add_argument("--evaluate", nargs=3, metavar=("WORKDIR", "TEST", "TEST_CSV"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.evaluate:
        evaluate_test(*(Path(v) for v in args.evaluate))
        return 0
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = []
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "run.log", "a") as log:
        for name in args.pools:
            paths = build_pool(name, args.labeled, args.seed)
            for recipe in ("new",) + (() if args.no_old else ("old",)):
                result = run_one(name, paths, recipe, args, log)
                print(f"{name:12s} {recipe}: holdout {_pct(result['holdout_accuracy'])}, test "
                      f"{_pct(result['test_accuracy'])}, train {result['train_wall_seconds']} s", flush=True)
                results.append(result)
                write_report(results, args, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
