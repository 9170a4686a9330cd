"""What a selection method is: one declaration of everything the package asks about it.

A :class:`Method` says what a cycle trains for it (:meth:`Method.training`), how it selects
(``rule``: a :class:`ScoreRule`, one score per row with the ``budget`` best kept by a running
top-b; an :class:`EmbeddingRule`, one vector per row, then a set operation over all of them;
or None, a seeded uniform draw), what selection needs and how plots and reports show it.

The streaming loop that runs a rule is :func:`tavaal.scoring.select_from_pool`; the graphs
(``scorer`` x -> (loss, r, mu, score), ``ranker`` x -> (loss, r), ``features`` x -> feature,
``classifier`` x -> (logits, probs, feature)) are :mod:`tavaal.scoring.graphs`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, Union

import torch

__all__ = ["Method", "ScoreRule", "EmbeddingRule", "Training", "Outputs", "per_image", "as_probabilities"]

Outputs = Dict[str, torch.Tensor]
"""Graph outputs by name: (B, ...) float32 CPU tensors."""

RANKER_LOSSES = (None, "ranking", "margin")
ADVERSARIAL_KINDS = (None, "rank", "plain")
GRAPHS = ("scorer", "ranker", "features", "classifier")


@dataclass(frozen=True)
class ScoreRule:
    """A per-row score; the ``budget`` best rows are selected.

    Attributes:
        graph: the scorer graph whose outputs ``score`` reads ("scorer", "ranker", "classifier").
        score: graph outputs -> (B,) float32 scores; for ``stochastic`` rules the outputs hold
            ``"probs_samples"`` (T, B, K). None for ``fused`` rules.
        largest: True: highest scores first (uncertainty); False: lowest first.
        fused: D(r, mu) computed and selected inside ``ops.score_topb`` (TA-VAAL / VAAL).
        rank_conditioned: for fused rules, whether D takes r (True) or not (False).
        stochastic: needs ``mc_samples`` stochastic passes with dropout on (live eager models).
    """

    graph: str
    score: Optional[Callable[[Outputs], torch.Tensor]]
    largest: bool
    fused: bool = False
    rank_conditioned: Optional[bool] = None
    stochastic: bool = False


@dataclass(frozen=True)
class EmbeddingRule:
    """One vector per row, then a set selection over the (candidates + centers) matrix.

    Attributes:
        graph: the scorer graph whose outputs ``embed`` reads.
        embed: graph outputs -> (B, D) float32 embedding.
        select: ``select(features (N, D) float32, budget, *, centers, rng, metric, num_classes)
            -> (picks, values)``; ``features`` rows ``[0, n_candidates)`` are the candidates, the
            rest the labeled rows (``centers``: their int64 positions, or None when there are
            none); ``rng`` the selection's numpy Generator; ``num_classes`` K of the task model;
            ``picks`` (budget,) int64 positions among the candidates, most informative first;
            ``values`` (budget,) float32 reported as the score.
        uses_labeled: embed the labeled rows as ``centers`` (core-set); False: candidates only.
    """

    graph: str
    embed: Callable[[Outputs], torch.Tensor]
    select: Callable[..., Tuple[torch.Tensor, torch.Tensor]]
    uses_labeled: bool = True


@dataclass(frozen=True)
class Training:
    """What a cycle trains for a method under a configuration (:meth:`Method.training`).

    ``ranker_loss``: "ranking", "margin" or None (no Ranker loss); ``with_ranker``: a Ranker is
    attached to the task learner; ``dropout``: the task learner's dropout rate; ``adversarial``:
    "rank" (TA-VAAL's rank-conditioned WAE + D), "plain" (VAAL) or None; ``subset``: size of the
    random candidate subset (0: the whole unlabeled pool)."""

    ranker_loss: Optional[str]
    with_ranker: bool
    dropout: float
    adversarial: Optional[str]
    subset: int

    @property
    def key(self) -> str:
        """Names the task learner (what the simulation's cycle-0 sharing is keyed on)."""
        return f"{self.ranker_loss or 'ce'}-{'ranker' if self.with_ranker else 'noranker'}-dropout{self.dropout:g}"


@dataclass(frozen=True)
class Method:
    """A selection method (see the module docstring); register with
    :func:`tavaal.methods.register_method`.

    Attributes:
        name: the ``--method`` name.
        label: display name (plots, reports).
        description: one line for the docs and ``--help``.
        rule: how it selects (:class:`ScoreRule`, :class:`EmbeddingRule`, or None: uniform draw).
        ranker_loss: the Ranker's training loss ("ranking": eq. 1, "margin": Learning Loss) or None.
        adversarial: "rank" (TA-VAAL), "plain" (VAAL) or None: which WAE + discriminator it trains.
        dropout: train and select with the MC-dropout rate (``config.mc_dropout``).
        uses_subset: candidates are a seeded random subset of the pool (``config.subset``).
        selects_as: the name of another method whose selection it runs (e.g. Learning Loss v2
            trains differently from Learning Loss but selects the same way); None: its own.
        dense: has a per-image form for segmentation (per-pixel) task learners.
        compare: in the default method comparison (``benchmarks/validate.py``).
        color: a matplotlib colour for plots (None: the next colour of the cycle).
    """

    name: str
    label: str
    description: str
    rule: Union[ScoreRule, EmbeddingRule, None]
    ranker_loss: Optional[str] = None
    adversarial: Optional[str] = None
    dropout: bool = False
    uses_subset: bool = True
    selects_as: Optional[str] = None
    dense: bool = True
    compare: bool = True
    color: Optional[str] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"a method name must be a non-empty word (letters, digits, - or _), got {self.name!r}")
        if self.rule is not None and not isinstance(self.rule, (ScoreRule, EmbeddingRule)):
            raise TypeError(f"method {self.name!r}: rule must be a ScoreRule, an EmbeddingRule or None, "
                            f"got {type(self.rule).__name__}")
        if self.rule is not None and self.rule.graph not in GRAPHS:
            raise ValueError(f"method {self.name!r}: graph must be one of {GRAPHS}, got {self.rule.graph!r}")
        if self.ranker_loss not in RANKER_LOSSES:
            raise ValueError(f"method {self.name!r}: ranker_loss must be one of {RANKER_LOSSES}, got {self.ranker_loss!r}")
        if self.adversarial not in ADVERSARIAL_KINDS:
            raise ValueError(f"method {self.name!r}: adversarial must be one of {ADVERSARIAL_KINDS}, "
                             f"got {self.adversarial!r}")

    @property
    def selection_name(self) -> str:
        """The method name :func:`tavaal.scoring.select_from_pool` runs for this method."""
        return self.selects_as or self.name

    def training(self, config) -> Training:
        """What a cycle trains for this method under ``config`` (a :class:`tavaal.config.RunConfig`):
        ``config.ranker_for_all`` (the official code's bug B1) gives every method a Ranker
        trained with the ranking loss."""
        return Training(ranker_loss=self.ranker_loss or ("ranking" if config.ranker_for_all else None),
                        with_ranker=self.ranker_loss is not None or config.ranker_for_all,
                        dropout=config.mc_dropout if self.dropout else 0.0, adversarial=self.adversarial,
                        subset=config.resolved_subset() if self.uses_subset else 0)

    def can_select_with(self, trained: "Method") -> bool:
        """Whether models trained for ``trained`` hold what this method selects with: its
        discriminator kind, a Ranker when it reads one, dropout when it samples with it."""
        return ((self.adversarial is None or trained.adversarial == self.adversarial)
                and (self.ranker_loss is None or trained.ranker_loss is not None)
                and (not self.dropout or trained.dropout))


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


def as_probabilities(probs, min_classes: int = 1) -> torch.Tensor:
    """``probs`` (B, K) softmax probabilities as float32; TypeError / ValueError for a
    non-tensor, a non-floating or non-2-D tensor, or fewer than ``min_classes`` columns."""
    if not isinstance(probs, torch.Tensor):
        raise TypeError(f"probs must be a torch.Tensor, got {type(probs).__name__}")
    if probs.dim() != 2:
        raise ValueError(f"probs must be 2-D (rows, classes), got shape {tuple(probs.shape)}")
    if not probs.dtype.is_floating_point:
        raise TypeError(f"probs must be floating (softmax probabilities), got {probs.dtype}")
    if probs.shape[1] < min_classes:
        raise ValueError(f"probs needs at least {min_classes} classes (columns), got {probs.shape[1]}")
    return probs.to(torch.float32)
