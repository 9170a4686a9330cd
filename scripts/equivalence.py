#!/usr/bin/env python3
"""Behaviour-equivalence check of a tavaal tree (issue 14: "bit-identical picks, records and
checkpoints before and after a refactor").

Run a fixed set of small configurations through the package's command lines only and write a
canonical digest of everything they record::

    python3 scripts/equivalence.py --code /work/baseline --out RUNS_A --digest A.json
    python3 scripts/equivalence.py --code /work/main     --out RUNS_B --digest B.json
    python3 scripts/equivalence.py --compare A.json B.json [--allow-new-keys]

``--code DIR``: the tree whose ``tavaal`` package runs. Every command is a subprocess with
``cwd=DIR`` started as ``python -m MODULE ARGS`` (through :mod:`runpy`, after removing the
setuptools *editable-install* import hook from ``sys.meta_path``: that hook maps ``tavaal.*`` to
the installed checkout, so a baseline tree would otherwise load the installed tree's compiled
``tavaal._C``). The script refuses to run when ``import tavaal`` does not resolve under DIR.
Threads: ``OMP_NUM_THREADS=MKL_NUM_THREADS=1``; each command runs under ``nice -n 5``.

Configurations (:data:`CONFIGS`): the simulation (``python -m tavaal.train``, ``tavaal
simulate``) on moons with 11 methods, on digits (MLP and the ResNet path) and on generated
street scenes (segmentation); the labeling loop (``python -m tavaal.cli init|train|select|label|
status``) for 2 cycles on digits written as PNG files (tavaal with a holdout count; coreset without;
margin with a holdout fraction, scoring the whole pool)
and on a folder of scenes with masks. Everything that determines a run is pinned on the command
line (preset, methods, seed, protocol sizes, epochs/steps, WAE iterations, device, precision,
holdout).

The digest (per configuration) holds every file the runs write, read by type: ``.json`` parsed,
``.jsonl`` one parsed object per line, ``.csv`` rows (cells as written), ``.txt`` lines, ``.pt``
loaded with ``torch.load(weights_only=True)`` and every tensor replaced by dtype, shape, SHA-256
of its bytes and its first values (so a pickled module path may change, tensor values may not),
``.png`` decoded pixels (SHA-256); plus the exit code of every command and ``tavaal status
--json``. Floats are kept exactly (JSON round-trips Python floats). Strings holding the run or
code directory have it replaced by ``<OUT>`` / ``<CODE>``.

The comparison ignores exactly: the top-level ``meta`` block (tree path, versions, wall times),
and dict keys / CSV columns named in :data:`IGNORED_KEYS` (timestamps and durations) wherever they
occur. With ``--allow-new-keys`` keys present only in the second digest (new files, new record
fields) are listed as notes, not differences; keys missing from the second digest are always
differences. JSON objects (dicts, state dicts) are compared as unordered mappings; lists (picks,
records, CSV rows, to_label.csv) in order. Exit status 1 when any difference is found, 0 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

DIGEST_FORMAT = "tavaal-equivalence-1"
MARKER = ".tavaal-equivalence"
IGNORED_KEYS = frozenset({
    "selection_seconds", "train_seconds", "adversarial_seconds",  # simulation records, shared cycle-0 models
    "seconds", "time", "timings",                                 # loop cycles / batches / merges
    "created",                                                    # loop workdir.json
})
"""Timestamps and durations: the only record fields the comparison skips."""
SKIPPED_SUFFIXES = (".pdf", ".svg", ".log", ".tmp")
SKIPPED_NAMES = frozenset({".lock", MARKER})

# The module every command runs, as ``python -m MODULE`` does, without the editable-install hook.
BOOTSTRAP = (
    "import runpy, sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, '__name__', '') != '_EditableFinder']\n"
    "module = sys.argv[1]\n"
    "sys.argv = [module] + sys.argv[2:]\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)
PROBE = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, '__name__', '') != '_EditableFinder']\n"
    "import json, tavaal, torch\n"
    "info = {'tavaal': tavaal.__file__, 'torch': torch.__version__}\n"
    "try:\n"
    "    from tavaal.ops import api\n"
    "    api._load(); info['ops'] = api.extension_origin(); info['ops_error'] = api.extension_error()\n"
    "except Exception as exc:\n"
    "    info['ops'] = f'unknown ({type(exc).__name__}: {exc})'\n"
    "print(json.dumps(info))\n"
)

# ----------------------------------------------------------------------------- configurations
SIM_COMMON = ["--trials", "1", "--cycles", "2", "--seed", "0", "--device", "cpu", "--precision", "fp32",
              "--no-progress", "--no-plots"]
MOONS = ["--preset", "moons", "--dataset", "moons", "--initial", "20", "--budget", "10", "--subset", "0",
         "--steps", "30", "--epochs", "100", "--batch-size", "32", "--wae-iterations", "20"]
SIMULATIONS: Dict[str, Tuple[str, List[str]]] = {
    # every method on the toy, the default CPU recipe of the moons preset, shorter
    "sim-moons": ("tavaal.train", [*MOONS, "--methods",
                                   "random,entropy,margin,leastconf,coreset,badge,lloss,lloss2,vaal,tavaal,mcdropout",
                                   *SIM_COMMON]),
    # the console command, 2 trials, the task learner kept across cycles, a checkpoint per cycle
    "sim-moons-keep": ("tavaal.cli", ["simulate", *MOONS, "--methods", "random,coreset,tavaal", "--trials", "2",
                                      *SIM_COMMON[2:], "--keep-training", "--set", "keep_checkpoints=all"]),
    "sim-digits": ("tavaal.train", ["--preset", "digits", "--dataset", "digits", "--methods",
                                    "random,entropy,coreset,badge,lloss,tavaal", "--initial", "40", "--budget", "40",
                                    "--subset", "0", "--steps", "40", "--epochs", "30", "--batch-size", "32",
                                    "--wae-iterations", "20", *SIM_COMMON]),
    # the conv path: narrow ResNet-18 + conv WAE on the 8x8 digits
    "sim-digits-resnet": ("tavaal.train", ["--preset", "digits-resnet", "--dataset", "digits", "--methods",
                                           "tavaal,coreset", "--initial", "100", "--budget", "100", "--subset",
                                           "300", "--steps", "4", "--epochs", "30", "--batch-size", "64",
                                           "--wae-iterations", "3", "--set", "width=8", *SIM_COMMON]),
    # segmentation: generated street scenes, the small DRN
    "sim-segshapes": ("tavaal.train", ["--preset", "segshapes", "--dataset", "segshapes", "--methods",
                                       "random,entropy,coreset,tavaal", "--initial", "8", "--budget", "8",
                                       "--subset", "24", "--epochs", "1", "--batch-size", "4",
                                       "--wae-iterations", "2", "--dataset-option", "num_train=40",
                                       "--dataset-option", "num_test=8", "--dataset-option", "image_size=(32,64)",
                                       "--set", "width=8", "--set", "wae_width=8", "--set", "score_batch_size=8",
                                       *SIM_COMMON]),
}

LOOP_CYCLES = 2
DIGITS_POOL, DIGITS_SEED_LABELS = 300, 40
DIGITS_LOOP_FLAGS = ["--preset", "digits", "--seed", "0", "--steps", "30", "--epochs", "30", "--batch-size", "32",
                     "--wae-iterations", "10", "--budget", "20", "--subset", "100", "--device", "cpu",
                     "--set", "num_threads=1", "--set", "precision=fp32"]
LOOPS: Dict[str, Dict[str, Any]] = {
    "loop-digits-tavaal": {"method": "tavaal", "holdout": "10", "budget": "20", "subset": "100"},
    "loop-digits-coreset": {"method": "coreset", "holdout": "0", "budget": "20", "subset": "100"},
    "loop-digits-margin": {"method": "margin", "holdout": "0.25", "budget": "15", "subset": "0"},
}
SEG_CLASSES = ("sky", "road", "building", "car")
SEG_POOL, SEG_SEED_MASKS = 24, 8
SEG_LOOP_FLAGS = ["--preset", "segshapes", "--method", "tavaal", "--holdout", "2", "--crop-size", "24,48",
                  "--seed", "0", "--arch", "drn-d-small", "--width", "8", "--epochs", "1", "--batch-size", "4",
                  "--budget", "4", "--subset", "12", "--latent-dim", "8", "--wae-iterations", "2", "--device", "cpu",
                  "--set", "wae_width=8", "--set", "disc_hidden=16", "--set", "num_threads=1",
                  "--set", "score_batch_size=8", "--set", "precision=fp32"]
SEG_LOOP = "loop-seg-tavaal"
CONFIGS = [*SIMULATIONS, *LOOPS, SEG_LOOP]


# ----------------------------------------------------------------------------- running
class Runner:
    """Runs the commands of one configuration in ``code`` and logs them into ``log``."""

    def __init__(self, python: str, code: Path, log: Path):
        self.python, self.code, self.log = python, code, log
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
                        TAVAAL_REQUIRE_EXT="1")
        self.commands: List[Dict[str, Any]] = []

    def __call__(self, module: str, args: Sequence[str]) -> Tuple[int, str]:
        argv = [str(a) for a in args]
        started = time.time()
        proc = subprocess.run(["nice", "-n", "5", self.python, "-c", BOOTSTRAP, module, *argv], cwd=self.code,
                              env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with open(self.log, "a") as f:
            f.write(f"$ python -m {module} {' '.join(argv)}\n# rc {proc.returncode}, {time.time() - started:.1f} s\n"
                    f"{proc.stdout}{proc.stderr}\n")
        self.commands.append({"command": f"python -m {module} {' '.join(argv)}", "rc": proc.returncode})
        if proc.returncode != 0:
            raise CommandFailed(f"python -m {module} {' '.join(argv)} exited {proc.returncode}:\n"
                                f"{proc.stderr[-3000:]}")
        return proc.returncode, proc.stdout


class CommandFailed(RuntimeError):
    pass


def run_simulation(name: str, runner: Runner, folder: Path) -> None:
    module, args = SIMULATIONS[name]
    runner(module, [*args, "--out", folder / "run"])


def digits_uint8(n: int):
    """The first ``n`` scikit-learn digits as uint8 (n, 8, 8) images (pixel x 15) and labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:n] * 15).astype(np.uint8), d.target[:n].astype(int)


def write_csv(path: Path, header: Sequence[str], rows) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_ids(path: Path) -> List[str]:
    with open(path, newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def run_digits_loop(name: str, runner: Runner, folder: Path) -> Dict[str, Any]:
    """init -> LOOP_CYCLES x (train, select, label from the oracle file) -> status, on PNG digits."""
    from PIL import Image

    spec = LOOPS[name]
    data = folder / "data"
    (data / "pngs").mkdir(parents=True)
    images, targets = digits_uint8(DIGITS_POOL)
    ids = []
    for row, img in enumerate(images):
        ident = f"img_{row:04d}.png"
        Image.fromarray(img, mode="L").save(data / "pngs" / ident)
        ids.append(ident)
    oracle = write_csv(data / "oracle.csv", ["id", "label"], [(i, str(t)) for i, t in zip(ids, targets)])
    seed_rows = range(0, 3 * DIGITS_SEED_LABELS, 3)
    seed = write_csv(data / "seed.csv", ["id", "label"], [(ids[r], str(targets[r])) for r in seed_rows])
    with open(oracle, newline="") as f:  # the annotators answer from the oracle file
        truth = {row["id"]: row["label"] for row in csv.DictReader(f)}
    wd = folder / "wd"
    runner("tavaal.cli", ["init", wd, "--pool", data / "pngs", "--labels", seed, "--method", spec["method"],
                          "--holdout", spec["holdout"], *DIGITS_LOOP_FLAGS])
    for cycle in range(LOOP_CYCLES):
        runner("tavaal.cli", ["train", wd, "--method", spec["method"], "--device", "cpu", "--no-progress"])
        runner("tavaal.cli", ["select", wd, "--budget", spec["budget"], "--method", spec["method"], "--subset",
                              spec["subset"], "--device", "cpu", "--no-progress"])
        asked = read_ids(wd / "to_label.csv")
        returned = write_csv(folder / f"returned_{cycle}.csv", ["id", "label"], [(i, truth[i]) for i in asked])
        runner("tavaal.cli", ["label", wd, returned])
    return {"status": json.loads(runner("tavaal.cli", ["status", wd, "--json"])[1])}


def street_scene(rng, h: int, w: int):
    """A generated RGB scene (h, w, 3) uint8 and its mask (h, w) uint8: sky 0, road 1, buildings
    2, cars 3, 255 (unlabeled) on the horizon line."""
    import numpy as np

    mask = np.zeros((h, w), np.uint8)
    horizon = int(rng.integers(h // 3, h // 2))
    mask[horizon:] = 1
    for _ in range(int(rng.integers(1, 4))):
        x0, bw, bh = int(rng.integers(0, w - 8)), int(rng.integers(6, 16)), int(rng.integers(4, horizon))
        mask[horizon - bh:horizon, x0:x0 + bw] = 2
    for _ in range(int(rng.integers(0, 3))):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(horizon + 1, h - 4))
        mask[y0:y0 + 4, x0:x0 + 10] = 3
    mask[horizon] = 255
    palette = np.array([[110, 160, 230], [90, 90, 90], [170, 120, 80], [200, 30, 30]], np.int16)
    image = palette[np.minimum(mask, 3)] + rng.integers(-20, 21, size=(h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def run_seg_loop(name: str, runner: Runner, folder: Path) -> Dict[str, Any]:
    """init --masks -> LOOP_CYCLES x (train, select, label with the hidden masks) -> status."""
    import numpy as np
    from PIL import Image

    data = folder / "data"
    for sub in ("images", "masks", "seed"):
        (data / sub).mkdir(parents=True)
    rng = np.random.default_rng(7)
    for k in range(SEG_POOL):
        image, mask = street_scene(rng, 32, 64)
        Image.fromarray(image, mode="RGB").save(data / "images" / f"scene_{k:03d}.png")
        Image.fromarray(mask, mode="L").save(data / "masks" / f"scene_{k:03d}.png")
        if k < SEG_SEED_MASKS:
            shutil.copy(data / "masks" / f"scene_{k:03d}.png", data / "seed" / f"scene_{k:03d}.png")
    (data / "classes.txt").write_text("".join(c + "\n" for c in SEG_CLASSES))
    wd = folder / "wd"
    runner("tavaal.cli", ["init", wd, "--pool", data / "images", "--masks", data / "seed", "--classes",
                          f"@{data / 'classes.txt'}", *SEG_LOOP_FLAGS])
    for cycle in range(LOOP_CYCLES):
        runner("tavaal.cli", ["train", wd, "--method", "tavaal", "--device", "cpu", "--no-progress"])
        runner("tavaal.cli", ["select", wd, "--budget", "4", "--method", "tavaal", "--subset", "12", "--device",
                              "cpu", "--no-progress"])
        returned = folder / f"returned_{cycle}"
        returned.mkdir()
        for ident in read_ids(wd / "to_label.csv"):
            stem = Path(ident).stem
            shutil.copy(data / "masks" / f"{stem}.png", returned / f"{stem}.png")
        runner("tavaal.cli", ["label", wd, returned])
    return {"status": json.loads(runner("tavaal.cli", ["status", wd, "--json"])[1])}


def runner_of(name: str) -> Callable[[str, Runner, Path], Optional[Dict[str, Any]]]:
    if name in SIMULATIONS:
        return run_simulation
    return run_digits_loop if name in LOOPS else run_seg_loop


# ----------------------------------------------------------------------------- digesting
class Normaliser:
    """Replaces the run and code directories inside strings with ``<OUT>`` / ``<CODE>``."""

    def __init__(self, out: Path, code: Path):
        self.pairs = sorted({(str(out.resolve()), "<OUT>"), (str(out), "<OUT>"), (str(code.resolve()), "<CODE>"),
                             (str(code), "<CODE>")}, key=lambda p: -len(p[0]))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            for old, new in self.pairs:
                value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {self(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value


def tensor_digest(t) -> Dict[str, Any]:
    import torch

    t = t.detach().cpu().contiguous()
    flat = t.reshape(-1)
    raw = flat.view(torch.uint8) if flat.numel() else flat
    first = flat[:4].to(torch.float64).tolist() if flat.dtype.is_floating_point else flat[:4].tolist()
    return {"__tensor__": str(t.dtype), "shape": list(t.shape),
            "sha256": hashlib.sha256(raw.numpy().tobytes()).hexdigest(), "first": first}


def object_digest(obj: Any) -> Any:
    """A loaded checkpoint as JSON: tensors digested, containers walked, scalars kept."""
    import torch

    if isinstance(obj, torch.Tensor):
        return tensor_digest(obj)
    if isinstance(obj, dict):
        return {str(k): object_digest(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [object_digest(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return {"__object__": type(obj).__name__, "repr": repr(obj)}


def file_digest(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return json.loads(path.read_text())
    if suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if suffix in (".csv", ".tsv"):
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","))
        if not rows:
            return {"header": [], "rows": []}
        return {"header": rows[0], "rows": [dict(zip(rows[0], r)) for r in rows[1:]]}
    if suffix == ".txt":
        return path.read_text().splitlines()
    if suffix == ".pt":
        import torch

        try:
            return object_digest(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # a checkpoint that needs pickled classes is itself a change
            return {"__unloadable__": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if suffix == ".png":
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            pixels = np.asarray(img)
            return {"__image__": img.mode, "shape": list(pixels.shape),
                    "sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
    return {"__bytes__": hashlib.sha256(path.read_bytes()).hexdigest()}


def tree_digest(root: Path) -> Dict[str, Any]:
    """Relative path -> :func:`file_digest` of every file under ``root`` (see the skip lists)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in SKIPPED_NAMES or path.suffix.lower() in SKIPPED_SUFFIXES:
            continue
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):  # temporary files of atomic writes
            continue
        files[str(rel)] = file_digest(path)
    return files


def config_digest(name: str, folder: Path) -> Dict[str, Any]:
    """Every recorded file of one configuration (inputs the script wrote: decoded, for the record)."""
    if name in SIMULATIONS:
        return {"run": tree_digest(folder / "run")}
    digest = {"workdir": tree_digest(folder / "wd"), "inputs": tree_digest(folder / "data")}
    digest["returned"] = {p.name: tree_digest(p) if p.is_dir() else file_digest(p)
                          for p in sorted(folder.glob("returned_*"))}
    return digest


# ----------------------------------------------------------------------------- the run
def probe(python: str, code: Path) -> Dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([python, "-c", PROBE], cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: cannot import tavaal in {code}:\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(info["tavaal"]).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"error: in {code} `import tavaal` resolves to {info['tavaal']}, not the tree under test")
    return info


def prepare_out(out: Path, names: Sequence[str]) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SystemExit(f"error: {out} exists, is not empty and was not made by this script: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("run directories of scripts/equivalence.py\n")
    for name in names:
        if (out / name).exists():
            shutil.rmtree(out / name)


def run_all(code: Path, out: Path, digest_path: Path, names: Sequence[str], python: str,
            rerun: bool = True) -> Dict[str, Any]:
    info = probe(python, code)
    print(f"equivalence: tavaal from {info['tavaal']}, ops {info.get('ops')}", flush=True)
    if rerun:
        prepare_out(out, names)
    normalise = Normaliser(out, code)
    digest: Dict[str, Any] = {"format": DIGEST_FORMAT, "meta": {"code": str(code.resolve()), "out": str(out.resolve()),
                                                                "probe": info, "seconds": {}},
                              "ignored_keys": sorted(IGNORED_KEYS), "configs": {}}
    for name in names:
        folder = out / name
        runner = Runner(python, code, folder / "log.txt")
        started = time.time()
        entry: Dict[str, Any] = {}
        if rerun:
            folder.mkdir(parents=True)
            try:
                extra = runner_of(name)(name, runner, folder)
                entry.update(extra or {})
            except CommandFailed as exc:
                entry["error"] = str(exc).splitlines()[0]
                print(f"  {name}: FAILED: {exc}", file=sys.stderr, flush=True)
            entry["commands"] = runner.commands
            (folder / "commands.json").write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
        else:  # digest existing run directories again
            entry.update(json.loads((folder / "commands.json").read_text()))
        entry["files"] = config_digest(name, folder)
        digest["configs"][name] = normalise(entry)
        digest["meta"]["seconds"][name] = round(time.time() - started, 1)
        print(f"  {name}: {digest['meta']['seconds'][name]:.1f} s{' (error)' if 'error' in entry else ''}",
              flush=True)
    digest_path.parent.mkdir(parents=True, exist_ok=True)
    digest_path.write_text(json.dumps(digest, indent=1, sort_keys=True, allow_nan=True) + "\n")
    print(f"wrote {digest_path}")
    return digest


# ----------------------------------------------------------------------------- comparing
def same_scalar(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def compare(a: Any, b: Any, path: str, diffs: List[str], notes: List[str], allow_new: bool) -> None:
    """Append one line per difference between ``a`` (before) and ``b`` (after) to ``diffs``."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) == {"header", "rows"} == set(b) and isinstance(a["header"], list):  # a CSV file
            compare_header(a["header"], b["header"], f"{path}/header", diffs, notes, allow_new)
            compare(a["rows"], b["rows"], f"{path}/rows", diffs, notes, allow_new)
            return
        if "__tensor__" in a and "__tensor__" in b:
            if (a["__tensor__"], a["shape"], a["sha256"]) != (b["__tensor__"], b["shape"], b["sha256"]):
                diffs.append(f"{path}: tensor differs: A {a['__tensor__']}{a['shape']} first {a['first']} | "
                             f"B {b['__tensor__']}{b['shape']} first {b['first']}")
            return
        for key in sorted(set(a) | set(b)):
            if key in IGNORED_KEYS:
                continue
            sub = f"{path}/{key}"
            if key not in b:
                diffs.append(f"{sub}: only in A (missing after): {short(a[key])}")
            elif key not in a:
                (notes if allow_new else diffs).append(f"{sub}: only in B (new): {short(b[key])}")
            else:
                compare(a[key], b[key], sub, diffs, notes, allow_new)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: length {len(a)} -> {len(b)}")
        for k, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{k}]", diffs, notes, allow_new)
        return
    if not same_scalar(a, b):
        diffs.append(f"{path}: A {short(a)} | B {short(b)}")


def compare_header(a: List[str], b: List[str], path: str, diffs: List[str], notes: List[str], allow_new: bool) -> None:
    """CSV columns: a removed column or a changed order of the shared ones is a difference, a new
    column a note with ``allow_new`` (the cells themselves are compared by column name)."""
    removed, added = [c for c in a if c not in b], [c for c in b if c not in a]
    if removed:
        diffs.append(f"{path}: column(s) only in A (missing after): {removed}")
    if added:
        (notes if allow_new else diffs).append(f"{path}: column(s) only in B (new): {added}")
    if [c for c in a if c in b] != [c for c in b if c in a]:
        diffs.append(f"{path}: column order {a} -> {b}")


def grouped(lines: List[str]) -> List[str]:
    """Notes with list indices collapsed: one line per pattern, with a count and the first example."""
    import re

    groups: Dict[str, List[str]] = {}
    for line in lines:
        key = re.sub(r"\[\d+\]", "[]", line.split(": ", 1)[0])
        groups.setdefault(key, []).append(line)
    return [f"{len(v):>4} x {k}   e.g. {v[0].split(': ', 1)[1]}" for k, v in groups.items()]


def drop_ignored_columns(digest: Dict[str, Any]) -> None:
    """Drop ignored CSV columns (:data:`IGNORED_KEYS`) from the headers of ``digest``'s CSV files
    (their cells are skipped by :func:`compare`)."""
    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"header", "rows"} and isinstance(node["header"], list):
                node["header"] = [h for h in node["header"] if h not in IGNORED_KEYS]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(digest)


def compare_files(path_a: Path, path_b: Path, allow_new: bool, only: Optional[Sequence[str]] = None) -> int:
    a, b = json.loads(path_a.read_text()), json.loads(path_b.read_text())
    if only:
        for d in (a, b):
            d["configs"] = {k: v for k, v in d["configs"].items() if k in only}
    for d in (a, b):
        drop_ignored_columns(d)
    diffs: List[str] = []
    notes: List[str] = []
    per_config = {}
    for name in sorted(set(a["configs"]) | set(b["configs"])):
        before = len(diffs)
        if name not in b["configs"]:
            diffs.append(f"{name}: configuration only in A")
        elif name not in a["configs"]:
            diffs.append(f"{name}: configuration only in B")
        else:
            compare(a["configs"][name], b["configs"][name], name, diffs, notes, allow_new)
        per_config[name] = (len(diffs) - before, diffs[before] if len(diffs) > before else "")
    for line in diffs:
        print(line)
    if notes:
        print(f"\n{len(notes)} key(s) only in B, allowed by --allow-new-keys (grouped; [] = any index):")
        for line in grouped(notes):
            print(f"  note: {line}")
    print(f"\nsummary: {len(diffs)} difference(s) ({path_a} vs {path_b}; ignored: meta, keys {sorted(IGNORED_KEYS)})")
    for name, (count, first) in per_config.items():
        print(f"  {name:<22} {'identical' if count == 0 else f'{count} difference(s); first: {first}'}")
    return 1 if diffs else 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--code", type=Path, help="tree whose tavaal package runs (subprocesses run with cwd=DIR)")
    p.add_argument("--out", type=Path, help="folder for the run directories (one sub-folder per configuration)")
    p.add_argument("--digest", type=Path, help="digest file to write (default OUT/digest.json)")
    p.add_argument("--only", help=f"comma-separated configurations to run or compare (default all: {','.join(CONFIGS)})")
    p.add_argument("--digest-only", action="store_true", help="digest the run directories in --out again, no run")
    p.add_argument("--python", default=sys.executable, help="interpreter for the commands (default: this one)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"), help="print every difference")
    p.add_argument("--allow-new-keys", action="store_true", help="with --compare: keys only in B are notes")
    args = p.parse_args(argv)
    if args.compare:
        only = [n.strip() for n in args.only.split(",")] if args.only else None
        return compare_files(*args.compare, allow_new=args.allow_new_keys, only=only)
    if args.code is None or args.out is None:
        p.error("give --code DIR --out DIR (or --compare A.json B.json)")
    names = [n.strip() for n in args.only.split(",")] if args.only else list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    digest = run_all(args.code, args.out, args.digest or args.out / "digest.json", names, args.python,
                     rerun=not args.digest_only)
    return 1 if any("error" in c for c in digest["configs"].values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into head: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
