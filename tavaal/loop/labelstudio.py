"""The labeling loop with a Label Studio project: ``tavaal select|label WORKDIR --label-studio URL
--project ID`` (see docs/label-studio.md): :func:`check_project` before a batch is picked,
:func:`push` after (recorded in ``WORKDIR/label_studio.json``), :func:`pull` for ``label`` (merged
by :meth:`Workdir.label`, as a file). The client itself is :mod:`tavaal.labelstudio`."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PIL import Image

from ..data.labelfiles import DEFAULT_POLICY, LabelFileError, SampleLocations
from ..labelstudio import (ImageAddressing, LabelStudioError, OutgoingSample, PushReport, PushTarget, connect,
                           prepare_push, pull_labels, pull_masks, push_batch, read_project_record, write_project_record)
from ..labelstudio.record import ProjectRecord
from . import backend
from .errors import LoopError
from .merge import MergeReport
from .workdir import BatchResult, Workdir

__all__ = ["ProjectLink", "check_project", "image_addressing", "push", "pull"]


@dataclass
class ProjectLink:
    """A checked Label Studio project of a work directory: the push ``target`` and its ``record``."""

    target: PushTarget
    record: ProjectRecord


def _kind(wd: Workdir) -> str:
    return "brush" if wd.task.name == "segmentation" else "choices"


def _addressing(wd: Workdir, folder: bool, image_root: Optional[str], image_url_prefix: Optional[str]
                ) -> ImageAddressing:
    if not folder:
        raise LabelStudioError("--image-root / --image-url-prefix need an image-folder pool; this pool is an "
                               "array (tasks carry the row id)")
    return ImageAddressing.for_pool(wd.meta["pool"]["path"], image_root, image_url_prefix)


def image_addressing(wd: Workdir, image_root: Optional[str] = None,
                     image_url_prefix: Optional[str] = None) -> ImageAddressing:
    """The image URLs of ``label_studio_tasks.json`` for an import by hand (no project):
    ``/data/local-files/?d=...`` below ``image_root`` or ``image_url_prefix`` + id. Raises
    :class:`LoopError` for an array pool or an ``image_root`` that is not a parent of the pool."""
    try:
        return _addressing(wd, backend.is_image_folder(backend.open_pool(wd.meta["pool"], wd.root)), image_root,
                           image_url_prefix)
    except LabelStudioError as exc:
        raise LoopError(str(exc)) from None


def check_project(wd: Workdir, url: Optional[str], project: int, *, image_root: Optional[str] = None,
                  image_url_prefix: Optional[str] = None) -> ProjectLink:
    """Connect and check ``project`` for a push from ``wd`` (see :func:`tavaal.labelstudio.prepare_push`);
    the addressing comes from the flags or, when none is given, from the last push to this
    project. Raises :class:`LoopError`; nothing is written."""
    source = backend.open_pool(wd.meta["pool"], wd.root)
    folder = backend.is_image_folder(source)
    try:
        connection = connect(url)
        record = read_project_record(wd.root, connection.url, project)
        addressing = record.addressing
        if image_root is not None or image_url_prefix is not None:
            addressing = _addressing(wd, folder, image_root, image_url_prefix)
        probe = str(source.ids[0]) if folder and len(source) else None
        target = prepare_push(connection, project, kind=_kind(wd), pool_is_folder=folder, addressing=addressing,
                              probe=probe, classes=wd.state()["classes"])
    except LabelStudioError as exc:
        raise LoopError(str(exc)) from None
    return ProjectLink(target, record)


def push(wd: Workdir, link: ProjectLink, batch: BatchResult) -> PushReport:
    """Send ``batch`` to the checked project (samples it already holds are not sent again) and
    record the push. Raises :class:`LoopError` (the batch stays recorded in the work directory;
    its ``label_studio_tasks.json`` can be imported by hand)."""
    idents, scores = batch.all_ids, batch.all_scores
    predicted = batch.explanation.get("predicted", [None] * len(idents))
    probability = batch.explanation.get("probability", [None] * len(idents))
    masks = batch.masks or [None] * len(idents)  # segmentation: brush pre-annotations
    samples = [OutgoingSample(ident, rank, score, predicted[rank], probability[rank],
                              {name: values[rank] for name, values in batch.components.items()},
                              mask=masks[rank], audit=rank >= len(batch.ids))
               for rank, (ident, score) in enumerate(zip(idents, scores))]
    try:
        report = push_batch(link.target, samples, batch=batch.batch, cycle=batch.cycle, method=batch.method,
                            classes=wd.state()["classes"])
    except LabelStudioError as exc:
        raise LoopError(f"{exc}\nbatch {batch.batch} is recorded in {wd.root} but was not pushed: import "
                        f"{batch.files['label_studio']} in Label Studio by hand") from None
    if link.target.addressing is not None:
        link.record.addressing = link.target.addressing
    link.record.add_push(batch.batch, batch.cycle, report.task_ids, len(report.already))
    with wd.files.lock():
        write_project_record(wd.root, link.record)
    return report


def pull(wd: Workdir, url: Optional[str], project: int, *, relabel: bool = False, policy: str = DEFAULT_POLICY,
         add_classes: bool = False) -> MergeReport:
    """Pull ``project``'s annotations and merge them into ``wd`` (``?d=`` paths and image URLs
    resolved with the addressing recorded at push time). Raises :class:`LoopError`."""
    try:
        connection = connect(url)
        record = read_project_record(wd.root, connection.url, project)
        locations = (record.addressing.locations() if record.addressing is not None
                     else SampleLocations(pool_root=wd.meta["pool"]["path"]))
        if _kind(wd) == "choices":
            parsed = pull_labels(connection, project, locations=locations, policy=policy)
            return wd.label(parsed, add_classes=add_classes, policy=policy, relabel=relabel)
        pulled = pull_masks(connection, project, wd.state()["classes"], locations=locations, policy=policy)
    except LabelStudioError as exc:
        raise LoopError(str(exc)) from None
    except LabelFileError as exc:
        raise LoopError(exc.summary, exc.problems) from None
    if not pulled.masks:  # nothing painted yet: nothing to merge
        return MergeReport(0, 0, warnings=list(pulled.warnings), skipped=[t.id for t in pulled.skipped])
    with tempfile.TemporaryDirectory(prefix="tavaal-ls-masks-") as folder:
        for ident, mask in pulled.masks.items():  # named like the images, as a returned masks folder
            target = Path(folder) / Path(ident).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask, mode="L").save(target)
        report = wd.label(folder, add_classes=add_classes, policy=policy, relabel=relabel)
    report.warnings.extend(pulled.warnings)
    report.skipped.extend(t.id for t in pulled.skipped)
    return report
