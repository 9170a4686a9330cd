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

``score_batch(x)`` runs the combined scorer graph and returns ``{"loss", "r", "mu",
"score"}`` (VAAL artifacts: ``{"mu", "score"}``) as fp32 CPU tensors; ``rank_batch(x)`` ->
``{"loss", "r"}``; ``features_batch(x)`` -> (B, F). Inputs may be uint8 raw values
(normalised with the manifest's mean/std) or float (taken as already normalised), in the
manifest's layout, or NHWC images (transposed). The discriminator is also available as
an eager :class:`tavaal.models.Discriminator` (``scorer.discriminator``) for the fused
``tavaal.ops.score_topb`` op.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..artifacts import ArtifactError, load_manifest

__all__ = ["Scorer", "BACKENDS", "PRECISIONS", "METHOD_GRAPHS"]

BACKENDS = ("onnx", "torchscript", "eager")
PRECISIONS = ("fp32", "bf16")
METHOD_GRAPHS = {"tavaal": ("scorer",), "vaal": ("scorer",), "lloss": ("ranker",), "coreset": ("features",),
                 "random": ()}


class Scorer:
    """Loaded artifacts + one backend. Build with :meth:`from_artifacts`.

    Thread-safety: a Scorer may be shared by threads (graphs are loaded under a lock; ONNX
    Runtime sessions and TorchScript modules are safe to call concurrently). For Ray, build
    one Scorer per actor with ``threads`` set to the actor's CPU share."""

    def __init__(self, directory: Path, manifest: dict, backend: str = "onnx", precision: str = "fp32",
                 device: str = "cpu", threads: Optional[int] = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if backend == "onnx" and precision == "bf16":
            raise ValueError("precision bf16 is not available with the onnx backend (ONNX Runtime's CPU provider "
                             "has no bf16 convolutions): use --backend torchscript or eager")
        self.directory = Path(directory)
        self.manifest = manifest
        self.backend = backend
        self.precision = precision
        self.device = torch.device(device)
        self.threads = threads
        self.input_shape = tuple(int(s) for s in manifest["input"]["shape"])
        self.methods = list(manifest["methods"])
        self._graphs: Dict[str, object] = {}
        self._lock = threading.Lock()
        self._discriminator = None
        self._eager = None
        mean, std = manifest["input"].get("mean"), manifest["input"].get("std")
        c = self.input_shape[0]
        m = torch.tensor(mean if mean is not None else [0.0] * c, dtype=torch.float32)
        s = torch.tensor(std if std is not None else [1.0] * c, dtype=torch.float32)
        if m.numel() == 1 and c > 1:
            m, s = m.expand(c).clone(), s.expand(c).clone()
        shape = (1, m.numel()) + (1,) * (len(self.input_shape) - 1)
        self._scale = (1.0 / (255.0 * s)).view(shape)
        self._shift = (-m / s).view(shape)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_artifacts(cls, directory, backend: str = "onnx", precision: str = "fp32", device: str = "cpu",
                       threads: Optional[int] = None, verify: bool = True, method: Optional[str] = None) -> "Scorer":
        """Read + version-check the manifest, verify sha256 of every file (``verify``), and
        load the graphs ``method`` needs (all lazily if None). Raises :class:`ArtifactError`
        (bad/tampered artifacts) or ValueError (backend/precision/method)."""
        directory = Path(directory)
        manifest = load_manifest(directory, verify=verify)
        scorer = cls(directory, manifest, backend, precision, device, threads)
        if method is not None:
            scorer.check_method(method)
            for name in METHOD_GRAPHS[method]:
                scorer._graph(name)
            if method in ("tavaal", "vaal"):
                _ = scorer.discriminator
        return scorer

    def check_method(self, method: str) -> None:
        if method not in METHOD_GRAPHS:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHOD_GRAPHS)}")
        if method not in self.methods:
            src = self.manifest.get("source", {})
            raise ValueError(f"these artifacts (exported from a {src.get('method', '?')!r} run) support "
                             f"{', '.join(self.methods)}, not {method!r}")

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
            threads = self.threads or torch.get_num_threads()
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
            providers = ["CPUExecutionProvider"]
            if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            return ort.InferenceSession(str(self._file(name, "onnx")), sess_options=opts, providers=providers)
        if self.backend == "torchscript":
            from ..export import quiet_torch_deprecations

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
            from ..checkpoint import load_cycle_models
            from ..export import _graphs

            self._eager = _graphs(load_cycle_models(self.directory / "models.pt", map_location="cpu"))
        module = self._eager[name][0].to(self.device).eval()
        if len(self.input_shape) == 3:
            module = module.to(memory_format=torch.channels_last)
        return module

    @property
    def discriminator(self):
        """Eager :class:`tavaal.models.Discriminator` with the exported weights (for ``ops.score_topb``)."""
        if self._discriminator is None:
            from ..models import Discriminator

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
        if shape == self.input_shape:
            return
        if len(self.input_shape) == 3 and shape == self.input_shape[1:] + self.input_shape[:1]:
            return
        if len(self.input_shape) == 3 and self.input_shape[0] == 1 and shape == self.input_shape[1:]:
            return
        raise ValueError(f"{what} samples have shape {list(shape)} but the artifacts expect {list(self.input_shape)}"
                         + (" (or NHWC)" if len(self.input_shape) == 3 else ""))

    def prepare(self, x) -> torch.Tensor:
        """A batch as the graphs' float32 input: uint8 -> (x/255 - mean)/std, float16/bf16 ->
        float32, NHWC -> NCHW, (B, H, W) -> (B, 1, H, W)."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        shape = tuple(x.shape[1:])
        if shape != self.input_shape and len(self.input_shape) == 3:
            if shape == self.input_shape[1:] + self.input_shape[:1]:
                x = x.permute(0, 3, 1, 2)
            elif self.input_shape[0] == 1 and shape == self.input_shape[1:]:
                x = x.unsqueeze(1)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"batch has sample shape {list(shape)} but the artifacts expect {list(self.input_shape)}")
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

    def encode_batch(self, x) -> torch.Tensor:
        """WAE posterior mean mu (B, d), fp32."""
        return self._run("encoder", [self.prepare(x)])["mu"]

    def discriminate(self, r: Optional[torch.Tensor], mu: torch.Tensor) -> torch.Tensor:
        """D(r, mu) through the exported discriminator graph (VAAL: r ignored), fp32 (B,)."""
        inputs = [mu] if self.manifest["models"]["discriminator"]["inputs"] == ["mu"] else [r, mu]
        return self._run("discriminator", inputs)["score"]

    def __repr__(self) -> str:
        return (f"Scorer({self.directory}, backend={self.backend}, precision={self.precision}, "
                f"device={self.device}, methods={self.methods})")
