"""The one error of the label-file registry: a clear message plus every offending line."""
from __future__ import annotations

from typing import Iterable, List, Optional

__all__ = ["LabelFileError", "ProblemsError", "SHOW_LINES", "format_problems"]

SHOW_LINES = 20
"""Offending lines quoted in an error message; the rest are counted."""


def format_problems(problems: Iterable[str], limit: int = SHOW_LINES) -> str:
    """``problems`` as indented lines, the first ``limit`` of them and ``... and N more``."""
    problems = list(problems)
    lines = [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more ({len(problems)} in all)")
    return "\n".join(lines)


class ProblemsError(ValueError):
    """An error that lists its offending items: ``summary`` is the one-line reason, ``problems``
    one string per offending line, task or sample (all of them; the message quotes the first
    :data:`SHOW_LINES` and counts the rest). The base of :class:`LabelFileError` and of the
    loop's ``LoopError``."""

    def __init__(self, message: str, problems: Optional[List[str]] = None):
        self.problems = list(problems or [])
        self.summary = message
        details = f" ({len(self.problems)} offending):\n{format_problems(self.problems)}" if self.problems else ""
        super().__init__(message + details)


class LabelFileError(ProblemsError):
    """A label file (or a set of annotations) that cannot be used as it is."""
