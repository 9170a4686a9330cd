"""What a selection may pick: the budget check and the seeded candidate-subset draw.

Both work on the label state as sorted row numbers (``labeled``: the labeled, pending or
otherwise excluded rows of a pool of ``num_rows``), so the simulation, the labeling loop and
:func:`tavaal.scoring.select_from_pool` draw the same candidates from the same seed.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .errors import BudgetExceededError

__all__ = ["check_budget", "draw_candidates", "unlabeled_rows"]


def check_budget(budget: int, available: int, what: str = "unlabeled samples left",
                 hint: str = "lower the budget or the number of cycles") -> int:
    """Validate a per-cycle budget against what is available; return it as an int.

    Raises ValueError when ``budget`` is not a positive int and
    :class:`BudgetExceededError` (a ValueError) naming ``what`` and ``hint`` when it exceeds
    ``available``."""
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    if budget > available:
        raise BudgetExceededError(f"budget of {budget} exceeds the {available} {what}; {hint}")
    return int(budget)


def unlabeled_rows(positions: np.ndarray, labeled: np.ndarray) -> np.ndarray:
    """Row of the ``positions``-th unlabeled row (``labeled`` sorted, distinct), int64, in
    O(M log L) without materialising the unlabeled rows."""
    positions = np.asarray(positions)
    shifted = labeled - np.arange(labeled.size, dtype=np.int64)  # unlabeled rows before each labeled row
    return positions.astype(np.int64) + np.searchsorted(shifted, positions, side="right")


def draw_candidates(num_rows: int, labeled: np.ndarray, size: int,
                    rng: np.random.Generator) -> Optional[np.ndarray]:
    """The paper's "subset method": ``size`` distinct unlabeled rows drawn uniformly with
    ``rng.choice(num_unlabeled, size, replace=False)``, returned sorted (int64).

    ``labeled``: sorted distinct excluded rows. Returns None when ``size <= 0`` or ``size``
    covers every unlabeled row (the candidates are then all unlabeled rows, iterated lazily by
    the caller); no random number is drawn in that case."""
    n_unl = int(num_rows) - labeled.size
    if size <= 0 or size >= n_unl:
        return None
    pos = rng.choice(n_unl, size=int(size), replace=False)
    return np.sort(unlabeled_rows(pos, labeled))
