"""The text ``tavaal status`` prints, from the status dict of :meth:`Workdir.status`."""
from __future__ import annotations

from typing import Any, Dict, List

from .holdout import MIN_HOLDOUT
from .tasks import Task

__all__ = ["status_text", "batch_table"]


def _pool_lines(s: Dict[str, Any], task: Task) -> List[str]:
    pool = s["pool"]
    unit = task.unit
    lines = [f"pool {pool['path']}: {pool['size']} {unit}s"
             + (f", {pool['added_since_init']} added since init" if pool["added_since_init"] else "")
             + (f", {pool['removed_since_init']} removed since init" if pool["removed_since_init"] else "")]
    if pool.get("unreadable"):
        lines.append(f"  UNREADABLE: {pool['unreadable']} file(s) cannot be decoded and are left out of the pool "
                     f"(id, reason: {pool['unreadable_file']})")
    if pool["missing_labeled"]:
        lines.append(f"  MISSING: {len(pool['missing_labeled'])} labeled {unit}(s) no longer in the pool "
                     f"({task.kept} kept, left out of training): " + ", ".join(pool["missing_labeled"][:20]))
    return lines


def _pending_lines(s: Dict[str, Any]) -> List[str]:
    lines = [f"out for labeling: {s['out_for_labeling']}"]
    for b in s["batches"]:
        if b["pending"]:
            audit = f", {b['audit']} audit" if b.get("audit") else ""
            lines.append(f"  batch {b['batch']} (cycle {b['cycle']}, {b['method']}{audit}): {b['pending']} of "
                         f"{b['size']} pending  {b['file']}")
    if s.get("skipped"):
        lines.append(f"  skipped by the annotators (still out for labeling): {len(s['skipped'])}: "
                     + ", ".join(s["skipped"][:20]) + (" ..." if len(s["skipped"]) > 20 else ""))
    if s.get("corrections"):
        lines.append("corrections (labels changed with --relabel): "
                     + ", ".join(f"round {c['round']}: {c['corrected']}" for c in s["corrections"]))
    lines.append(f"next: {s['next']}")
    return lines


def status_text(s: Dict[str, Any], task: Task) -> str:
    """The status ``s`` of a work directory of task ``task`` as text: the pool, the labeled
    counts per class, the cycles, what is out for labeling and the next command."""
    lines = [f"work directory {s['workdir']} {task.header_format.format(s['method'])}", *_pool_lines(s, task),
             *task.summary_lines(s), f"cycles: {len(s['cycles'])}"]
    lines += [task.cycle_line(c) + _discriminator_text(c) for c in s["cycles"]]
    if s["cycles"] and task.metric == "accuracy" and (s["cycles"][-1]["holdout"] or 0) < MIN_HOLDOUT:
        lines.append(f"  note: the accuracy estimate rests on {s['cycles'][-1]['holdout'] or 0} held-out labels "
                     f"(< {MIN_HOLDOUT}); tavaal select --audit K adds random samples that join the holdout")
    if s.get("advice"):
        lines.append(f"advice: {s['advice']}")
    return "\n".join(lines + _pending_lines(s))


def _discriminator_text(c: Dict[str, Any]) -> str:
    """``  D AUC 0.71 (held out 0.55), score std 0.080`` for a cycle with D's diagnostics
    (``disc_diagnostics``), plus a warning mark when the AUC is near 0.5; "" without."""
    if c.get("disc_auc_train") is None:
        return ""
    held = "" if c.get("disc_auc_heldout") is None else f" (held out {c['disc_auc_heldout']:.2f})"
    return (f"  D AUC {c['disc_auc_train']:.2f}{held}, score std {c['disc_score_std']:.3f}"
            + ("  WARNING: near chance" if c.get("disc_warning") else ""))


def batch_table(batch) -> str:
    """A selected batch (:class:`~tavaal.loop.workdir.BatchResult`) as aligned text lines: rank,
    id, score, the predicted class and its probability, score components, audit marks."""
    ids, scores = batch.all_ids, batch.all_scores
    columns = {**batch.explanation, **batch.components}
    header = ["rank", "id", "score", *columns] + (["audit"] if batch.audit else [])
    rows = []
    for k, (i, score) in enumerate(zip(ids, scores)):
        cells = [str(k), i, "" if score is None or score != score else f"{score:.4g}"]
        cells += ["" if v[k] is None else (f"{v[k]:.4g}" if isinstance(v[k], float) else str(v[k]))
                  for v in columns.values()]
        if batch.audit:
            cells.append("audit" if k >= len(batch.ids) else "")
        rows.append(cells)
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header] + rows)
