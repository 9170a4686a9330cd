"""The pool as it is now, checked against the pool at ``init`` (the pool-change rule).

A sample that appears in the pool after ``init`` (a new image file; rows appended to an array
pool) joins the unlabeled pool; a labeled (or pending) sample whose file disappeared is
reported by every command and in ``status``, keeps its label, and is left out of training
while it is missing. Array pools may only grow by appending rows (row numbers are their ids).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List

import numpy as np

from . import backend
from .batches import pending_ids
from .errors import LoopError
from .state import WorkdirFiles

log = logging.getLogger("tavaal.loop")

__all__ = ["PoolView", "open_pool_view", "ids_digest"]


def ids_digest(ids_text: str) -> str:
    """sha256 of a pool's id list (``pool_ids.txt``'s text), recorded at init."""
    return hashlib.sha256(ids_text.encode()).hexdigest()


@dataclass
class PoolView:
    """The pool now: its row ``source`` and ``size``; ``added`` samples since init; ``removed``
    ids present at init and gone now; ``missing_labeled`` / ``missing_out``: labeled / pending
    ids whose file is gone (a pending one is no longer pending); ``rows``: id -> row of every
    labeled or pending id present; ``unreadable``: ids of files left out because they cannot
    be decoded (``unreadable_labeled``: those among the labeled)."""

    source: Any
    size: int
    added: int
    removed: List[str]
    missing_labeled: List[str]
    missing_out: List[str]
    rows: Dict[str, int]
    unreadable: List[str] = field(default_factory=list)
    unreadable_labeled: List[str] = field(default_factory=list)

    def present_rows(self, ids: Iterable[str]) -> np.ndarray:
        """The rows (int64, in the order of ``ids``) of those of the tracked ``ids`` present in the pool."""
        return np.asarray([self.rows[i] for i in ids if i in self.rows], dtype=np.int64)

    def warnings(self) -> List[str]:
        out = []
        if self.missing_labeled:
            shown = ", ".join(self.missing_labeled[:20])
            more = f" ... ({len(self.missing_labeled)} in all)" if len(self.missing_labeled) > 20 else ""
            out.append(f"{len(self.missing_labeled)} labeled sample(s) are no longer in the pool and are left out of "
                       f"training (their labels are kept; put the files back to use them): {shown}{more}")
        if self.missing_out:
            out.append(f"{len(self.missing_out)} sample(s) out for labeling were deleted from the pool and are no "
                       "longer pending: " + ", ".join(self.missing_out[:20]))
        if self.unreadable_labeled:
            out.append(f"{len(self.unreadable_labeled)} labeled sample(s) cannot be decoded and are left out of "
                       "training (labels kept): " + ", ".join(self.unreadable_labeled[:20]))
        return out


def open_pool_view(files: WorkdirFiles, meta: Dict[str, Any], state: Dict[str, Any], quiet: bool = False) -> PoolView:
    """Open the pool of the work directory (``meta``: its workdir.json) without its unreadable
    files and compare it with the pool at init; logs the view's warnings (unless ``quiet``). Raises
    :class:`LoopError` when the pool cannot be opened or its sample shape changed."""
    spec = meta["pool"]
    later = set(state.get("unreadable", {}))
    unreadable = list(spec.get("unreadable", {})) + list(state.get("unreadable", {}))  # found at init, later
    source = backend.open_pool(spec, files.root, unreadable, hint=f" (the pool path is recorded in {files.meta_path})")
    if list(source.sample_shape) != list(meta["input_shape"]):
        raise LoopError(f"the pool's samples now have shape {list(source.sample_shape)} but {files.root} was "
                        f"initialised with {meta['input_shape']}")
    n, n0 = len(source), int(spec["size"])
    added, removed = 0, []
    if backend.is_image_folder(source):
        if ids_digest("\n".join(source.ids) + "\n") != spec["ids_sha256"]:
            before = set(files.pool_ids_path.read_text().splitlines())
            now = set(source.ids)
            added = len(now - before)
            removed = sorted(before - now - later)
    else:
        added = max(n - n0, 0)
        removed = [str(r) for r in range(n, n0)]
    labels = state["labels"]
    pending = pending_ids(state)
    tracked = list(labels) + pending  # pending ids have no label
    rows, _ = backend.rows_for_ids(source, tracked) if tracked else ([], [])
    present = {i: r for i, r in zip(tracked, rows) if r is not None}
    bad = set(unreadable)
    missing_labeled = [i for i in labels if i not in present and i not in bad]
    missing_out = [i for i in pending if i not in present and i not in bad]
    view = PoolView(source, n, added, removed, missing_labeled, missing_out, present, unreadable,
                    [i for i in labels if i in bad])
    for warning in [] if quiet else view.warnings():
        log.warning("%s", warning)
    return view
