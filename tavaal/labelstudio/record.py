"""What a work directory remembers about its Label Studio projects: ``WORKDIR/label_studio.json``.

Per project (keyed ``<url>#<project id>``): the server URL, the project id, the image
addressing chosen at the first push (document root / URL prefix and the pool folder: how a
``?d=`` path or an image URL maps back to a sample id) and one entry per push (batch, cycle,
task ids, time). Written atomically; a missing file is an empty record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from ..data.labelfiles import SampleLocations
from ..rundir import read_json, utc_now, write_json
from .addressing import ImageAddressing
from .connection import LabelStudioError

__all__ = ["RECORD_NAME", "ProjectRecord", "read_project_record", "write_project_record", "workdir_locations"]

RECORD_NAME = "label_studio.json"
RECORD_FORMAT = "tavaal-label-studio"
VERSION = 1


class ProjectRecord:
    """The record of one project in one work directory (see the module docstring)."""

    def __init__(self, url: str, project: int, data: Optional[Dict[str, Any]] = None):
        self.url, self.project = url.rstrip("/"), int(project)
        self.data = data or {"url": self.url, "project": self.project, "addressing": None, "pushes": []}

    @property
    def key(self) -> str:
        return f"{self.url}#{self.project}"

    @property
    def addressing(self) -> Optional[ImageAddressing]:
        a = self.data.get("addressing")
        return ImageAddressing.from_record(a) if a else None

    @addressing.setter
    def addressing(self, value: ImageAddressing) -> None:
        self.data["addressing"] = value.to_record()

    @property
    def pushes(self) -> List[Dict[str, Any]]:
        return self.data["pushes"]

    def add_push(self, batch: int, cycle: int, task_ids: List[int], already: int) -> None:
        self.pushes.append({"batch": int(batch), "cycle": int(cycle), "task_ids": [int(t) for t in task_ids],
                            "already_in_project": int(already), "time": utc_now()})


def _read(root) -> Dict[str, Any]:
    path = Path(root) / RECORD_NAME
    if not path.exists():
        return {"format": RECORD_FORMAT, "version": VERSION, "projects": {}}
    try:
        record = read_json(path)
    except ValueError as exc:
        raise LabelStudioError(f"{path} is not valid JSON ({exc}): the work directory's Label Studio record is "
                               "damaged") from None
    if record.get("format") != RECORD_FORMAT or record.get("version") != VERSION:
        raise LabelStudioError(f"{path}: format {record.get('format')!r} version {record.get('version')!r} is not "
                               f"one this tavaal reads ({RECORD_FORMAT} {VERSION})")
    return record


def read_project_record(root, url: str, project: int) -> ProjectRecord:
    """The record of ``project`` on ``url`` in work directory ``root`` (empty if never pushed)."""
    key = ProjectRecord(url, project).key
    return ProjectRecord(url, project, _read(root)["projects"].get(key))


def write_project_record(root, record: ProjectRecord) -> None:
    """Store ``record`` in ``root``'s Label Studio record (atomic rewrite)."""
    whole = _read(root)
    whole["projects"][record.key] = record.data
    write_json(Path(root) / RECORD_NAME, whole)


def workdir_locations(root, pool_root: Optional[str]) -> SampleLocations:
    """How file references in returned labels map to sample ids for work directory ``root``:
    the addressing of its newest Label Studio push (``?d=`` paths against the document root
    given then, image URLs against the prefix), else plain paths relative to ``pool_root``."""
    pushed = [d for d in _read(root)["projects"].values() if d.get("addressing") and d.get("pushes")]
    if not pushed:
        return SampleLocations(pool_root=pool_root)
    newest = sorted(pushed, key=lambda d: d["pushes"][-1]["time"])[-1]  # the last of equal times
    return ImageAddressing.from_record(newest["addressing"]).locations()
