"""Selected batches in ``state.json``: which samples are out for labeling.

A batch record (``state["batches"][k]``) holds the ids a ``select`` picked, most informative
first (``ids``), its uniformly random ``audit`` samples, and the ids ``tavaal unselect``
returned to the pool (``unselected``). A sample is *pending* (out for labeling) while it is in
a batch, not unselected, has no label and its file is in the pool; it is neither trained on
as unlabeled nor selected again.
"""
from __future__ import annotations

from typing import Any, Container, Dict, List, Optional

import numpy as np

from . import backend
from .state import WorkdirFiles

__all__ = ["batch_pending", "pending_ids", "top_level_batch", "outside_batches_warning", "taken_rows"]


def batch_pending(state: Dict[str, Any], b: Dict[str, Any], present: Optional[Container[str]] = None) -> List[str]:
    """Ids of the batch record ``b`` that have no label yet and were not unselected (picks, then
    audit samples); with ``present`` (ids in the pool now) only those whose file is there."""
    gone = set(b.get("unselected", []))
    return [i for i in b["ids"] + b.get("audit", []) if i not in state["labels"] and i not in gone
            and (present is None or i in present)]


def pending_ids(state: Dict[str, Any], present: Optional[Container[str]] = None) -> List[str]:
    """The :func:`batch_pending` ids of every batch (in batch order, each once)."""
    return list(dict.fromkeys(i for b in state["batches"] for i in batch_pending(state, b, present)))


def top_level_batch(state: Dict[str, Any]) -> Optional[int]:
    """The batch the top-level ``to_label.csv`` holds (``state["to_label_batch"]``; without it the
    newest batch); None before the first batch."""
    return state.get("to_label_batch", len(state["batches"]) - 1 if state["batches"] else None)


def outside_batches_warning(new_ids: List[str], state: Dict[str, Any]) -> List[str]:
    """A warning (as a one-element list; empty if none) naming the newly labeled ids of
    ``new_ids`` that were not out for labeling (accepted all the same)."""
    out = set(pending_ids(state))
    outside = [i for i in new_ids if i not in out]
    if not outside:
        return []
    return [f"{len(outside)} id(s) were not in a selected batch (accepted): "
            + ", ".join(outside[:20]) + (" ..." if len(outside) > 20 else "")]


def taken_rows(root, source) -> np.ndarray:
    """Rows of ``source`` (the pool of the work directory at ``root``) that it has labeled or out
    for labeling, sorted int64 (ids no longer in the pool are left out): what a scorer of its
    pool must not pick again (``tavaal.score`` on a loop export excludes them by default).
    Raises :class:`~tavaal.loop.LoopError` when ``root`` is not a work directory."""
    files = WorkdirFiles(root)
    files.read_meta()
    state = files.read_state()
    rows, _ = backend.rows_for_ids(source, list(state["labels"]) + pending_ids(state))
    return np.unique(np.asarray([r for r in rows if r is not None], dtype=np.int64))
