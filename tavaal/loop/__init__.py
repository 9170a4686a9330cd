"""The labeling loop on your own data: a work directory, no oracle.

``tavaal init|train|select|unselect|label|status`` (see docs/labeling-loop.md) and, from Python,
:class:`Workdir` (an example in :mod:`.workdir`). docs/architecture.md describes the modules;
label files (CSV, Label Studio exports) are read and written by :mod:`tavaal.data.labelfiles`.
"""
from .errors import LoopError
from .holdout import DEFAULT_HOLDOUT
from .merge import MergeReport
from .workdir import BatchResult, Workdir

__all__ = ["Workdir", "LoopError", "MergeReport", "BatchResult", "DEFAULT_HOLDOUT"]
