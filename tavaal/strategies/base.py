"""The common interface of selection strategies: ``select(pool, budget) -> indices``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
import torch

from ..config import RunConfig
from ..data import Pool, check_budget
from ..training import AdversarialModels, TaskModels


@dataclass
class SelectionContext:
    """What a strategy may look at: the un-augmented training set and the cycle's models."""

    config: RunConfig
    dataset: torch.utils.data.Dataset
    task: Optional[TaskModels] = None
    adversarial: Optional[AdversarialModels] = None
    rng: Optional[np.random.Generator] = None
    device: str = "cpu"

    def __post_init__(self):
        if self.rng is None:
            self.rng = np.random.default_rng(self.config.seed)


class Strategy:
    """Base class. Subclasses set the class attributes and implement :meth:`pick`.

    Class attributes tell the cycle runner how to train before selecting:
    ``ranker_loss`` ("ranking", "margin" or None), ``adversarial`` ("rank" for TA-VAAL,
    "plain" for VAAL, or None), ``dropout`` (use the MC-dropout rate in the task learner),
    ``uses_subset`` (draw candidates from a random subset of the pool).
    """

    name: ClassVar[str] = ""
    ranker_loss: ClassVar[Optional[str]] = None
    adversarial: ClassVar[Optional[str]] = None
    dropout: ClassVar[bool] = False
    uses_subset: ClassVar[bool] = True

    def __init__(self, context: SelectionContext):
        self.context = context

    @property
    def config(self) -> RunConfig:
        return self.context.config

    def candidates(self, pool: Pool) -> np.ndarray:
        """The paper's subset method: a random subset of the unlabeled pool (all of it for
        ``--subset 0`` or strategies that do not use subsets)."""
        subset = self.config.resolved_subset() if self.uses_subset else 0
        return pool.random_subset(subset, self.context.rng)

    def select(self, pool: Pool, budget: int, candidates: Optional[np.ndarray] = None) -> np.ndarray:
        """``budget`` distinct unlabeled indices (np.int64), most informative first.

        ``candidates`` (a subset of ``pool.unlabeled``) defaults to :meth:`candidates`.
        Raises ValueError when the budget exceeds the candidates.
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

    def pick(self, pool: Pool, candidates: np.ndarray, budget: int) -> np.ndarray:
        """Return ``budget`` elements of ``candidates``."""
        raise NotImplementedError

    def _require_task(self, need_ranker: bool = False) -> TaskModels:
        task = self.context.task
        if task is None or (need_ranker and task.ranker is None):
            what = "a task learner with a Ranker" if need_ranker else "a trained task learner"
            raise ValueError(f"strategy {self.name!r} needs {what} in its SelectionContext")
        return task
