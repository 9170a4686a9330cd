"""Label Studio's "JSON_MIN" export: a list of flat records, one per submitted annotation (a task
with several annotations gives several records with the same ``id``; an unannotated task one
record without a control field; a task whose annotations were all cancelled none at all).

A record holds the task's data fields, ``id`` (Label Studio's task id), each control's value
under the control's name (a Choices control with one choice: the string) and the bookkeeping
fields ``annotator`` (user id or email), ``annotation_id``, ``created_at``, ``updated_at``,
``lead_time``. The sample is ``tavaal_id`` (else the one file reference, never ``id``); the
label is the one field that is none of these (or the ``control`` asked for).
"""
from __future__ import annotations

from typing import Any

from .entries import LabelEntry, Reading, TaskRef
from .lstasks import author_of, label_candidates, sample_of
from .registry import Content, LabelFormat, ReadOptions, register_format

__all__ = ["JSON_MIN_EXPORT"]

_MARKERS = ("annotation_id", "annotator", "created_at", "updated_at", "lead_time")


def _is_record(item: Any) -> bool:
    return isinstance(item, dict) and not isinstance(item.get("data"), dict) and all(k in item for k in _MARKERS)


def _sniff(content: Content) -> bool:
    value = content.json
    return isinstance(value, list) and bool(value) and all(_is_record(r) for r in value)


def _read(content: Content, name: str, options: ReadOptions) -> Reading:
    reading = Reading("label-studio-json-min")
    sample_fields, label_fields = set(), set()
    for k, record in enumerate(content.json):
        task_id = str(record["id"]) if record.get("id") is not None else None
        annotation_id = str(record["annotation_id"]) if record.get("annotation_id") is not None else None
        where = (f"task {task_id}" if task_id is not None else f"record {k}") + (
            f" annotation {annotation_id}" if annotation_id is not None else "")
        ident, problem, used = sample_of(record, options.locations)
        if problem is not None:
            reading.problems.append(f"{where}: {problem}")
            continue
        sample_fields.add(used)
        candidates = [c for c in label_candidates(record, options.control) if c != used]
        if not candidates:
            reading.unannotated.append(TaskRef(ident, task_id, where))
            continue
        if len(candidates) > 1:
            reading.problems.append(f"{where} ({ident}): several fields could hold the label ({', '.join(candidates)})"
                                    ": ambiguous; name the control (control=...)")
            continue
        value = record[candidates[0]]
        if isinstance(value, dict) and isinstance(value.get("choices"), list) and len(value["choices"]) == 1:
            value = value["choices"][0]
        if not isinstance(value, str) or not value.strip():
            reading.problems.append(f"{where} ({ident}): {candidates[0]} is {value!r}, expected exactly one choice")
            continue
        label_fields.add(candidates[0])
        reading.answers.append(LabelEntry(where, ident, value.strip(), task_id, annotation_id,
                                          record.get("updated_at") or record.get("created_at"),
                                          author_of(record.get("annotator"))))
    reading.columns = {"sample": ", ".join(sorted(sample_fields)) or "tavaal_id",
                       "label": ", ".join(sorted(label_fields)) or (options.control or "-")}
    return reading


JSON_MIN_EXPORT = register_format(LabelFormat(
    "label-studio-json-min", "Label Studio JSON_MIN export (flat records with annotation_id, annotator, ...)",
    _sniff, _read))
