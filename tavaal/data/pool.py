"""Labeled / unlabeled bookkeeping of the active-learning pool: the *label state*.

A :class:`Pool` is an *immutable* value: :meth:`Pool.label` returns a new pool and leaves the
old one untouched, so that the labeled set of every cycle can be kept, compared and saved
without defensive copies (``pool = pool.label(selected)``).

Indices are always rows of the row source the samples are read from
(:mod:`tavaal.data.sources`; for the simulation, the training set of the
:class:`~tavaal.data.DatasetBundle`, ``bundle.train_source``): ``0 <= i < num_samples``,
returned as sorted ``np.int64`` arrays. How rows are *read* is the row source's business,
never the Pool's.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from .errors import BudgetExceededError, PoolIndexError

__all__ = ["Pool"]

_SHOW = 10  # offending indices quoted in an error message


def _quote(values: np.ndarray) -> str:
    values = np.asarray(values).ravel()
    shown = ", ".join(str(int(v)) for v in values[:_SHOW])
    more = f", ... ({values.size} in all)" if values.size > _SHOW else ""
    return f"[{shown}{more}]"


def _as_index_array(indices: Any, num_samples: int, what: str) -> np.ndarray:
    """Validate ``indices`` as unique in-range integers; return a 1-D int64 array."""
    if hasattr(indices, "detach") and hasattr(indices, "cpu"):  # torch tensor
        indices = indices.detach().cpu().numpy()
    if isinstance(indices, numbers.Integral):
        indices = [indices]
    arr = np.asarray(list(indices) if isinstance(indices, (set, frozenset)) else indices)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_:
        raise PoolIndexError(f"{what}: got a boolean array; pass integer indices "
                             "(e.g. np.flatnonzero(mask))")
    if arr.ndim != 1:
        raise PoolIndexError(f"{what}: expected a 1-D sequence of indices, got shape {arr.shape}")
    if arr.dtype == object:
        bad = [v for v in arr if not isinstance(v, numbers.Integral)]
        if bad:
            raise PoolIndexError(f"{what}: indices must be integers, got {bad[:_SHOW]!r}")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise PoolIndexError(f"{what}: indices must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    out = arr[(arr < 0) | (arr >= num_samples)]
    if out.size:
        raise PoolIndexError(f"{what}: indices out of range [0, {num_samples}): {_quote(out)}",
                             out.tolist())
    uniq, counts = np.unique(arr, return_counts=True)
    if uniq.size != arr.size:
        dup = uniq[counts > 1]
        raise PoolIndexError(f"{what}: duplicate indices: {_quote(dup)}", dup.tolist())
    return arr


class Pool:
    """Which training samples are labeled.

    Parameters
    ----------
    num_samples:
        Size of the training set.
    labeled:
        Indices of the labeled samples (any iterable of ints / int array / tensor);
        validated: integers in ``[0, num_samples)``, no duplicates.

    Attributes ``labeled`` and ``unlabeled`` are sorted ``np.int64`` arrays (read-only views),
    disjoint, and together cover ``range(num_samples)``.
    """

    __slots__ = ("_n", "_mask", "_labeled", "_unlabeled")

    def __init__(self, num_samples: int, labeled: Iterable[int] | np.ndarray = ()):
        if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
            raise TypeError(f"num_samples must be an int, got {num_samples!r}")
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        self._n = int(num_samples)
        idx = _as_index_array(labeled, self._n, "Pool(labeled=...)")
        mask = np.zeros(self._n, dtype=bool)
        mask[idx] = True
        self._set_mask(mask)

    def _set_mask(self, mask: np.ndarray) -> None:
        self._mask = mask
        self._labeled = np.flatnonzero(mask).astype(np.int64)
        self._unlabeled = np.flatnonzero(~mask).astype(np.int64)
        for arr in (self._mask, self._labeled, self._unlabeled):
            arr.setflags(write=False)

    @classmethod
    def initial(cls, num_samples: int, size: int,
                rng: np.random.Generator | int | None = None) -> "Pool":
        """Pool whose labeled set is ``size`` samples drawn uniformly without replacement.

        ``rng`` is a numpy Generator, a seed (same seed -> same initial set) or None (unseeded)."""
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 0:
            raise ValueError(f"initial labeled set size must be an int >= 0, got {size!r}")
        if size > num_samples:
            raise BudgetExceededError(
                f"initial labeled set of {size} samples is larger than the data set "
                f"({num_samples} training samples); lower the initial size")
        chosen = np.random.default_rng(rng).choice(int(num_samples), size=int(size), replace=False)
        return cls(num_samples, chosen)

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def labeled(self) -> np.ndarray:
        """Sorted int64 indices of the labeled samples (read-only)."""
        return self._labeled

    @property
    def unlabeled(self) -> np.ndarray:
        """Sorted int64 indices of the unlabeled samples (read-only)."""
        return self._unlabeled

    @property
    def mask(self) -> np.ndarray:
        """Boolean array of length ``num_samples``, True where labeled (read-only)."""
        return self._mask

    @property
    def num_labeled(self) -> int:
        return int(self._labeled.size)

    @property
    def num_unlabeled(self) -> int:
        return int(self._unlabeled.size)

    def label(self, indices: Iterable[int] | np.ndarray) -> "Pool":
        """Return a **new** pool with ``indices`` moved from unlabeled to labeled.

        Raises :class:`PoolIndexError` (a ValueError) naming the offending indices when they
        are not integers, out of range, repeated, or already labeled. ``self`` is unchanged.
        """
        idx = _as_index_array(indices, self._n, "Pool.label")
        already = idx[self._mask[idx]]
        if already.size:
            raise PoolIndexError(f"Pool.label: indices already labeled: {_quote(np.sort(already))}",
                                 np.sort(already).tolist())
        mask = self._mask.copy()
        mask[idx] = True
        pool = Pool.__new__(Pool)  # the indices are checked: skip __init__
        pool._n = self._n
        pool._set_mask(mask)
        return pool

    def state_dict(self) -> dict:
        """JSON-serialisable state: ``{"num_samples": int, "labeled": [int, ...]}``."""
        return {"num_samples": self._n, "labeled": self._labeled.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Pool":
        try:
            return cls(int(state["num_samples"]), state["labeled"])
        except KeyError as exc:
            raise ValueError(f"Pool state is missing key {exc.args[0]!r}; "
                             "expected {'num_samples': int, 'labeled': [int, ...]}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pool):
            return NotImplemented
        return self._n == other._n and bool(np.array_equal(self._mask, other._mask))

    def __hash__(self) -> int:
        return hash((self._n, self._labeled.tobytes()))

    def __repr__(self) -> str:
        return f"Pool(num_samples={self._n}, labeled={self.num_labeled}, unlabeled={self.num_unlabeled})"
