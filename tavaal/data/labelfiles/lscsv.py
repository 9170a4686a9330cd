"""Label Studio's "CSV" and "TSV" exports: one row per submitted annotation (an unannotated task
one row with an empty control column; a task whose annotations were all cancelled no row).

The header is the sorted union of the task data fields, ``id`` (Label Studio's task id: never
the sample), each control's name, ``annotator`` (email or user id), ``annotation_id``,
``created_at``, ``updated_at``, ``lead_time`` (and ``agreement`` / ``history``); a data field
that shares a control's name is written ``_data_<name>``. Strings are quoted, numbers are not
(``csv.QUOTE_NONNUMERIC``); a Choices control with one choice holds the choice, with several a
JSON list. The sample column is ``tavaal_id`` (a row where it is empty -- a storage-synced
task -- uses its one file-reference column), else the one file-reference column; the label
column is the one column that is none of these (or the ``control`` asked for). A header whose
sample or label column cannot be told is refused.
"""
from __future__ import annotations

import csv
import io
import json
from functools import partial

from .entries import LabelEntry, Reading, TaskRef
from .lstasks import REFERENCE_FIELDS, SAMPLE_FIELD, author_of, label_candidates, sample_of
from .registry import Content, LabelFormat, ReadOptions, register_format

__all__ = ["CSV_EXPORT", "TSV_EXPORT"]

_MARKERS = ("id", "annotation_id", "annotator", "created_at", "updated_at", "lead_time")


def _sniff(delimiter: str, content: Content) -> bool:
    if content.looks_like_json or delimiter not in content.first_line:
        return False
    try:
        header = [c.strip() for c in next(csv.reader([content.first_line], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return False
    return all(m in header for m in _MARKERS)


def _read(delimiter: str, format: str, content: Content, name: str, options: ReadOptions) -> Reading:
    reading = Reading(format)
    try:
        rows = list(csv.reader(io.StringIO(content.text), delimiter=delimiter))
    except csv.Error as exc:
        reading.problems.append(f"not valid {format} ({exc})")
        return reading
    header = [c.strip() for c in rows[0]]
    ids = [c for c in (SAMPLE_FIELD, f"_data_{SAMPLE_FIELD}") if c in header]
    refs = [c for c in header if c.removeprefix("_data_") in REFERENCE_FIELDS]
    if not ids and len(refs) != 1:
        what = "no" if not refs else f"several ({', '.join(refs)})"
        reading.problems.append(f"header: {what} sample column: need {SAMPLE_FIELD} or one file-reference column "
                                f"({', '.join(REFERENCE_FIELDS)}); Label Studio's task 'id' is not a sample id")
        return reading
    sample_cols = ids + refs  # tavaal_id wins; a row without it (a storage-synced task) uses its reference
    label_cols = [c for c in label_candidates(header, options.control) if c not in sample_cols]
    if len(label_cols) != 1:
        what = "no" if not label_cols else f"several ({', '.join(label_cols)})"
        reading.problems.append(f"header: {what} label column among {', '.join(header)}"
                                + ("" if options.control else ": name the control (control=...)"))
        return reading
    reading.columns = {"sample": ", else ".join(ids[:1] + refs), "label": label_cols[0]}
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            reading.problems.append(f"line {number}: expected {len(header)} fields as the header, got {len(row)}")
            continue
        fields = dict(zip(header, row))
        task_id = fields["id"].strip() or None
        annotation_id = fields["annotation_id"].strip() or None
        where = f"line {number}" + (f" (task {task_id})" if task_id else "")
        ident, problem, _ = sample_of({c: fields[c] for c in sample_cols}, options.locations)
        if problem is not None:
            reading.problems.append(f"{where}: {problem}")
            continue
        value = fields[label_cols[0]].strip()
        if not value:
            reading.unannotated.append(TaskRef(ident, task_id, where))
            continue
        if value[:1] in "[{":
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
            if not isinstance(parsed, str):
                reading.problems.append(f"{where} ({ident}): {label_cols[0]} is {value}, expected exactly one choice")
                continue
        reading.answers.append(LabelEntry(where, ident, value, task_id, annotation_id,
                                          fields["updated_at"].strip() or fields["created_at"].strip() or None,
                                          author_of(fields["annotator"].strip())))
    return reading


CSV_EXPORT = register_format(LabelFormat(
    "label-studio-csv", "Label Studio CSV export (header with id, annotator, annotation_id, created_at, ...)",
    partial(_sniff, ","), partial(_read, ",", "label-studio-csv")))
TSV_EXPORT = register_format(LabelFormat(
    "label-studio-tsv", "Label Studio TSV export (the CSV export's columns, tab-separated)",
    partial(_sniff, "\t"), partial(_read, "\t", "label-studio-tsv")))
