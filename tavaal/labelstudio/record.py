"""What a work directory remembers about its Label Studio projects: ``WORKDIR/label_studio.json``.

Per project (keyed ``<url>#<project id>``): the server URL, the project id, the image
addressing chosen at the first push (document root / URL prefix and the pool folder: how a
``?d=`` path or an image URL maps back to a sample id) and one entry per push (batch, cycle,
task ids, time). Written atomically; a missing file is an empty record.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..data.labelfiles import SampleLocations
from ..rundir import read_json, write_json
from .addressing import ImageAddressing
from .errors import LabelStudioError

__all__ = ["RECORD_NAME", "ProjectRecord", "read_project_record", "write_project_record", "workdir_locations"]

RECORD_NAME = "label_studio.json"
RECORD_FORMAT = "tavaal-label-studio"
VERSION = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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
                            "already_in_project": int(already), "time": _now()})


def _read(root: Path) -> Dict[str, Any]:
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
    record = ProjectRecord(url, project)
    data = _read(Path(root))["projects"].get(record.key)
    return ProjectRecord(url, project, data) if data else record


def write_project_record(root, record: ProjectRecord) -> None:
    """Store ``record`` in ``root``'s Label Studio record (atomic rewrite)."""
    whole = _read(Path(root))
    whole["projects"][record.key] = record.data
    write_json(Path(root) / RECORD_NAME, whole)


def workdir_locations(root, pool_root: Optional[str]) -> SampleLocations:
    """How file references in returned labels map to sample ids for work directory ``root``:
    the addressing of its newest Label Studio push (``?d=`` paths against the document root
    given then, image URLs against the prefix), else plain paths relative to ``pool_root``."""
    newest = None
    for data in _read(Path(root))["projects"].values():
        if data.get("addressing") and data.get("pushes"):
            when = data["pushes"][-1]["time"]
            if newest is None or when >= newest[0]:
                newest = (when, data["addressing"])
    if newest is None:
        return SampleLocations(pool_root=pool_root)
    return ImageAddressing.from_record(newest[1]).locations()
