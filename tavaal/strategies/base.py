"""The common interface of selection strategies: ``select(pool, budget) -> indices``.

A Strategy class says how the cycle trains before selecting (its class attributes); the
selection itself is the one selection path, :func:`tavaal.scoring.select_from_pool`, over a
:meth:`tavaal.scoring.Scorer.from_models` of the cycle's live models -- the same ops, graphs,
candidate/subset/seed rules as ``python -m tavaal.score`` on exported artifacts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import numpy as np
import torch

from ..config import RunConfig
from ..data import Pool, check_budget
from ..data.sources import DatasetSource, RowSource
from ..training import AdversarialModels, TaskModels


@dataclass
class SelectionContext:
    """What a strategy may look at: the rows and the cycle's models.

    ``dataset`` is the un-augmented training set (a torch Dataset indexed by row); ``source``
    the row source the selection reads (default: ``dataset`` as a
    :class:`~tavaal.data.sources.DatasetSource`); ``mean``/``std`` normalise uint8 sources
    (float sources are taken as normalised)."""

    config: RunConfig
    dataset: Optional[torch.utils.data.Dataset] = None
    task: Optional[TaskModels] = None
    adversarial: Optional[AdversarialModels] = None
    rng: Optional[np.random.Generator] = None
    device: str = "cpu"
    source: Optional[RowSource] = None
    mean: Optional[Sequence[float]] = None
    std: Optional[Sequence[float]] = None

    def __post_init__(self):
        if self.rng is None:
            self.rng = np.random.default_rng(self.config.seed)
        if self.source is None:
            if self.dataset is None:
                raise ValueError("SelectionContext needs a dataset or a row source")
            self.source = DatasetSource(dataset=self.dataset)


class Strategy:
    """Base class. Subclasses set the class attributes; selection is inherited.

    Class attributes tell the cycle runner how to train before selecting:
    ``ranker_loss`` ("ranking", "margin" or None), ``adversarial`` ("rank" for TA-VAAL,
    "plain" for VAAL, or None), ``dropout`` (use the MC-dropout rate in the task learner),
    ``uses_subset`` (draw candidates from a random subset of the pool); and how to select:
    ``selection_method`` (a :mod:`tavaal.scoring.methods` name; default ``name``),
    ``needs_task`` / ``needs_ranker`` (what the context must hold).
    """

    name: ClassVar[str] = ""
    ranker_loss: ClassVar[Optional[str]] = None
    adversarial: ClassVar[Optional[str]] = None
    dropout: ClassVar[bool] = False
    uses_subset: ClassVar[bool] = True
    selection_method: ClassVar[Optional[str]] = None
    needs_task: ClassVar[bool] = True
    needs_ranker: ClassVar[bool] = False

    def __init__(self, context: SelectionContext):
        self.context = context

    @property
    def config(self) -> RunConfig:
        return self.context.config

    @property
    def method(self) -> str:
        """The selection method of :mod:`tavaal.scoring.methods` this strategy runs."""
        return self.selection_method or self.name

    def candidates(self, pool: Pool) -> np.ndarray:
        """The paper's subset method: a random subset of the unlabeled pool (all of it for
        ``--subset 0`` or strategies that do not use subsets)."""
        subset = self.config.resolved_subset() if self.uses_subset else 0
        return pool.random_subset(subset, self.context.rng)

    def select(self, pool: Pool, budget: int, candidates: Optional[np.ndarray] = None) -> np.ndarray:
        """``budget`` distinct unlabeled indices (np.int64), most informative first.

        ``candidates`` (a subset of ``pool.unlabeled``) defaults to :meth:`candidates`.
        Raises ValueError when the budget exceeds the candidates or the context lacks the
        models the method needs.
        """
        if candidates is None:
            candidates = self.candidates(pool)
        candidates = np.asarray(candidates, dtype=np.int64)
        check_budget(budget, len(candidates), what="unlabeled candidates (raise --subset, or 0 for the whole pool)")
        if len(candidates) == budget:
            return candidates.copy()
        picked = np.asarray(self.pick(pool, candidates, budget), dtype=np.int64)
        if len(picked) != budget or len(np.unique(picked)) != budget:
            raise RuntimeError(f"{self.name} returned {len(picked)} picks ({len(np.unique(picked))} distinct) "
                               f"for budget {budget}")
        return picked

    def scorer(self):
        """A :class:`tavaal.scoring.Scorer` over the context's live models (None for random)."""
        from ..scoring import Scorer

        if not self.needs_task:
            return None
        task = self._require_task(need_ranker=self.needs_ranker)
        adversarial = None
        if self.adversarial is not None:
            adversarial = self.context.adversarial
            if adversarial is None:
                raise ValueError(f"strategy {self.name!r} needs trained WAE + discriminator in its SelectionContext")
        return Scorer.from_models(task, adversarial, input_shape=self.context.source.sample_shape,
                                  mean=self.context.mean, std=self.context.std, score_mode=self.config.score_mode,
                                  device=str(self.context.device))

    def pick(self, pool: Pool, candidates: np.ndarray, budget: int) -> np.ndarray:
        """``budget`` elements of ``candidates`` through :func:`tavaal.scoring.select_from_pool`."""
        from ..scoring import select_from_pool

        scorer = self.scorer()
        selection = select_from_pool(scorer, self.context.source, self.method, budget, labeled=pool.labeled,
                                     indices=np.unique(candidates), rng=self.context.rng,
                                     batch_size=self.config.score_batch_size, metric=self.config.coreset_metric,
                                     mc_samples=self.config.mc_samples)
        return selection.rows

    def _require_task(self, need_ranker: bool = False) -> TaskModels:
        task = self.context.task
        if task is None or (need_ranker and task.ranker is None):
            what = "a task learner with a Ranker" if need_ranker else "a trained task learner"
            raise ValueError(f"strategy {self.name!r} needs {what} in its SelectionContext")
        return task
