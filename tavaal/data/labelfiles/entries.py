"""What a label file says, format-independently: answers, skipped and unannotated tasks.

A format reader turns a file into a :class:`Reading` (every answer as written, in file order);
:func:`tavaal.data.labelfiles.policy.resolve` turns a reading into :class:`ParsedLabels` (one
label per sample). Sample ids are normalised once, here (:func:`normalise_sample_id`).
"""
from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["LabelEntry", "TaskRef", "Reading", "ParsedLabels", "SampleLocations", "normalise_sample_id"]


def normalise_sample_id(text: str) -> str:
    """A sample id as the pool spells it: surrounding space stripped, unicode NFC (macOS writes
    NFD), ``\\`` -> ``/``, leading ``./`` removed. Row numbers are unchanged."""
    ident = unicodedata.normalize("NFC", str(text).strip()).replace("\\", "/")
    while ident.startswith("./"):
        ident = ident[2:]
    return ident


@dataclass(frozen=True)
class LabelEntry:
    """One answer: sample ``id`` (normalised) labeled ``label``. ``where`` says where it was read
    ("line 7", "task 12 annotation 40"); ``task`` / ``annotation`` are the annotation tool's ids,
    ``time`` (ISO 8601 text) and ``author`` where the format records them (else None)."""

    where: str
    id: str
    label: str
    task: Optional[str] = None
    annotation: Optional[str] = None
    time: Optional[str] = None
    author: Optional[str] = None

    def describe(self) -> str:
        """``'cat' (task 3, annotation 7, alice, 2026-12-01T10:00:00Z)``: the answer for a message."""
        parts = [p for p in (f"task {self.task}" if self.task is not None else self.where,
                             f"annotation {self.annotation}" if self.annotation is not None else None,
                             self.author, self.time) if p]
        return f"{self.label!r} ({', '.join(parts)})"


@dataclass(frozen=True)
class TaskRef:
    """A task (or line) without a usable answer: its sample ``id`` (None if it names none),
    the tool's ``task`` id (None for plain files) and ``where`` it was read."""

    id: Optional[str]
    task: Optional[str]
    where: str

    def describe(self) -> str:
        """``sample a.png (task 12)`` -- sample id and task id, never a list position."""
        sample = f"sample {self.id}" if self.id is not None else "no sample id"
        return f"{sample} ({'task ' + self.task if self.task is not None else self.where})"


@dataclass
class Reading:
    """What a format reader found, before the disagreement policy: every ``answers`` in file
    order (a sample may have several), ``skipped`` (cancelled) and ``unannotated`` tasks,
    ``problems`` (lines that cannot be used: the file is refused), ``warnings`` and
    ``columns`` (which column or field gave the sample and the label, for the merge report)."""

    format: str
    answers: List[LabelEntry] = field(default_factory=list)
    skipped: List[TaskRef] = field(default_factory=list)
    unannotated: List[TaskRef] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    columns: Dict[str, str] = field(default_factory=dict)


@dataclass
class ParsedLabels:
    """A usable label file: ``entries`` (one per sample, the policy's choice, file order),
    ``skipped`` tasks (cancelled by the annotator: no label, the sample stays out for labeling),
    ``unannotated`` tasks and empty-label lines, ``warnings``, the ``format`` name, ``columns``
    (sample / label column or field) and ``resolved`` (one line per disagreement the policy
    settled)."""

    path: str
    format: str
    entries: List[LabelEntry]
    skipped: List[TaskRef] = field(default_factory=list)
    unannotated: List[TaskRef] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    columns: Dict[str, str] = field(default_factory=dict)
    resolved: List[str] = field(default_factory=list)

    def describe_columns(self) -> str:
        """``sample from 'filename', label from 'class'`` (empty when the format has fixed fields)."""
        return ", ".join(f"{what} from {name!r}" for what, name in self.columns.items())


@dataclass(frozen=True)
class SampleLocations:
    """How an annotation tool addresses the pool's samples, to map a file reference back to a
    sample id: ``pool_root`` (the image folder), ``document_root`` (Label Studio's
    ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` that ``?d=`` paths are relative to), ``url_prefix``
    (tasks' image URLs are prefix + id). All optional; without them a ``?d=`` path is taken as
    relative to the pool."""

    pool_root: Optional[str] = None
    document_root: Optional[str] = None
    url_prefix: Optional[str] = None

    def sample_id(self, reference: str) -> str:
        """The sample id a file reference names (normalised). A reference that points outside
        the pool comes back as the path it names (the caller then finds it is not in the pool)."""
        ref = str(reference).strip()
        if self.url_prefix and ref.startswith(self.url_prefix):
            return normalise_sample_id(unquote(ref[len(self.url_prefix):]))
        if "?d=" in ref:
            rel = parse_qs(urlsplit(ref).query).get("d", [""])[0]
            if self.document_root is None:
                return normalise_sample_id(rel)
            ref = os.path.join(self.document_root, rel)
        if os.path.isabs(ref) and self.pool_root is not None:
            path, root = os.path.normpath(ref), os.path.normpath(self.pool_root)
            if os.path.commonpath([path, root]) == root:
                return normalise_sample_id(os.path.relpath(path, root))  # Windows separators become "/"
        return normalise_sample_id(ref)
