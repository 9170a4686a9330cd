"""The loop's one error type."""
from __future__ import annotations

from ..data.labelfiles.errors import ProblemsError

__all__ = ["LoopError"]


class LoopError(ProblemsError):
    """A request the labeling loop refuses, raised before anything in the work directory
    changes (``summary``, ``problems``: see :class:`~tavaal.data.labelfiles.errors.ProblemsError`)."""
