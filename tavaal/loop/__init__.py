"""The labeling loop on your own data: a work directory, no oracle.

``tavaal init|train|select|unselect|label|status`` (see docs/labeling-loop.md) and, from Python,
:class:`Workdir`::

    from tavaal.loop import Workdir
    wd = Workdir.init("work", pool="images/", labels="labels.csv")
    wd.train(); batch = wd.select(budget=100); wd.label("returned.csv"); print(wd.status_text())

Modules: :mod:`.workdir` (the five operations, one implementation for both tasks),
:mod:`.tasks` (what classification and segmentation do differently), :mod:`.state` (the
files of a work directory, atomic commit, lock), :mod:`.poolview` (the pool-change rule),
:mod:`.batches` (pending samples), :mod:`.merge` (checking returned labels), :mod:`.holdout`
(the accuracy estimate), :mod:`.settings` (the training settings), :mod:`.user_model`,
:mod:`.status` (the status text), :mod:`.ray_select` (``select --ray``), :mod:`.masks`
(mask folders), :mod:`.classes` (the class list),
:mod:`.errors`, :mod:`.backend` (the only contact with the row sources), :mod:`.commands`
(the command-line front). Label files (CSV, Label Studio exports) are read and written by
the label-file registry, :mod:`tavaal.data.labelfiles`.
"""
from .errors import LoopError
from .holdout import DEFAULT_HOLDOUT
from .merge import MergeReport
from .workdir import BatchResult, Workdir

__all__ = ["Workdir", "LoopError", "MergeReport", "BatchResult", "DEFAULT_HOLDOUT"]
