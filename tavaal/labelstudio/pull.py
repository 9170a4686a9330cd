"""Pull a project's annotations through the API: the same reading, validation and
disagreement policy as a Label Studio JSON export (:func:`tavaal.data.labelfiles.read_tasks`).

Classification: :func:`pull_labels` -> :class:`~tavaal.data.labelfiles.ParsedLabels`.
Segmentation: :func:`pull_masks` -> one class-index mask per sample from its brush regions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..data.labelfiles import (DEFAULT_POLICY, LabelFileError, ParsedLabels, ReadOptions, Reading, SampleLocations,
                               TaskRef, check_policy, read_tasks, resolve)
from ..data.labelfiles.lsjson import task_annotations
from .brush import regions_to_mask
from .connection import Connection
from .interface import ProjectInterface

__all__ = ["pull_labels", "pull_masks", "PulledMasks", "source_name"]


def source_name(connection: Connection, project: int) -> str:
    """How a pull is named in merge records and messages: ``label-studio <url> project <id>``."""
    return f"label-studio {connection.url} project {int(project)}"


def pull_labels(connection: Connection, project: int, *, locations: Optional[SampleLocations] = None,
                policy: str = DEFAULT_POLICY) -> ParsedLabels:
    """Every task of ``project`` with its annotations, read like a JSON export on the project's
    Choices control; ``?d=`` paths and image URLs resolved by ``locations`` (the addressing
    recorded at push time). Raises LabelFileError (bad answers, refused disagreements) or
    LabelStudioError (server)."""
    check_policy(policy)
    interface = ProjectInterface.of_project(connection, project, "choices")
    name = source_name(connection, project)
    reading = read_tasks(list(connection.tasks(int(project))), name,
                         ReadOptions(locations or SampleLocations(), interface.control), format="label-studio-api")
    return resolve(reading, name, policy)


@dataclass
class PulledMasks:
    """Masks pulled from a project: ``masks`` (sample id -> (H, W) uint8, 255 = unlabeled),
    ``skipped`` / ``unannotated`` tasks and ``warnings``."""

    masks: Dict[str, np.ndarray]
    skipped: List[TaskRef] = field(default_factory=list)
    unannotated: List[TaskRef] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def pull_masks(connection: Connection, project: int, classes: Sequence[str], *,
               locations: Optional[SampleLocations] = None, policy: str = DEFAULT_POLICY) -> PulledMasks:
    """One mask per annotated sample from its brush regions (the SDK's RLE decoder). Several
    annotations with different masks: ``refuse`` lists them, ``latest`` takes the newest;
    ``majority`` applies to class labels only (refused here). Raises LabelFileError."""
    check_policy(policy)
    if policy == "majority":
        raise LabelFileError("--on-disagreement majority applies to class labels; for masks use refuse or latest")
    interface = ProjectInterface.of_project(connection, project, "brush")
    name = source_name(connection, project)
    reading = Reading("label-studio-api")
    answers: Dict[str, List[Any]] = {}
    for where, ident, _, _, annotation in task_annotations(connection.tasks(int(project)),
                                                           ReadOptions(locations or SampleLocations()), reading):
        mask, errs = regions_to_mask(annotation.get("result") or [], classes, interface.control)
        reading.problems.extend(f"{where} ({ident}): {e}" for e in errs)
        if mask is None and not errs:
            reading.problems.append(f"{where} ({ident}): no brush region on {interface.control!r}")
        elif mask is not None:
            time = str(annotation.get("updated_at") or annotation.get("created_at") or "")
            answers.setdefault(ident, []).append((time, where, mask))
    out = PulledMasks({})
    for ident, found in answers.items():
        distinct = {m.tobytes() + bytes(str(m.shape), "ascii") for _, _, m in found}
        if len(distinct) > 1 and policy == "refuse":
            reading.problems.append(f"sample {ident}: {len(found)} annotations with different masks "
                                    f"({', '.join(w for _, w, _ in found)}); --on-disagreement latest takes the newest")
            continue
        out.masks[ident] = max(found, key=lambda f: f[0])[2]
    if reading.problems:
        raise LabelFileError(f"{name}: {len(reading.problems)} task(s) cannot be used; nothing was merged",
                             reading.problems)
    out.skipped = [t for t in reading.skipped if t.id not in out.masks]
    out.unannotated = [t for t in reading.unannotated if t.id not in out.masks]
    if out.skipped:
        out.warnings.append(f"{len(out.skipped)} task(s) were skipped by the annotators: "
                            + "; ".join(t.describe() for t in out.skipped[:20]))
    return out
