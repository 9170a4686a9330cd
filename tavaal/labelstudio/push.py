"""Push a selected batch into a Label Studio project as tasks with predictions.

Each task holds the sample's ``tavaal_id``, rank, score, batch, cycle, method and a prediction:
the task model's class as a choice on the project's Choices control (or, for segmentation, its
mask as brush regions), its probability as the prediction score, :func:`model_version`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

import numpy as np

from ..data.labelfiles import ChoicePrediction, SampleLocations, label_studio_task
from ..data.labelfiles.lstasks import sample_of
from .addressing import IMAGES_HINT, ImageAddressing, check_served, ensure_local_storage
from .brush import mask_to_regions
from .connection import Connection, LabelStudioError
from .interface import ProjectInterface

__all__ = ["OutgoingSample", "PushTarget", "PushReport", "prepare_push", "push_batch", "model_version"]


def model_version(cycle: int, method: str) -> str:
    """The ``model_version`` of a cycle's predictions (what the Data Manager shows and sorts by)."""
    return f"tavaal cycle {int(cycle)} {method}"


@dataclass
class OutgoingSample:
    """A sample of the batch: ``ident``, ``rank`` (0 = most informative), ``score``, and what
    the task model thinks: ``predicted`` class and its ``probability`` (classification) or
    ``mask`` ((H, W) class indices, segmentation), ``components`` of the score, and whether it
    is an ``audit`` sample (drawn uniformly at random, not picked)."""

    ident: str
    rank: int
    score: Optional[float]
    predicted: Optional[str] = None
    probability: Optional[float] = None
    components: Optional[Mapping[str, float]] = None
    mask: Optional[np.ndarray] = None
    audit: bool = False


@dataclass
class PushTarget:
    """A checked project: ``interface`` (its control), ``addressing`` (None: tasks carry no image,
    e.g. an array pool) and ``warnings`` (classes the control does not offer)."""

    connection: Connection
    project: int
    interface: ProjectInterface
    addressing: Optional[ImageAddressing]
    warnings: List[str] = field(default_factory=list)


@dataclass
class PushReport:
    """What :func:`push_batch` did: ``pushed`` sample ids (new tasks ``task_ids``), ``already``
    (samples the project held: not pushed again)."""

    project: int
    pushed: List[str]
    task_ids: List[int]
    already: List[str]
    warnings: List[str] = field(default_factory=list)

    def summary(self, url: str) -> str:
        text = f"pushed {len(self.pushed)} task(s) to Label Studio project {self.project} ({url}/projects/{self.project})"
        if self.already:
            text += f"; {len(self.already)} sample(s) were already in the project (not pushed again)"
        return text


def prepare_push(connection: Connection, project: int, *, kind: str, pool_is_folder: bool,
                 addressing: Optional[ImageAddressing], probe: Optional[str], classes: Sequence[str]) -> PushTarget:
    """Check the project for a push: its labeling config has the ``kind`` control ("choices" or
    "brush"); an Image object needs an image-folder pool and an ``addressing``; with a document
    root the local-files storage for the pool is created or reused; the image of sample ``probe``
    is fetched through the server and compared with the file. Raises :class:`LabelStudioError`."""
    interface = ProjectInterface.of_project(connection, project, kind)
    target = PushTarget(connection, int(project), interface, None, warnings=interface.check_classes(list(classes)))
    if interface.image_field is None:
        return target
    if not pool_is_folder:
        raise LabelStudioError(f"project {project}'s labeling config shows an image (${interface.image_field}) but this "
                               "pool is an array: its tasks can carry the row id (tavaal_id) only. An image config "
                               "needs an image-folder pool (tavaal init --pool FOLDER); or label rows with a config "
                               "without <Image> (e.g. <Text name=\"row\" value=\"$tavaal_id\"/>)")
    if addressing is None:
        raise LabelStudioError(IMAGES_HINT)
    target.addressing = addressing
    if addressing.document_root is not None:
        ensure_local_storage(connection, int(project), addressing)
    if probe is not None:
        check_served(connection, addressing, probe)
    return target


def held_samples(target: PushTarget) -> Set[str]:
    """The sample ids of every task the project holds (by ``tavaal_id``, else its image
    reference mapped back through the addressing; tasks naming no sample are left out)."""
    locations = target.addressing.locations() if target.addressing else SampleLocations()
    found = (sample_of(task.get("data") or {}, locations)
             for task in target.connection.tasks(target.project, fields="task_only"))
    return {ident for ident, problem, _ in found if problem is None}


def _task(target: PushTarget, sample: OutgoingSample, *, batch: int, cycle: int, method: str,
          classes: Sequence[str]) -> Dict[str, Any]:
    version = model_version(cycle, method)
    interface = target.interface
    predictions: List[Dict[str, Any]] = []
    if interface.kind == "choices" and sample.predicted is not None:
        predictions.append(ChoicePrediction(sample.predicted, sample.probability, interface.control, interface.to_name,
                                            version).as_prediction())
    elif interface.kind == "brush" and sample.mask is not None:
        predictions.append({"model_version": version, "score": sample.probability,
                            "result": mask_to_regions(sample.mask, classes, interface.control, interface.to_name)})
    image = target.addressing.url(sample.ident) if target.addressing is not None else None
    return label_studio_task(sample.ident, sample.rank, sample.score, batch, cycle=cycle, method=method, image=image,
                             predicted=sample.predicted, probability=sample.probability, components=sample.components,
                             predictions=predictions, image_field=interface.image_field or "image", audit=sample.audit)


def push_batch(target: PushTarget, samples: Sequence[OutgoingSample], *, batch: int, cycle: int, method: str,
               classes: Sequence[str]) -> PushReport:
    """Import ``samples`` the project does not hold yet as tasks (see the module docstring).
    Raises :class:`LabelStudioError` when the import is refused (nothing imported then)."""
    held = held_samples(target)
    new = [s for s in samples if s.ident not in held]
    already = [s.ident for s in samples if s.ident in held]
    tasks = [_task(target, s, batch=batch, cycle=cycle, method=method, classes=classes) for s in new]
    task_ids: List[int] = []
    if tasks:
        response = target.connection.call(f"importing {len(tasks)} task(s) into project {target.project}",
                                          target.connection.sdk.projects.import_tasks, id=target.project,
                                          request=tasks, return_task_ids=True)
        task_ids = [int(t) for t in (getattr(response, "task_ids", None) or [])]
        if len(task_ids) != len(tasks):
            raise LabelStudioError(f"project {target.project}: Label Studio created {len(task_ids)} of {len(tasks)} "
                                   f"tasks ({response})")
    return PushReport(target.project, [s.ident for s in new], task_ids, already, list(target.warnings))
