"""The loop's one error type: a clear message plus the offending lines (first 20 and a count)."""
from __future__ import annotations

from typing import Iterable, List, Optional

__all__ = ["LoopError", "SHOW_LINES", "format_problems"]

SHOW_LINES = 20
"""Offending lines quoted in an error message; the rest are counted."""


def format_problems(problems: Iterable[str], limit: int = SHOW_LINES) -> str:
    """``problems`` as indented lines, the first ``limit`` of them and ``... and N more``."""
    problems = list(problems)
    lines = [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more ({len(problems)} in all)")
    return "\n".join(lines)


class LoopError(ValueError):
    """A request the labeling loop refuses, raised before anything in the work directory
    changes. ``problems`` holds one string per offending line or id (all of them; the
    message quotes the first :data:`SHOW_LINES`)."""

    def __init__(self, message: str, problems: Optional[List[str]] = None):
        self.problems = list(problems or [])
        self.summary = message
        text = message
        if self.problems:
            text += f" ({len(self.problems)} offending):\n" + format_problems(self.problems)
        super().__init__(text)
