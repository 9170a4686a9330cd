"""The :class:`Scorer`: exported artifacts loaded once, run on batches by one backend.

Backends:

* ``"onnx"`` (default): ONNX Runtime, CPU execution provider (CUDA provider when
  ``device="cuda"`` and onnxruntime-gpu is installed), graph optimisations on
  (``ORT_ENABLE_ALL``: BatchNorm folding, Conv+ReLU fusion). fp32 only: ONNX Runtime's CPU
  provider has no bfloat16 convolution kernels on x86.
* ``"torchscript"``: the ``.pt`` graphs, frozen (``torch.jit.freeze``: BN folded, weights
  constant) and run with oneDNN; ``precision="bf16"`` runs them under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (oneDNN bf16 kernels, ``avx512_bf16``/AMX
  where the CPU has them).
* ``"eager"``: the tavaal models rebuilt from ``models.pt`` (needs this package); bf16 via
  autocast as above.

The ``*_batch`` methods and ``run_graph(name, x)`` return fp32 CPU tensors. Inputs may be
uint8 raw values (normalised with the manifest's mean/std) or float (taken as already
normalised), in the manifest's layout, or NHWC images (transposed).
"""
from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..artifacts import ArtifactError, load_manifest
from ..checkpoint import load_cycle_models
from ..data.normalization import uint8_scale_shift
from ..methods import ScoreRule, get_method, supported_methods
from ..models import Discriminator
from ..training.inference import set_dropout_train
from .graphs import build_graphs, cycle_graphs, quiet_torch_deprecations

__all__ = ["Scorer", "BACKENDS", "PRECISIONS"]

BACKENDS = ("onnx", "torchscript", "eager")
PRECISIONS = ("fp32", "bf16")


class Scorer:
    """Loaded artifacts + one backend. Build with :meth:`from_artifacts`.

    Thread-safety: a Scorer may be shared by threads (graphs are loaded under a lock; ONNX
    Runtime sessions and TorchScript modules are safe to call concurrently). For Ray, build
    one Scorer per actor with ``threads`` set to the actor's CPU share."""

    def __init__(self, directory: Optional[Path], manifest: dict, backend: str = "onnx", precision: str = "fp32",
                 device: str = "cpu", threads: Optional[int] = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if backend == "onnx" and precision == "bf16":
            raise ValueError("precision bf16 is not available with the onnx backend (ONNX Runtime's CPU provider "
                             "has no bf16 convolutions): use --backend torchscript or eager")
        self.directory = None if directory is None else Path(directory)
        self.manifest = manifest
        self.backend = backend
        self.precision = precision
        self.device = torch.device(device)
        self.threads = threads
        self.input_shape = tuple(int(s) for s in manifest["input"]["shape"])
        disc = manifest.get("discriminator")
        self.methods = supported_methods(manifest["models"], None if disc is None else bool(disc["rank_conditioned"]),
                                         stochastic=backend == "eager")
        self._graphs: Dict[str, object] = {}
        self._lock = threading.Lock()
        self._discriminator = None
        self._eager = None
        self._live = None
        mean, std = manifest["input"].get("mean"), manifest["input"].get("std")
        self._scale, self._shift = uint8_scale_shift(mean, std, self.input_shape, batch=True)
        # accepted sample shapes -> how a batch of them becomes the graphs' layout
        shape = self.input_shape
        self._layouts = {shape: lambda x: x}
        if len(shape) == 3:
            self._layouts.setdefault(shape[1:] + shape[:1], lambda x: x.permute(0, 3, 1, 2))  # NHWC
            if shape[0] == 1:
                self._layouts.setdefault(shape[1:], lambda x: x.unsqueeze(1))  # (B, H, W)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_artifacts(cls, directory, backend: str = "onnx", precision: str = "fp32", device: str = "cpu",
                       threads: Optional[int] = None, verify: bool = True, method: Optional[str] = None) -> "Scorer":
        """Read + version-check the manifest, verify sha256 of every file (``verify``), and
        load the graphs ``method`` needs (all lazily if None). Raises :class:`ArtifactError`
        (bad/tampered artifacts) or ValueError (backend/precision/method)."""
        manifest = load_manifest(directory, verify=verify)
        scorer = cls(directory, manifest, backend, precision, device, threads)
        if method is not None:
            scorer.check_method(method)
            rule = get_method(method).rule
            if rule is not None:
                scorer._graph(rule.graph)
                if isinstance(rule, ScoreRule) and rule.fused:
                    _ = scorer.discriminator
        return scorer

    @classmethod
    def from_models(cls, task, adversarial=None, *, input_shape: Sequence[int], mean: Optional[Sequence[float]] = None,
                    std: Optional[Sequence[float]] = None, rank_mode: Optional[str] = None, score_mode: str = "eval",
                    precision: str = "fp32", device: Optional[str] = None, source: Optional[dict] = None) -> "Scorer":
        """An ``eager`` Scorer over live models: ``task`` (:class:`tavaal.training.TaskModels`) and
        ``adversarial`` (:class:`tavaal.training.AdversarialModels` or None), through the same
        graphs as the export (:func:`tavaal.scoring.graphs.build_graphs`; the modules are shared, not
        copied, and put in eval mode -- ``score_mode="train"`` puts the WAE and discriminator
        back in train mode, the official code's behaviour).

        ``input_shape``: one sample's shape; ``mean``/``std``: how uint8 inputs are normalised
        (float inputs are taken as normalised); ``rank_mode``: what D sees as r (default
        ``adversarial.rank_mode``); ``device``: where the models are (default: their device)."""
        if score_mode not in ("eval", "train"):
            raise ValueError(f"score_mode must be 'eval' or 'train', got {score_mode!r}")
        if rank_mode is None:
            rank_mode = adversarial.rank_mode if adversarial is not None else "normalized"
        if device is None:
            device = str(next(task.backbone.parameters()).device)
        graphs = build_graphs(task, adversarial, rank_mode)
        if adversarial is not None and score_mode == "train":
            adversarial.train(True)
        manifest = describe_models(task, adversarial, input_shape, mean, std, rank_mode, graphs)
        manifest["source"] = dict(source or {}, live=True)
        scorer = cls(None, manifest, backend="eager", precision=precision, device=device)
        scorer._eager = graphs
        scorer._live = (task, adversarial)
        return scorer

    def check_method(self, method: str) -> None:
        """ValueError naming what is supported unless these models/artifacts serve ``method``."""
        rule = get_method(method).rule  # unknown names: the list of known ones
        if method not in self.methods:
            src = self.manifest.get("source", {})
            what = ("these live models" if src.get("live") else
                    f"these artifacts (exported from a {src.get('method', '?')!r} run, backend {self.backend})")
            stochastic = isinstance(rule, ScoreRule) and rule.stochastic and self.backend != "eager"
            raise ValueError(f"{what} support {', '.join(self.methods)}, not {method!r}"
                             + (f" ({method} needs the eager backend)" if stochastic else ""))

    def _file(self, name: str, fmt: str) -> Path:
        entry = self.manifest["models"].get(name)
        if entry is None or fmt not in entry["files"]:
            raise ArtifactError(f"{self.directory}: no {fmt} file for graph {name!r} in the manifest")
        return self.directory / entry["files"][fmt]

    def _graph(self, name: str):
        with self._lock:
            if name not in self._graphs:
                self._graphs[name] = self._load(name)
            return self._graphs[name]

    def _load(self, name: str):
        if self.backend == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = int(self.threads or torch.get_num_threads())
            opts.inter_op_num_threads = 1
            cuda = self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
            providers = (["CUDAExecutionProvider"] if cuda else []) + ["CPUExecutionProvider"]
            return ort.InferenceSession(str(self._file(name, "onnx")), sess_options=opts, providers=providers)
        if self.backend == "torchscript":
            with quiet_torch_deprecations():
                module = torch.jit.load(str(self._file(name, "torchscript")), map_location=self.device).eval()
                try:  # BN folded into convs, weights constant; oneDNN fusions for fp32
                    module = torch.jit.freeze(module)
                    if self.precision == "fp32" and self.device.type == "cpu" and os.environ.get("TAVAAL_TS_OFI", "1") == "1":
                        module = torch.jit.optimize_for_inference(module)
                except Exception:  # pragma: no cover - freezing is an optimisation only
                    pass
            return module
        # eager
        if self._eager is None:
            self._eager = cycle_graphs(load_cycle_models(self.directory / "models.pt", map_location="cpu"))
        if name not in self._eager:
            raise ArtifactError(f"no graph {name!r} among {', '.join(self._eager)}")
        module = self._eager[name][0]
        if self._live is not None:
            return module  # live models: used as they are (device, memory format and mode untouched)
        module = module.to(self.device).eval()
        if len(self.input_shape) == 3:
            module = module.to(memory_format=torch.channels_last)
        return module

    @property
    def discriminator(self):
        """Eager :class:`tavaal.models.Discriminator` with the exported weights (for ``ops.score_topb``)."""
        if self._discriminator is None and self._live is not None:
            adversarial = self._live[1]
            if adversarial is None:
                raise ArtifactError("these live models have no discriminator")
            disc = copy.deepcopy(adversarial.discriminator).cpu()  # the fused op runs on CPU tensors
            self._discriminator = disc.train(adversarial.discriminator.training)
        if self._discriminator is None:
            d = self.manifest.get("discriminator")
            if d is None:
                raise ArtifactError(f"{self.directory}: these artifacts have no discriminator")
            state = torch.load(self.directory / "models.pt", map_location="cpu", weights_only=True)
            disc = Discriminator(int(self.manifest["latent_dim"]), hidden_dim=d["hidden"], num_layers=d["layers"],
                                 rank_conditioned=d["rank_conditioned"])
            disc.load_state_dict(state["adversarial"]["discriminator"])
            self._discriminator = disc.eval()
        return self._discriminator

    # ------------------------------------------------------------------ inputs
    def check_sample_shape(self, shape: Sequence[int], what: str = "pool") -> None:
        """ValueError naming both shapes unless ``shape`` is the manifest's (or its NHWC form)."""
        shape = tuple(int(s) for s in shape)
        if shape not in self._layouts:
            raise ValueError(f"{what} samples have shape {list(shape)} but the artifacts expect "
                             f"{list(self.input_shape)}" + (" (or NHWC)" if len(self.input_shape) == 3 else ""))

    def prepare(self, x) -> torch.Tensor:
        """A batch as the graphs' float32 input: uint8 -> (x/255 - mean)/std, float16/bf16 ->
        float32, NHWC -> NCHW, (B, H, W) -> (B, 1, H, W)."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        shape = tuple(x.shape[1:])
        if shape not in self._layouts:
            raise ValueError(f"batch has sample shape {list(shape)} but the artifacts expect {list(self.input_shape)}")
        x = self._layouts[shape](x)
        if x.dtype == torch.uint8:
            x = x.to(torch.float32).mul_(self._scale).add_(self._shift)
        elif x.dtype != torch.float32:
            x = x.to(torch.float32)
        return x.contiguous()

    # ------------------------------------------------------------------ running
    def _run(self, name: str, inputs: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        graph = self._graph(name)
        out_names = self.manifest["models"][name]["outputs"]
        if self.backend == "onnx":
            in_names = self.manifest["models"][name]["inputs"]
            feeds = {n: t.detach().to(torch.float32).contiguous().numpy() for n, t in zip(in_names, inputs)}
            outs = graph.run(out_names, feeds)
            return {n: torch.from_numpy(np.asarray(o, dtype=np.float32)) for n, o in zip(out_names, outs)}
        with torch.inference_mode():
            # channels-last images: oneDNN's fastest convolution layout on CPU (fp32 and bf16)
            inputs = [t.to(self.device).contiguous(memory_format=torch.channels_last) if t.dim() == 4
                      else t.to(self.device) for t in inputs]
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    outs = graph(*inputs)
            else:
                outs = graph(*inputs)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return {n: o.detach().to("cpu", torch.float32) for n, o in zip(out_names, outs)}

    def score_batch(self, x) -> Dict[str, torch.Tensor]:
        """Combined scorer: ``{"loss", "r", "mu", "score"}`` (VAAL: ``{"mu", "score"}``), fp32."""
        return self._run("scorer", [self.prepare(x)])

    def rank_batch(self, x) -> Dict[str, torch.Tensor]:
        """Ranker: ``{"loss", "r"}`` (predicted loss and the r D sees), fp32."""
        return self._run("ranker", [self.prepare(x)])

    def features_batch(self, x) -> torch.Tensor:
        """Penultimate features (B, F), fp32 (core-set)."""
        return self._run("features", [self.prepare(x)])["feature"]

    def classify_batch(self, x) -> Dict[str, torch.Tensor]:
        """Classifier: ``{"logits", "probs", "feature"}`` (B, K), (B, K), (B, F), fp32."""
        return self._run("classifier", [self.prepare(x)])

    def run_graph(self, name: str, x) -> Dict[str, torch.Tensor]:
        """Outputs of graph ``name`` ("scorer", "ranker", "features", "classifier", "encoder") on
        batch ``x``, by output name, fp32 CPU."""
        return self._run(name, [self.prepare(x)])

    def mc_probs_batch(self, x, passes: int) -> torch.Tensor:
        """(passes, B, K) softmax samples of the classifier with only its Dropout layers in train
        mode (BatchNorm stays in eval), drawing from torch's global generator. Eager only:
        traced and ONNX graphs have dropout folded away."""
        if self.backend != "eager":
            raise ValueError("MC-dropout needs live models (the eager backend): traced/ONNX graphs have no dropout")
        if int(passes) < 1:
            raise ValueError(f"MC-dropout needs at least one pass, got {passes}")
        graph = self._graph("classifier")
        xin = self.prepare(x)
        set_dropout_train(graph, True)
        try:
            samples = [self._run("classifier", [xin])["probs"] for _ in range(int(passes))]
        finally:
            set_dropout_train(graph, False)
        return torch.stack(samples)

    def encode_batch(self, x) -> torch.Tensor:
        """WAE posterior mean mu (B, d), fp32."""
        return self._run("encoder", [self.prepare(x)])["mu"]

    def discriminate(self, r: Optional[torch.Tensor], mu: torch.Tensor) -> torch.Tensor:
        """D(r, mu) through the exported discriminator graph (VAAL: r ignored), fp32 (B,)."""
        inputs = [mu] if self.manifest["models"]["discriminator"]["inputs"] == ["mu"] else [r, mu]
        return self._run("discriminator", inputs)["score"]

    def __repr__(self) -> str:
        where = "live models" if self._live is not None else str(self.directory)
        return (f"Scorer({where}, backend={self.backend}, precision={self.precision}, "
                f"device={self.device}, methods={self.methods})")


def describe_models(task, adversarial, input_shape: Sequence[int], mean, std, rank_mode: str, graphs) -> dict:
    """The manifest fields a Scorer needs (input, latent/feature sizes, discriminator, graphs)
    for live models; :func:`tavaal.export.export_models` writes the same fields."""
    input_shape = [int(s) for s in input_shape]
    disc = None if adversarial is None else adversarial.discriminator
    return {
        "input": {"shape": input_shape, "dtype": "float32", "mean": None if mean is None else [float(v) for v in mean],
                  "std": None if std is None else [float(v) for v in std]},
        "latent_dim": None if disc is None else int(disc.latent_dim),
        "feature_dim": int(task.backbone.feature_dim),
        "num_classes": int(task.backbone.num_classes),
        "discriminator": None if disc is None else {
            "rank_conditioned": bool(disc.rank_conditioned), "layers": int(disc.num_layers),
            "hidden": int(disc.hidden_dim)},
        "models": {name: {"inputs": ins, "outputs": outs} for name, (_, ins, outs) in graphs.items()},
        "rank_mode": rank_mode,
    }
