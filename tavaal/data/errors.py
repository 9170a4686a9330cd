"""Errors raised by the dataset readers and the pool bookkeeping.

Every message is meant to be actionable: it names the file or folder that was looked for
(or that is broken), what was expected there and, for the public datasets, where to get it.
"""

from __future__ import annotations

from os import PathLike
from typing import Iterable, Sequence

__all__ = ["DataError", "DatasetNotFoundError", "CorruptDatasetError", "PoolIndexError", "BudgetExceededError"]


class DataError(Exception):
    """Base class of the errors raised by :mod:`tavaal.data`."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """The files of a dataset are not where they were expected.

    The message says which files are expected in which folder, and how to obtain them.
    ``missing`` lists the paths that were looked for and not found.
    """

    def __init__(self, message: str, missing: Iterable[str | PathLike] = ()):
        Exception.__init__(self, message)
        self.message = message
        self.missing = [str(p) for p in missing]

    def __str__(self) -> str:
        return self.message


class CorruptDatasetError(DataError, ValueError):
    """A dataset file exists but cannot be read (truncated, wrong shape, bad header...).

    ``path`` is the offending file (or the first of ``paths`` when several are bad).
    """

    def __init__(self, message: str, path: str | PathLike | None = None,
                 paths: Sequence[str | PathLike] = ()):
        super().__init__(message)
        self.paths = [str(p) for p in paths] or ([str(path)] if path is not None else [])
        self.path = str(path) if path is not None else (self.paths[0] if self.paths else None)


class PoolIndexError(DataError, ValueError):
    """Indices handed to :class:`~tavaal.data.Pool` are invalid (type, range, duplicates,
    already labeled). ``indices`` holds the offending indices."""

    def __init__(self, message: str, indices: Iterable[int] = ()):
        super().__init__(message)
        self.indices = [int(i) for i in indices]


class BudgetExceededError(DataError, ValueError):
    """More samples were requested than the unlabeled pool (or the data set) holds."""
