"""The selection methods, one registry for every caller (strategies, labeling loop, ``tavaal.score``).

A method says which scorer graph feeds it and how its outputs become a selection; the
streaming loop that runs it is :func:`tavaal.scoring.select_from_pool`. Three kinds:

* :class:`ScoreMethod` -- one score per row, the best ``budget`` kept by a running top-b
  (``tavaal.ops.topb``): lloss (highest predicted loss), entropy, mcdropout (BALD over
  ``mc_samples`` stochastic passes), and the fused discriminator methods tavaal / vaal
  (lowest D(r, mu) through ``tavaal.ops.score_topb``);
* :class:`EmbeddingMethod` -- one vector per row, written to a memory-mapped (N, D) matrix,
  then a set operation over all of them: coreset (exact greedy k-center with the labeled
  rows as initial centers);
* ``random`` -- no model at all (seeded uniform draw).

Graphs (exported by :mod:`tavaal.export`, and built the same way over live models by
:meth:`tavaal.scoring.Scorer.from_models`): ``scorer`` x -> (loss, r, mu, score) (VAAL:
(mu, score)); ``ranker`` x -> (loss, r); ``features`` x -> feature; ``classifier`` x ->
(logits, probs, feature).

Adding a method = one entry in :data:`_BUILTIN` (or :func:`register_method` from outside);
its Strategy class (training attributes only) goes in :mod:`tavaal.strategies`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch

from .. import ops

__all__ = ["ScoreMethod", "EmbeddingMethod", "RANDOM", "register_method", "get_method", "method_names",
           "supported_methods", "entropy_scores", "bald_scores", "Method"]

Outputs = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class ScoreMethod:
    """A per-row score; the ``budget`` best rows are selected.

    Attributes:
        name: the method name (``--method``).
        graph: the scorer graph whose outputs ``score`` reads ("scorer", "ranker", "classifier").
        score: graph outputs (dict of (B, ...) float32 CPU tensors) -> (B,) float32 scores;
            for ``passes="mc"`` the dict holds ``"probs_samples"`` (T, B, K) instead.
        largest: True: highest scores first (uncertainty); False: lowest first.
        fused: D(r, mu) computed and selected inside ``ops.score_topb`` (tavaal/vaal).
        rank_conditioned: for fused methods, whether D takes r (tavaal) or not (vaal).
        stochastic: needs ``mc_samples`` stochastic passes with dropout on (live eager models).
        description: one line for the docs and ``--help``.
        dense: whether it also selects for segmentation (per-pixel) task learners.
    """

    name: str
    graph: str
    score: Optional[Callable[[Outputs], torch.Tensor]]
    largest: bool
    fused: bool = False
    rank_conditioned: Optional[bool] = None
    stochastic: bool = False
    description: str = ""
    dense: bool = True
    """Also works for segmentation (per-pixel) outputs."""


@dataclass(frozen=True)
class EmbeddingMethod:
    """One vector per row, then a set selection over the (candidates + centers) matrix.

    Attributes:
        name, graph, description: as :class:`ScoreMethod`.
        embed: graph outputs -> (B, D) float32 embedding.
        select: ``select(features (N, D) float32, budget, *, centers, rng, metric, num_classes)
            -> (picks, values)``; ``features`` rows ``[0, n_candidates)`` are the candidates, the
            rest the labeled rows (``centers``: their int64 positions, or None when there are
            none); ``rng`` the selection's numpy Generator; ``num_classes`` K of the task model
            (e.g. to split an embedding that concatenates (B, K) and (B, F) parts);
            ``picks`` (budget,) int64 positions among the candidates, most informative first;
            ``values`` (budget,) float32 reported as the score.
        uses_labeled: embed the labeled rows as ``centers`` (coreset); False: candidates only.
    """

    name: str
    graph: str
    embed: Callable[[Outputs], torch.Tensor]
    select: Callable[..., Tuple[torch.Tensor, torch.Tensor]]
    uses_labeled: bool = True
    description: str = ""
    dense: bool = True


@dataclass(frozen=True)
class _Random:
    name: str = "random"
    graph: Optional[str] = None
    description: str = "uniform draw without replacement (seeded)"
    dense: bool = True


RANDOM = _Random()
Method = Union[ScoreMethod, EmbeddingMethod, _Random]


# ------------------------------------------------------------------------------- math
def per_image(score: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Lift a per-row score of (B, K) class scores to dense outputs (B, K, *S) (segmentation):
    every pixel is scored as a row and each image gets the mean over its pixels. (B, K) inputs
    pass through unchanged."""
    def scored(x: torch.Tensor) -> torch.Tensor:
        if x.dim() <= 2:
            return score(x)
        b, k = x.shape[:2]
        return score(x.movedim(1, -1).reshape(-1, k)).reshape(b, -1).mean(1)
    return scored


def entropy_scores(logits: torch.Tensor) -> torch.Tensor:
    """Predictive entropy of softmax(logits) (B, K) -> (B,), computed from log-softmax."""
    log_p = torch.log_softmax(logits.to(torch.float32), dim=1)
    return -(log_p.exp() * log_p).sum(1)


def bald_scores(probabilities: torch.Tensor) -> torch.Tensor:
    """Mutual information H[mean_t p_t] - mean_t H[p_t] for probabilities of shape (T, N, K);
    dense probabilities (T, N, K, H, W) (segmentation) give each image's mean pixel BALD."""
    eps = 1e-12
    mean = probabilities.mean(0)
    entropy_of_mean = -(mean * (mean + eps).log()).sum(1)
    mean_entropy = -(probabilities * (probabilities + eps).log()).sum(2).mean(0)
    bald = entropy_of_mean - mean_entropy
    return bald.flatten(1).mean(1) if bald.dim() > 1 else bald


def _kcenter_select(features: torch.Tensor, budget: int, *, centers: Optional[torch.Tensor],
                    rng: np.random.Generator, metric: str = "euclidean", num_classes: Optional[int] = None):
    """Exact greedy k-center; without labeled centers the first pick is ``rng.integers(n)``."""
    n_cand = features.shape[0] - (0 if centers is None else int(centers.numel()))
    first = None if centers is not None else int(rng.integers(n_cand))
    return ops.kcenter_greedy(features, budget, centers=centers, first=first, metric=metric)


def _strategy_fn(module: str, name: str) -> Callable:
    """``tavaal.strategies.<module>.<name>``, imported at call time (no import cycle)."""
    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"tavaal.strategies.{module}"), name)(*args, **kwargs)

    return call


# ---------------------------------------------------------------------------- registry
# per-image lifts built once, not per scored batch
_entropy = per_image(entropy_scores)
_margin = per_image(_strategy_fn("uncertainty", "margin_scores"))
_least_confidence = per_image(_strategy_fn("uncertainty", "least_confidence_scores"))

_BUILTIN: List[Method] = [
    ScoreMethod("tavaal", "scorer", None, largest=False, fused=True, rank_conditioned=True,
                description="TA-VAAL (eq. 7): lowest D(r, mu), r from the Ranker, mu from the WAE encoder"),
    ScoreMethod("vaal", "scorer", None, largest=False, fused=True, rank_conditioned=False,
                description="VAAL: lowest D(mu)"),
    ScoreMethod("lloss", "ranker", lambda out: out["loss"], largest=True,
                description="Learning Loss: highest predicted loss"),
    EmbeddingMethod("coreset", "features", lambda out: out["feature"], _kcenter_select,
                    description="core-set: exact greedy k-center on the feature layer, labeled rows as centers"),
    ScoreMethod("entropy", "classifier", lambda out: _entropy(out["logits"]), largest=True,
                description="highest predictive entropy of the softmax output (segmentation: mean pixel entropy)"),
    ScoreMethod("mcdropout", "classifier", lambda out: bald_scores(out["probs_samples"]), largest=True,
                stochastic=True, description="MC-dropout BALD over mc_samples passes with dropout on"),
    ScoreMethod("margin", "classifier",
                lambda out: _margin(out["probs"]),
                largest=False, description="margin: smallest gap p_(1) - p_(2) between the two most probable classes"),
    ScoreMethod("leastconf", "classifier",
                lambda out: _least_confidence(out["probs"]),
                largest=True,
                description="least confidence: largest 1 - max_k p_k"),
    EmbeddingMethod("badge", "classifier", _strategy_fn("badge", "badge_embedding"), _strategy_fn("badge", "badge_select"),
                    uses_labeled=False, dense=False,
                    description="BADGE: k-means++ seeding (ops.kmeanspp) on gradient embeddings (p - onehot) x feature"),
    RANDOM,
]
_REGISTRY: Dict[str, Method] = {m.name: m for m in _BUILTIN}


def register_method(method: Method, *, replace: bool = False) -> None:
    """Add a selection method to the registry (ValueError if the name is taken, unless ``replace``)."""
    if method.name in _REGISTRY and not replace:
        raise ValueError(f"a selection method named {method.name!r} is already registered")
    _REGISTRY[method.name] = method


def get_method(name: str) -> Method:
    """The registered method ``name``; ValueError listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(method_names())}") from None


def method_names() -> Tuple[str, ...]:
    return tuple(_REGISTRY)


def supported_methods(graphs: Iterable[str], rank_conditioned: Optional[bool], *, stochastic: bool = False) -> List[str]:
    """The methods a set of graph names supports: their graph is there, fused methods match the
    discriminator (``rank_conditioned``: True tavaal, False vaal, None no discriminator), and
    stochastic ones need live eager models (``stochastic``)."""
    graphs = set(graphs)
    out = []
    for m in _REGISTRY.values():
        if m is RANDOM:
            continue
        if m.graph not in graphs:
            continue
        if isinstance(m, ScoreMethod):
            if m.fused and m.rank_conditioned != rank_conditioned:
                continue
            if m.stochastic and not stochastic:
                continue
        out.append(m.name)
    out.append("random")
    return out
