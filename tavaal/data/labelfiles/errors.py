"""The one error of the label-file registry: a clear message plus every offending line."""
from __future__ import annotations

from typing import List, Optional

__all__ = ["LabelFileError", "ProblemsError", "SHOW_LINES"]

SHOW_LINES = 20
"""Offending lines quoted in an error message; the rest are counted."""


class ProblemsError(ValueError):
    """An error that lists its offending items: ``summary`` is the one-line reason, ``problems``
    one string per offending line, task or sample (all of them; the message quotes the first
    :data:`SHOW_LINES`, indented, and counts the rest). The base of :class:`LabelFileError` and
    of the loop's ``LoopError``."""

    def __init__(self, message: str, problems: Optional[List[str]] = None):
        self.problems = list(problems or [])
        self.summary = message
        details = ""
        if self.problems:
            lines = [f"  {p}" for p in self.problems[:SHOW_LINES]]
            if len(self.problems) > SHOW_LINES:
                lines.append(f"  ... and {len(self.problems) - SHOW_LINES} more ({len(self.problems)} in all)")
            details = f" ({len(self.problems)} offending):\n" + "\n".join(lines)
        super().__init__(message + details)


class LabelFileError(ProblemsError):
    """A label file (or a set of annotations) that cannot be used as it is."""
