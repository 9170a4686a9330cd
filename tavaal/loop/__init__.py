"""The labeling loop on your own data: a work directory, no oracle.

``tavaal init|train|select|label|status`` (see docs/labeling-loop.md) and, from Python,
:class:`Workdir`::

    from tavaal.loop import Workdir
    wd = Workdir.init("work", pool="images/", labels="labels.csv")
    wd.train(); batch = wd.select(budget=100); wd.label("returned.csv"); print(wd.status_text())

Modules: :mod:`.workdir` (the five operations), :mod:`.state` (layout, atomic commit),
:mod:`.labels` (CSV / Label Studio files), :mod:`.classes` (the class list), :mod:`.errors`,
:mod:`.backend` (the only contact with the shared row sources, training and selection code),
:mod:`.commands` (the command-line front), :mod:`.masks` (masks as labels: segmentation).
"""
from .errors import LoopError
from .labels import LabelEntry, LabelFile, read_label_file
from .workdir import DEFAULT_HOLDOUT, SELECT_METHODS, BatchResult, MergeReport, Workdir, latest_checkpoint
from .masks import MaskWorkdir  # noqa: E402  (segmentation: masks as labels; after .workdir)

__all__ = ["Workdir", "MaskWorkdir", "latest_checkpoint", "LoopError", "MergeReport", "BatchResult", "LabelEntry", "LabelFile", "read_label_file",
           "DEFAULT_HOLDOUT", "SELECT_METHODS"]
