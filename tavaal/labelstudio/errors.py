"""The one error of the Label Studio front-end: what went wrong and what to do about it."""
from __future__ import annotations

__all__ = ["LabelStudioError", "EXTRA_HINT"]

EXTRA_HINT = 'pip install "tavaal[labelstudio]"'
"""How to install what this package needs (the optional extra: label-studio-sdk)."""


class LabelStudioError(ValueError):
    """A Label Studio request that cannot be done: missing SDK, server unreachable, a token it
    refuses, a project that does not fit, images it does not serve. Raised before the work
    directory changes, except where the message says otherwise."""
