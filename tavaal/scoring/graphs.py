"""The scoring graphs: what ``tavaal.export`` writes and :class:`tavaal.scoring.Scorer` runs.

Over a cycle's task models (backbone + optional Ranker) and adversarial models (WAE +
discriminator, optional), :func:`build_graphs` returns, by name: ``ranker``
(:class:`RankerGraph`), ``encoder`` (x -> mu, the WAE posterior mean), ``discriminator``
(:class:`DiscriminatorGraph`; VAAL: :class:`PlainDiscriminatorGraph`), ``scorer`` (the three
combined, :class:`ScorerGraph`), ``features`` (:class:`FeatureGraph`) and ``classifier``
(:class:`ClassifierGraph`). :class:`NormalizeGraph` is exported beside them.
:func:`quiet_torch_deprecations` filters the deprecation warnings torch >= 2.9 emits while the
graphs are traced, exported or loaded.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..data.normalization import uint8_scale_shift

__all__ = ["build_graphs", "cycle_graphs", "quiet_torch_deprecations", "RankerGraph", "DiscriminatorGraph",
           "PlainDiscriminatorGraph", "ScorerGraph", "FeatureGraph", "ClassifierGraph", "NormalizeGraph", "Graphs"]

Graphs = Dict[str, Tuple[nn.Module, List[str], List[str]]]
"""name -> (module in eval mode, input names, output names)."""


@contextlib.contextmanager
def quiet_torch_deprecations():
    """Filter the deprecation/tracer warnings of torch.jit and torch.onnx (torch >= 2.9) and
    the exporter's console chatter; everything else passes through."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration",
                                              "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated.*")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*feature will be removed.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch(\.|$)")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx(\.|$)")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)


class RankerGraph(nn.Module):
    """x -> (loss, r): the task backbone's stages through the Ranker; r = ``ranker.normalize(loss)``
    (its ``rank_norm`` with the cycle's statistics) when ``normalized`` (what D sees in TA-VAAL),
    else r = loss."""

    def __init__(self, backbone: nn.Module, ranker: nn.Module, normalized: bool = True):
        super().__init__()
        self.backbone = backbone
        self.ranker = ranker
        self.normalized = bool(normalized)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _, _, stages = self.backbone(x)
        loss = self.ranker(stages)
        r = self.ranker.normalize(loss) if self.normalized else loss
        return loss, r


class DiscriminatorGraph(nn.Module):
    """(r, mu) -> D(r, mu) for a rank-conditioned discriminator; use :class:`PlainDiscriminatorGraph`
    (mu -> D(mu)) for VAAL."""

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, r: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        return self.discriminator(r, mu)


class PlainDiscriminatorGraph(nn.Module):
    """mu -> D(mu) (VAAL's discriminator, no rank input)."""

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        return self.discriminator(None, mu)


class ScorerGraph(nn.Module):
    """x -> (loss, r, mu, score) (TA-VAAL) or x -> (mu, score) (VAAL, no Ranker)."""

    def __init__(self, encoder: nn.Module, discriminator: nn.Module, ranker: Optional[RankerGraph] = None):
        super().__init__()
        self.ranker = ranker
        self.encoder = encoder
        self.discriminator = discriminator

    def forward(self, x: torch.Tensor):
        mu = self.encoder(x)
        if self.ranker is None:
            return mu, self.discriminator(None, mu)
        loss, r = self.ranker(x)
        return loss, r, mu, self.discriminator(r, mu)


class FeatureGraph(nn.Module):
    """x -> the task learner's penultimate feature (what core-set's k-center runs on)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[1]


class ClassifierGraph(nn.Module):
    """x -> (logits (B, K), probs = softmax(logits) (B, K), feature (B, F)): what the
    probability-based methods (entropy, margin, least confidence, BADGE, MC-dropout) read."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, feature, _ = self.backbone(x)
        return logits, torch.softmax(logits, dim=1), feature


class NormalizeGraph(nn.Module):
    """uint8 raw values (B, *input_shape) -> float32 ``(x / 255 - mean) / std`` (per channel for
    images, per feature for vectors; no mean/std: x / 255)."""

    def __init__(self, input_shape: Sequence[int], mean: Optional[Sequence[float]], std: Optional[Sequence[float]]):
        super().__init__()
        scale, shift = uint8_scale_shift(mean, std, tuple(input_shape), batch=True)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32) * self.scale + self.shift


def build_graphs(task, adversarial=None, rank_mode: str = "normalized") -> Graphs:
    """The graphs (see the module docstring) over ``task`` (TaskModels) and ``adversarial``
    (AdversarialModels or None). They share the given modules (no copies) and put them in eval
    mode. Raises ValueError for a rank-conditioned discriminator without a Ranker."""
    graphs: Graphs = {}
    backbone = task.backbone.eval()
    ranker_graph = None
    if task.ranker is not None:
        ranker_graph = RankerGraph(backbone, task.ranker.eval(), (rank_mode or "normalized") == "normalized")
        graphs["ranker"] = (ranker_graph, ["x"], ["loss", "r"])
    if adversarial is not None:
        encoder = adversarial.wae.eval().mean_encoder().eval()
        disc = adversarial.discriminator.eval()
        graphs["encoder"] = (encoder, ["x"], ["mu"])
        if disc.rank_conditioned:
            if ranker_graph is None:
                raise ValueError("the models have a rank-conditioned discriminator but no Ranker")
            graphs["discriminator"] = (DiscriminatorGraph(disc), ["r", "mu"], ["score"])
            graphs["scorer"] = (ScorerGraph(encoder, disc, ranker_graph), ["x"], ["loss", "r", "mu", "score"])
        else:
            graphs["discriminator"] = (PlainDiscriminatorGraph(disc), ["mu"], ["score"])
            graphs["scorer"] = (ScorerGraph(encoder, disc, None), ["x"], ["mu", "score"])
    graphs["features"] = (FeatureGraph(backbone), ["x"], ["feature"])
    graphs["classifier"] = (ClassifierGraph(backbone), ["x"], ["logits", "probs", "feature"])
    for module, _, _ in graphs.values():
        module.eval()
    return graphs


def cycle_graphs(models) -> Graphs:
    """:func:`build_graphs` over a checkpoint's models (a :class:`tavaal.checkpoint.CycleModels`)."""
    return build_graphs(models.task, models.adversarial, models.spec.get("rank_mode", "normalized"))
