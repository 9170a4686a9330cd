"""``python -m tavaal.score ARTIFACTS_DIR --pool POOL --budget B``: select the next batch to
label from a (large) unlabeled pool with exported artifacts.

Writes ``--out FILE.csv`` (rank, id, score [, loss, r, mu_*]) and ``FILE.json`` beside it
(the same rows plus the run summary and the list of skipped unreadable images) and prints a
one-line summary: pool size, throughput (samples/s), time split between loading, inference
and selection. Bad requests -- empty pool, pool smaller than the budget, artifacts of an
incompatible version or with a sha256 mismatch, a sample shape that does not match the
artifacts, a method the artifacts do not support -- fail before any long work with one
line on stderr and exit code 2. See docs/export-and-scoring.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .data.sources import ImageFolderSource, decode_workers
from .distributed.cli import add_ray_arguments, select_with_ray
from .loop.batches import taken_rows
from .methods import EmbeddingRule, get_method, method_names
from .scoring import Scorer, open_source, select_from_pool

__all__ = ["main", "build_parser", "read_ids", "write_outputs"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tavaal.score",
                                description="Score an unlabeled pool with exported TA-VAAL artifacts and select "
                                            "the next batch to label.")
    p.add_argument("artifacts", type=Path, help="artifacts directory written by python -m tavaal.export")
    p.add_argument("--pool", required=True,
                   help="image folder (recursive), .npy/.npz array (FILE.npz:KEY), sharded pool directory "
                        "(pool.json), or dataset:NAME[:train|test]")
    p.add_argument("--budget", type=int, required=True, help="how many samples to select")
    p.add_argument("--method", default=None, choices=method_names(),
                   help="selection method (default: the method the artifacts were trained for); entropy and the other "
                        "probability-based methods read the exported classifier graph, mcdropout needs --backend eager")
    p.add_argument("--subset", type=int, default=0,
                   help="score a seeded random subset of M unlabeled samples (the paper's subset method; 0 = all)")
    p.add_argument("--include-workdir-samples", action="store_true",
                   help="artifacts exported from a work directory: also score its labeled and pending samples "
                        "(by default they are excluded, as tavaal select does)")
    p.add_argument("--labeled", type=Path, default=None,
                   help="labeled set: ids of pool samples (.txt one per line, .json list, .csv 'id' column, or an "
                        "integer .npy), excluded from the candidates; or a pool of labeled samples "
                        "(.npy/.npz/folder, for coreset's centers)")
    p.add_argument("--seed", type=int, default=0, help="seed of --subset, random and core-set's first pick")
    p.add_argument("--backend", choices=("onnx", "torchscript", "eager"), default=None,
                   help="inference backend (default onnx; eager with --precision bf16, the fastest measured)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: autocast (torchscript/eager backends)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader worker processes decoding images (default for image folders: CPU cores - 1, or $TAVAAL_DECODE_WORKERS)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of the backend (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("selected.csv"), help="CSV to write (JSON beside it)")
    p.add_argument("--save-scores", type=Path, default=None,
                   help="also write every score to this memory-mapped .npy (N float32, NaN = not scored; "
                        "coreset: the feature matrix)")
    p.add_argument("--with-latents", action="store_true", help="add loss, r and mu of the picks to the outputs")
    p.add_argument("--key", default=None, help="member of an .npz pool (default X, else the first)")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the artifact files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_arguments(p)  # --ray ... (scale-out; does not import ray)
    return p


def read_ids(path: Path) -> List:
    """Ids from .txt (one per line), .json (list), .csv (column 'id' or the first) or an integer
    .npy; numeric strings become ints."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        with open(path) as f:
            data = json.load(f)
        if isinstance(data, dict):
            data = data.get("ids", data.get("selected", []))
        raw = [d["id"] if isinstance(d, dict) else d for d in data]
    elif suffix == ".csv":
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r]
        if not rows:
            return []
        col = rows[0].index("id") if "id" in rows[0] else 0
        body = rows[1:] if not rows[0][col].lstrip("-").isdigit() else rows
        raw = [r[col] for r in body]
    elif suffix == ".npy":
        return np.load(path, allow_pickle=False).reshape(-1).astype(np.int64).tolist()
    else:
        with open(path) as f:
            raw = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    return [int(v) if isinstance(v, (int, np.integer)) or (isinstance(v, str) and v.lstrip("-").isdigit()) else v
            for v in raw]


def _is_id_file(path: Path) -> bool:
    if path.suffix.lower() in (".txt", ".json", ".csv", ".ids"):
        return True
    if path.suffix.lower() == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer)
    return False


def write_outputs(selection, out: Path, extra: dict) -> Path:
    """Write the CSV and the JSON beside it; returns the JSON path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    records = selection.records()
    latent_cols = [name for name in ("loss", "r") if name in selection.latents]
    mu_dim = selection.latents["mu"].shape[1] if "mu" in selection.latents else 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "id", "score"] + latent_cols + [f"mu_{j}" for j in range(mu_dim)])
        for rec in records:
            row = [rec["rank"], rec["id"], repr(rec["score"])] + [repr(rec[c]) for c in latent_cols]
            if mu_dim:
                row += [repr(v) for v in rec["mu"]]
            w.writerow(row)
    summary = {
        "method": selection.method, "budget": selection.budget, "pool_size": selection.pool_size,
        "candidates": selection.candidates, "scored": selection.scored,
        "throughput_samples_per_s": selection.throughput,
        "timings_s": {k: round(v, 6) for k, v in selection.timings.items()},
        "backend": selection.backend, "precision": selection.precision, "scores_file": selection.scores_file,
        "skipped_count": len(selection.skipped), **extra,
    }
    payload = {"summary": summary, "selected": records, "skipped": selection.skipped}
    json_path = out.with_suffix(".json")
    with open(json_path, "w") as f:
        json.dump(payload, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        f.write("\n")
    return json_path


def _write_atomic(selection, out: Path, extra: dict) -> Path:
    """:func:`write_outputs` (plus ``extra["ray"]``, the Ray run's info) into temporary names
    beside ``out``, then both files renamed into place (CSV last): a reader never sees a
    partial output."""
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix or '.csv'}")
    info = getattr(selection, "ray", None)
    if info is not None:
        extra = dict(extra, ray={k: v for k, v in vars(info).items() if isinstance(v, (int, float, str, list))})
    try:
        json_path = out.with_suffix(".json")
        os.replace(write_outputs(selection, tmp, extra), json_path)
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, tmp.with_suffix(".json")):
            if leftover.exists():
                leftover.unlink()
    return json_path


def _fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    if args.budget < 1:
        return _fail(f"--budget must be >= 1, got {args.budget}")
    if args.subset < 0:
        return _fail(f"--subset must be >= 0 (0 = the whole pool), got {args.subset}")
    if args.subset and args.subset < args.budget:
        return _fail(f"--subset {args.subset} is smaller than --budget {args.budget}")
    if args.batch_size < 1:
        return _fail(f"--batch-size must be >= 1, got {args.batch_size}")
    backend = args.backend or ("eager" if args.precision == "bf16" else "onnx")
    try:
        scorer = Scorer.from_artifacts(args.artifacts, backend=backend, precision=args.precision,
                                       device=args.device, threads=args.threads, verify=not args.no_verify)
        method = args.method
        if method is None:
            src = scorer.manifest.get("source", {}).get("method")
            if src in method_names():
                src = get_method(src).selection_name  # lloss2 models select as lloss
            method = src if src in scorer.methods else scorer.methods[0]
        method = get_method(method).selection_name
        scorer.check_method(method)
        rule = get_method(method).rule
        uses_centers = isinstance(rule, EmbeddingRule) and rule.uses_labeled
        image_shape = scorer.input_shape if len(scorer.input_shape) == 3 else None
        pool = open_source(args.pool, image_shape=image_shape, key=args.key)
        labeled, labeled_pool = None, None
        if args.labeled is not None:
            if not args.labeled.exists():
                return _fail(f"--labeled {args.labeled} does not exist")
            if _is_id_file(args.labeled):
                labeled = pool.rows_of(read_ids(args.labeled))
            else:
                if not uses_centers:
                    return _fail(f"--labeled with a pool of samples (not ids) is only used by methods with labeled "
                                 f"centers (core-set), not --method {method}")
                labeled_pool = open_source(args.labeled, image_shape=image_shape)
        workdir = (scorer.manifest.get("source") or {}).get("workdir")
        if args.labeled is None and workdir and not args.include_workdir_samples:
            labeled = taken_rows(workdir, pool)  # an export of a work directory: not its labeled/pending samples
            print(f"excluding {labeled.size} labeled or pending samples of the work directory {workdir} "
                  "(--include-workdir-samples scores them too)", file=sys.stderr)
        if uses_centers and labeled is None and labeled_pool is None:
            print(f"note: {method} without --labeled: the first pick is random (seeded)", file=sys.stderr)
        workers = args.workers
        if workers is None:
            workers = decode_workers() if isinstance(pool, ImageFolderSource) else 0
        if rule is not None and pool.kind == "inputs" and len(pool) > 0:
            # check the first sample before the long work (catches shape mismatches and unreadable arrays)
            scorer.check_sample_shape(tuple(pool.read_rows([0]).shape[1:]), what=f"pool {args.pool}:")
            pool.skipped.clear()
        load_seconds = time.perf_counter() - started
        if args.ray:  # scale-out on Ray (tavaal.distributed)
            selection = select_with_ray(args, method, labeled, labeled_pool, backend)
        else:
            selection = select_from_pool(scorer, pool, method, args.budget,
                                         subset=args.subset, seed=args.seed, labeled=labeled,
                                         labeled_pool=labeled_pool, batch_size=args.batch_size, num_workers=workers,
                                         save_scores=args.save_scores, with_latents=args.with_latents,
                                         progress=not args.no_progress)
    except ValueError as exc:  # ArtifactError, SourceError, SelectionError and bad values
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    extra = {"artifacts": str(args.artifacts), "pool": str(args.pool), "seed": args.seed, "subset": args.subset,
             "batch_size": args.batch_size, "workers": workers, "setup_s": round(load_seconds, 6),
             "source": scorer.manifest.get("source")}
    write = _write_atomic if args.ray else write_outputs  # a Ray run's outputs are written atomically
    json_path = write(selection, args.out, extra)
    print(selection.summary() + f"; wrote {args.out} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
