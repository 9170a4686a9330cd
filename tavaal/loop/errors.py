"""The loop's one error type: a clear message plus the offending lines (first
:data:`~tavaal.data.labelfiles.errors.SHOW_LINES` and a count, formatted as the label-file
registry formats its own)."""
from __future__ import annotations

from typing import List, Optional

from ..data.labelfiles.errors import format_problems

__all__ = ["LoopError"]


class LoopError(ValueError):
    """A request the labeling loop refuses, raised before anything in the work directory
    changes. ``problems`` holds one string per offending line or id (all of them; the
    message quotes the first twenty)."""

    def __init__(self, message: str, problems: Optional[List[str]] = None):
        self.problems = list(problems or [])
        self.summary = message
        text = message
        if self.problems:
            text += f" ({len(self.problems)} offending):\n" + format_problems(self.problems)
        super().__init__(text)
