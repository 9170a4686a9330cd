"""``python -m tavaal.export RUN_DIR --out ARTIFACTS_DIR``: write a cycle's models as TorchScript
and ONNX artifacts with a manifest, verified against the eager models.

What is written (only what the checkpoint has; layout: :mod:`tavaal.artifacts`): the graphs of
:mod:`tavaal.scoring.graphs`, ``normalize`` (TorchScript only) and ``models.pt``, a copy of the
checkpoint (the ``eager`` scoring backend rebuilds from it).

Verification: every graph is run on a random normal sample batch (a different batch size
from the one traced, to check the dynamic batch axis) by the eager model, TorchScript and
ONNX Runtime; the max abs error of every output goes into the manifest, and the export fails
(exit code 1, artifacts left unmarked: no manifest is written) if one exceeds
``tolerance * (1 + max|eager|)``.

Torch's deprecation warnings are filtered (:func:`tavaal.scoring.graphs.quiet_torch_deprecations`).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import __version__
from .artifacts import MANIFEST_NAME, ArtifactError, sha256_file, write_manifest
from .checkpoint import CycleModels, load_cycle_models, save_cycle_models
from .methods import DEFAULT_METHOD, supported_methods
from .rundir import latest_checkpoint, read_json, utc_now, workdir_classes
from .scoring.graphs import NormalizeGraph, cycle_graphs, quiet_torch_deprecations

log = logging.getLogger("tavaal.export")

__all__ = ["export_run", "export_models", "ExportError", "main"]

DEFAULT_OPSET = 18
DEFAULT_TOLERANCE = 1e-4
TRACE_BATCH = 2
VERIFY_BATCH = 5
_FORMATS = {"torchscript": ("pt", "TorchScript"), "onnx": ("onnx", "ONNX Runtime")}  # file suffix, name in messages


class ExportError(RuntimeError):
    """Export failed (verification above tolerance, missing models, bad arguments)."""


def _rank_manifest(ranker: nn.Module, rank_mode: str) -> dict:
    """How r relates to the raw predicted loss in the exported graphs (see Ranker.normalize)."""
    norm = getattr(ranker, "rank_norm", "sigmoid")
    formula = {"sigmoid": "sigmoid(loss)", "standardized": "sigmoid((loss - center) / scale)", "raw": "loss"}[norm]
    return {"mode": rank_mode, "rank_norm": norm, "r": formula if rank_mode == "normalized" else "loss",
            "center": float(ranker.rank_center), "scale": float(ranker.rank_scale),
            "loss": "raw Ranker output (predicted loss)"}


def _sample_inputs(graphs, input_shape, batch: int, seed: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch,) + tuple(input_shape), generator=g)
    with torch.no_grad():
        if "ranker" in graphs:
            _, r = graphs["ranker"][0](x)
        else:
            r = torch.rand(batch, generator=g)
        mu = graphs["encoder"][0](x) if "encoder" in graphs else None
    values = {"x": x, "r": r, "mu": mu}
    return {name: tuple(values[i] for i in in_names) for name, (_, in_names, _) in graphs.items()}


def _as_tuple(out) -> Tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _export_onnx(module, args, path: Path, in_names, out_names, opset: int, exporter: str) -> str:
    """Export with the dynamo exporter (falls back to the legacy one if it fails); returns which."""
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1)
        dyn = {name: {0: batch} for name in in_names}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(module, args, str(path), input_names=in_names, output_names=out_names,
                                  opset_version=opset, dynamo=True, external_data=False, dynamic_shapes=dyn,
                                  verbose=False)
            return "dynamo"
        except Exception as exc:  # pragma: no cover - depends on the torch version
            log.warning("dynamo ONNX export of %s failed (%s: %s); using the legacy exporter", path.name,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    axes = {name: {0: "batch"} for name in list(in_names) + list(out_names)}
    torch.onnx.export(module, args, str(path), input_names=in_names, output_names=out_names,
                      opset_version=opset, dynamo=False, dynamic_axes=axes, do_constant_folding=True)
    return "legacy"


def _max_err(ref: Sequence[torch.Tensor], got: Sequence) -> Tuple[float, float]:
    err, scale = 0.0, 0.0
    for a, b in zip(ref, got):
        a = a.detach().float().reshape(-1)
        b = torch.as_tensor(b).detach().float().reshape(-1)  # a tensor (TorchScript) or an array (ONNX Runtime)
        if a.shape != b.shape:
            return float("inf"), float(a.abs().max()) if a.numel() else 0.0
        if a.numel():
            err = max(err, float((a - b).abs().max()))
            scale = max(scale, float(a.abs().max()))
    return err, scale


def export_models(models: CycleModels, out: Path, *, formats: Sequence[str] = ("torchscript", "onnx"),
                  opset: int = DEFAULT_OPSET, onnx_exporter: str = "dynamo", tolerance: float = DEFAULT_TOLERANCE,
                  seed: int = 0, source: Optional[dict] = None, checkpoint_path: Optional[Path] = None,
                  run_config: Optional[dict] = None, class_names: Optional[Sequence[str]] = None) -> dict:
    """Export the graphs of ``models`` into ``out`` and write the manifest; returns it.
    ``class_names``: the task model's classes in index order (the manifest's ``class_names``).

    Raises :class:`ExportError` if a verification error exceeds ``tolerance * (1 + max|eager|)``
    (no manifest is written then).
    """
    formats = tuple(formats)
    if not formats or any(f not in _FORMATS for f in formats):
        raise ExportError(f"formats must be a non-empty subset of ('torchscript', 'onnx'), got {formats}")
    if onnx_exporter not in ("dynamo", "legacy"):
        raise ExportError(f"onnx exporter must be 'dynamo' or 'legacy', got {onnx_exporter!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # a half-written directory never looks valid
    spec = models.spec
    input_shape = tuple(int(s) for s in spec["input_shape"])
    try:
        graphs = cycle_graphs(models)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    trace_inputs = _sample_inputs(graphs, input_shape, TRACE_BATCH, seed)
    verify_inputs = _sample_inputs(graphs, input_shape, VERIFY_BATCH, seed + 1)
    model_entries: Dict[str, dict] = {}
    errors: Dict[str, Dict[str, float]] = {}
    failures: List[str] = []
    used_exporter = None
    timings: Dict[str, float] = {}
    with quiet_torch_deprecations(), torch.no_grad():
        for name, (module, in_names, out_names) in graphs.items():
            started = time.perf_counter()
            entry = {"inputs": in_names, "outputs": out_names, "files": {}}
            ref = _as_tuple(module(*verify_inputs[name]))
            errors[name] = {}
            for fmt in [f for f in _FORMATS if f in formats]:
                fname = f"{name}.{_FORMATS[fmt][0]}"
                if fmt == "torchscript":
                    traced = torch.jit.trace(module, trace_inputs[name], check_trace=False)
                    torch.jit.save(traced, str(out / fname))
                    got = _as_tuple(torch.jit.load(str(out / fname))(*verify_inputs[name]))
                else:
                    import onnxruntime as ort

                    used_exporter = _export_onnx(module, trace_inputs[name], out / fname, in_names, out_names, opset,
                                                 onnx_exporter)
                    sess = ort.InferenceSession(str(out / fname), providers=["CPUExecutionProvider"])
                    got = sess.run(out_names, {n: t.detach().float().numpy() for n, t in zip(in_names, verify_inputs[name])})
                err, scale = _max_err(ref, got)
                errors[name][fmt] = err
                bound = tolerance * (1.0 + scale)
                if not err <= bound:
                    failures.append(f"{name} {_FORMATS[fmt][1]} max abs error {err:.3g} > {bound:.3g}")
                entry["files"][fmt] = fname
            model_entries[name] = entry
            timings[name] = round(time.perf_counter() - started, 3)
            log.info("exported %s (%.1fs): max abs error %s", name, timings[name], errors[name])
        norm = torch.jit.script(NormalizeGraph(input_shape, spec.get("mean"), spec.get("std")))
        torch.jit.save(norm, str(out / "normalize.pt"))
        model_entries["normalize"] = {"inputs": ["x_uint8"], "outputs": ["x"], "files": {"torchscript": "normalize.pt"}}
    if failures:
        raise ExportError("export verification failed: " + "; ".join(failures))
    if checkpoint_path is not None:
        shutil.copyfile(checkpoint_path, out / "models.pt")
    else:
        save_cycle_models(out / "models.pt", models)
    files = [f for entry in model_entries.values() for f in entry["files"].values()] + ["models.pt"]

    adv = models.adversarial
    rank_conditioned = None if adv is None else bool(adv.discriminator.rank_conditioned)
    rank_mode = spec.get("rank_mode", "normalized")
    manifest = {
        "created": utc_now(),
        "source": dict(source or {}, method=models.method, trial=models.trial, cycle=models.cycle,
                       dataset=spec.get("dataset")),
        "input": {"shape": list(input_shape), "dtype": "float32", "layout": "NCHW" if len(input_shape) == 3 else "ND",
                  "batch_axis": 0, "mean": spec.get("mean"), "std": spec.get("std"),
                  "uint8": "x / 255, then (x - mean) / std per channel (images) or per feature (vectors)",
                  "float": "already normalised like the training data"},
        "latent_dim": int(spec["latent_dim"]) if adv is not None else None,
        "feature_dim": int(models.task.backbone.feature_dim),
        "num_classes": int(models.task.backbone.num_classes),
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "rank": _rank_manifest(models.task.ranker, rank_mode) if models.task.ranker is not None else None,
        "discriminator": None if adv is None else {
            "rank_conditioned": rank_conditioned, "layers": int(adv.discriminator.num_layers),
            "hidden": int(adv.discriminator.hidden_dim),
            "input": "cat([mu, r], 1)" if rank_conditioned else "mu",
            "output": "sigmoid probability of 'labeled'; lower = selected first"},
        "models": model_entries,
        "methods": supported_methods(list(graphs), rank_conditioned),
        "formats": list(formats),
        "onnx": {"opset": opset, "exporter": used_exporter} if "onnx" in formats else None,
        "verification": {"batch": VERIFY_BATCH, "tolerance": tolerance, "rule": "max|x - eager| <= tol * (1 + max|eager|)",
                         "max_abs_error": errors, "inputs": "standard normal, seeded", "passed": True},
        "versions": _versions(),
        "spec": spec,
        "run_config": run_config,
        "export_seconds": timings,
    }
    return write_manifest(out, manifest, files)


def _versions() -> Dict[str, Optional[str]]:
    versions = {"tavaal": __version__, "torch": torch.__version__,
                "numpy": np.__version__, "python": platform.python_version()}
    for mod in ("onnx", "onnxruntime", "onnxscript"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover
            versions[mod] = None
    return versions


def export_run(run_dir: Path, out: Path, *, method: str = DEFAULT_METHOD, trial: int = 0,
               checkpoint: Optional[Path] = None, **kwargs) -> dict:
    """Export the newest checkpoint of (``method``, ``trial``) in ``run_dir`` (or ``checkpoint``);
    for a labeling-loop work directory (``workdir.json``), its newest cycle."""
    run_dir = Path(run_dir)
    if checkpoint is None and (run_dir / "workdir.json").exists():
        try:
            checkpoint = latest_checkpoint(run_dir)
        except (FileNotFoundError, ValueError) as exc:
            raise ExportError(str(exc)) from None
    if checkpoint is None:
        if not (run_dir / "config.json").exists():
            raise ExportError(f"{run_dir} is not a tavaal run directory (no config.json)")
        try:
            checkpoint = latest_checkpoint(run_dir, method, trial)
        except FileNotFoundError as exc:
            methods = sorted(p.name for p in run_dir.iterdir() if p.is_dir() and any(p.glob("trial_*")))
            raise ExportError(f"{exc} (methods in this run: {', '.join(methods) or 'none'})") from None
    checkpoint = Path(checkpoint)
    models = load_cycle_models(checkpoint)
    run_config = read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else None
    source = {"run_dir": str(run_dir.resolve()), "checkpoint": str(checkpoint.resolve()),
              "checkpoint_sha256": sha256_file(checkpoint)}
    class_names = workdir_classes(run_dir)
    if class_names is not None:
        source["workdir"] = str(run_dir.resolve())  # tavaal.score leaves its labeled and pending samples out
    return export_models(models, out, source=source, checkpoint_path=checkpoint, run_config=run_config,
                         class_names=class_names, **kwargs)


def setup_cli_logging(quiet: bool = False) -> None:
    """INFO messages of tavaal's own loggers on stderr (the exporters' chatter stays silent)."""
    logger = logging.getLogger("tavaal")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tavaal.export",
                                description="Export the models of a trained run as TorchScript + ONNX artifacts.")
    p.add_argument("run_dir", type=Path, help="run directory written by python -m tavaal.train")
    p.add_argument("--out", type=Path, required=True, help="artifacts directory to write")
    p.add_argument("--method", default=DEFAULT_METHOD, help="method whose checkpoint to export (default %(default)s)")
    p.add_argument("--trial", type=int, default=0, help="trial whose checkpoint to export (default 0)")
    p.add_argument("--checkpoint", type=Path, default=None, help="export this checkpoint file instead")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--onnx-exporter", choices=("dynamo", "legacy"), default="dynamo",
                   help="torch.onnx exporter (default dynamo; falls back to legacy if it fails)")
    p.add_argument("--formats", default="torchscript,onnx", help="comma-separated: torchscript,onnx")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="verification tolerance: max abs error <= tol * (1 + max|eager|)")
    p.add_argument("--force", action="store_true", help="overwrite an existing artifacts directory")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_cli_logging(args.quiet)
    if (args.out / MANIFEST_NAME).exists() and not args.force:
        print(f"error: {args.out} already holds artifacts; pass --force to overwrite", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        manifest = export_run(args.run_dir, args.out, method=args.method, trial=args.trial,
                              checkpoint=args.checkpoint, formats=[f.strip() for f in args.formats.split(",") if f.strip()],
                              opset=args.opset, onnx_exporter=args.onnx_exporter, tolerance=args.tolerance)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if "verification" in str(exc) else 2
    except (FileNotFoundError, ValueError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    worst = max((e for per in manifest["verification"]["max_abs_error"].values() for e in per.values()), default=0.0)
    src = manifest["source"]
    print(f"exported {src['method']} trial {src['trial']} cycle {src['cycle']} -> {args.out}: "
          f"{', '.join(sorted(m for m in manifest['models']))}; methods {', '.join(manifest['methods'])}; "
          f"max abs error {worst:.2e} (eager vs TorchScript/ONNX Runtime); {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
