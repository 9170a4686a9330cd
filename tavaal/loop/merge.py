"""Checking returned labels against the pool and the labels so far (:func:`check_entries`, the
one validation of a label file's entries at ``init`` and ``label``); what a merge did."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from ..data.labelfiles import LabelEntry, ParsedLabels
from . import backend
from .masks import MaskLabel

__all__ = ["ReadLabels", "MergeReport", "check_entries"]


@dataclass
class ReadLabels:
    """Labels read from a label file or a mask folder and checked against the pool.

    ``labels``: id -> what ``state.json`` stores for it (a class name; a stored mask path), in
    the order the ids enter ``state.json``; ``problems``: offending lines (nothing is merged
    when there is one); ``warnings``: non-fatal remarks of the file; ``file`` / ``format``: for
    the merge record; ``skipped``: ids of tasks the annotators skipped (cancelled; they stay
    out for labeling); ``columns``: which columns gave the sample and the label (for the merge
    report; empty for fixed formats); ``masks``: the decoded masks (segmentation)."""

    file: str
    format: str
    labels: Dict[str, str]
    problems: List[str]
    warnings: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    columns: str = ""
    masks: Dict[str, MaskLabel] = field(default_factory=dict)
    corrections: List[str] = field(default_factory=list)


@dataclass
class MergeReport:
    """What :meth:`Workdir.label` did: ``added`` new labels, ``unchanged`` ids that were already
    labeled identically, ``new_classes`` appended, ``warnings`` (ids outside any selected batch,
    unannotated or skipped tasks, empty labels), ``skipped`` ids the annotators skipped (they
    stay out for labeling), ``columns``: which columns gave the sample and the label,
    ``corrected``: labels changed with ``relabel`` ("id: old -> new")."""

    added: int
    unchanged: int
    new_classes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    columns: str = ""
    corrected: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.added > 0 or bool(self.new_classes) or bool(self.corrected)


def check_entries(parsed: ParsedLabels, source, existing: Dict[str, str], classes: List[str],
                  add_classes: bool, relabel: bool = False, add_hint: str = "--add-classes adds it") -> ReadLabels:
    """The :class:`ReadLabels` of the label file ``parsed``: canonical id -> label of its usable
    entries (in file order), problem lines, warnings, corrections "id: old -> new (where)".
    Problems: ids not in the pool, conflicting duplicates within the file, classes outside
    ``classes`` (unless ``add_classes``), and corrections -- labels that differ from ``existing``
    -- unless ``relabel`` (then they are accepted). Entries for files the pool excluded as
    unreadable are left out with one warning. ``add_hint``: how the user adds an unknown class
    (at init: by naming it in ``--classes``)."""
    problems: List[str] = []
    corrections: List[str] = []
    unreadable = set(getattr(source, "excluded", ()))
    dropped: List[str] = []
    rows, canonical = backend.rows_for_ids(source, [e.id for e in parsed.entries])
    accepted: Dict[str, str] = {}
    first_seen: Dict[str, LabelEntry] = {}
    known = set(classes)
    for entry, row, ident in zip(parsed.entries, rows, canonical):
        if row is None and entry.id in unreadable:
            dropped.append(entry.id)
            continue
        if row is None:
            problems.append(f"{entry.where}: id {entry.id!r} is not in the pool")
            continue
        if entry.label not in known and not add_classes:
            problems.append(f"{entry.where}: {entry.id},{entry.label}: unknown class {entry.label!r} (classes: "
                            f"{', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}; {add_hint})")
            continue
        previous = first_seen.get(ident)
        if previous is not None and previous.label != entry.label:
            problems.append(f"{entry.where}: id {ident!r} labeled {entry.label!r} but {previous.label!r} in "
                            f"{previous.where}")
            continue
        if ident in existing and existing[ident] != entry.label:
            corrections.append(f"{ident}: {existing[ident]} -> {entry.label} ({entry.where})")
            if not relabel:
                problems.append(f"{entry.where}: id {ident!r} is already labeled {existing[ident]!r}; the file says "
                                f"{entry.label!r} (a correction: --relabel applies it)")
                continue
        first_seen.setdefault(ident, entry)
        accepted[ident] = entry.label
    warnings = [f"{len(dropped)} label(s) of unreadable files left out: " + ", ".join(dropped[:20])] if dropped else []
    return ReadLabels(str(parsed.path), parsed.format, accepted, problems, list(parsed.warnings) + warnings,
                      skipped=[t.id for t in parsed.skipped if t.id is not None], columns=parsed.describe_columns(),
                      corrections=corrections)
