"""Label files: reading what annotators return, writing what they are sent.

Read (:func:`read_label_file`):

* **CSV** ``id,label`` -- one sample per line, an optional header line ``id,label``; ids as
  ``tavaal.score`` prints them (a file path relative to the pool folder, or a row number);
  labels are class names (strings). Quoting follows the ``csv`` module (RFC 4180).
* **Label Studio JSON export** (``.json``): the list of tasks of Label Studio's "JSON"
  export. The sample is ``task["data"]["tavaal_id"]`` (written by :func:`label_studio_tasks`),
  else the task's ``data.image`` value (a path); the label is the single choice of the last
  annotation that is not cancelled (a ``choices`` result). Tasks without an annotation are
  skipped (reported as warnings). Label Studio's "JSON_MIN" export (flat objects holding
  ``tavaal_id`` and the choice under the control's name) is read too.

Every malformed line is collected and raised together as one :class:`LoopError` (first 20
and a count); a file with no labels at all is an error.

Write: ``to_label.csv`` (``rank,id,score``, most informative first) and a Label Studio
import file (:func:`label_studio_tasks`: ``[{"data": {"image": ..., "tavaal_id": ...,
"rank": ..., "score": ...}}]``).
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import LoopError

__all__ = ["LabelEntry", "LabelFile", "read_label_file", "parse_csv_labels", "parse_label_studio",
           "to_label_csv", "label_studio_tasks", "labels_csv"]


@dataclass(frozen=True)
class LabelEntry:
    """One (id, label) pair and where it came from (``where``: "line 7" / "task 3")."""

    where: str
    id: str
    label: str


@dataclass
class LabelFile:
    """The entries of a label file plus non-fatal warnings (e.g. unannotated tasks)."""

    path: str
    format: str
    entries: List[LabelEntry]
    warnings: List[str] = field(default_factory=list)


def read_label_file(path) -> LabelFile:
    """Parse ``path`` (CSV or Label Studio JSON by extension / content). Raises
    :class:`LoopError` for a missing, unreadable, empty or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise LoopError(f"labels file {path} does not exist (give a CSV 'id,label' or a Label Studio JSON export)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoopError(f"labels file {path}: cannot read it as UTF-8 text ({exc})") from None
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith("[") or stripped.startswith("{"):
        result = parse_label_studio(text, str(path))
    else:
        result = parse_csv_labels(text, str(path))
    if not result.entries:
        hint = "; ".join(result.warnings[:3])
        raise LoopError(f"labels file {path} holds no labels" + (f" ({hint})" if hint else ""))
    return result


def parse_csv_labels(text: str, name: str = "<csv>") -> LabelFile:
    """``id,label`` lines (optional header) -> :class:`LabelFile`; every bad line is listed.

    A header naming an ``id`` and a ``label`` column among others (e.g. ``to_label.csv`` with a
    ``label`` column filled in: ``rank,id,score,label``) selects those two columns."""
    entries: List[LabelEntry] = []
    problems: List[str] = []
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise LoopError(f"labels file {name}: not valid CSV ({exc})") from None
    columns, width = (0, 1), 2
    for number, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if number == 1:
            header = [c.strip().lower() for c in row]
            if "id" in header and "label" in header:
                columns, width = (header.index("id"), header.index("label")), len(header)
                continue
        if len(row) != width:
            problems.append(f"line {number}: expected {width} fields ({'id,label' if width == 2 else 'as the header'})"
                            f", got {len(row)}: {','.join(row)!r}")
            continue
        ident, label = row[columns[0]].strip(), row[columns[1]].strip()
        if not ident or not label:
            problems.append(f"line {number}: empty {'id' if not ident else 'label'}: {','.join(row)!r}")
            continue
        entries.append(LabelEntry(f"line {number}", ident, label))
    if problems:
        raise LoopError(f"labels file {name} is malformed (expected CSV lines 'id,label')", problems)
    return LabelFile(name, "csv", entries)


def _task_id(task: Dict[str, Any]) -> Optional[str]:
    """``data.tavaal_id``, else the task's file reference: ``data.image`` (or img/path/file); a
    Label Studio local-files URL (``/data/local-files/?d=REL/PATH``) gives ``REL/PATH``."""
    data = task.get("data") if isinstance(task.get("data"), dict) else task
    for key in ("tavaal_id", "image", "img", "path", "file"):
        value = data.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            text = str(value).strip()
            if key != "tavaal_id" and "?d=" in text:
                from urllib.parse import parse_qs, urlsplit

                text = parse_qs(urlsplit(text).query).get("d", [text])[0]
            return text
    return None


def _choice_of(results: Sequence[Any]) -> Tuple[Optional[str], Optional[str]]:
    """(label, problem) from one annotation's result list."""
    choices = [r for r in results if isinstance(r, dict) and r.get("type", "choices") == "choices"
               and isinstance(r.get("value"), dict) and "choices" in r["value"]]
    if not choices:
        return None, "no 'choices' result"
    values = choices[-1]["value"]["choices"]
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str) or not values[0].strip():
        return None, f"expected exactly one choice, got {values!r}"
    return values[0].strip(), None


def parse_label_studio(text: str, name: str = "<json>") -> LabelFile:
    """Label Studio "JSON" or "JSON_MIN" export -> :class:`LabelFile` (see module docstring)."""
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoopError(f"labels file {name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise LoopError(f"labels file {name}: expected a Label Studio export (a JSON list of tasks), "
                        f"got a JSON {type(tasks).__name__}")
    entries: List[LabelEntry] = []
    problems: List[str] = []
    warnings: List[str] = []
    for k, task in enumerate(tasks):
        where = f"task {k}" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict):
            problems.append(f"{where}: expected a JSON object, got {type(task).__name__}")
            continue
        ident = _task_id(task)
        if ident is None:
            problems.append(f"{where}: no sample id (data.tavaal_id or data.image)")
            continue
        if "annotations" in task or "completions" in task:  # full JSON export
            annotations = [a for a in (task.get("annotations") or task.get("completions") or [])
                           if isinstance(a, dict) and not a.get("was_cancelled", False)]
            if not annotations:
                warnings.append(f"{where} ({ident}): not annotated yet, skipped")
                continue
            label, problem = _choice_of(annotations[-1].get("result") or [])
        else:  # JSON_MIN: the control's name maps to the choice (a string or {"choices": [...]})
            known = {"tavaal_id", "image", "img", "path", "file", "id", "rank", "score", "row", "annotator",
                     "annotation_id", "created_at", "updated_at", "lead_time"}
            values = [v for key, v in task.items() if key not in known]
            values = [v["choices"][0] if isinstance(v, dict) and isinstance(v.get("choices"), list)
                      and len(v["choices"]) == 1 else v for v in values]
            strings = [v for v in values if isinstance(v, str) and v.strip()]
            if len(strings) == 1:
                label, problem = strings[0].strip(), None
            elif not values:
                warnings.append(f"{where} ({ident}): not annotated yet, skipped")
                continue
            else:
                label, problem = None, f"expected one choice field, got {sorted(set(task) - known)}"
        if problem is not None:
            problems.append(f"{where} ({ident}): {problem}")
            continue
        entries.append(LabelEntry(where, ident, label))
    if problems:
        raise LoopError(f"labels file {name} is not a usable Label Studio export", problems)
    return LabelFile(name, "label-studio", entries, warnings)


# ----------------------------------------------------------------------------------- writing
def _score_text(score: float) -> str:
    return "" if score is None or (isinstance(score, float) and math.isnan(score)) else repr(float(score))


def to_label_csv(ids: Sequence[str], scores: Sequence[float]) -> str:
    """``rank,id,score`` lines, rank 0 = most informative; an empty score for ``random``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "id", "score"])
    for rank, (ident, score) in enumerate(zip(ids, scores)):
        writer.writerow([rank, ident, _score_text(score)])
    return out.getvalue()


def label_studio_tasks(ids: Sequence[str], scores: Sequence[float], image_root: Optional[str],
                       batch: int) -> str:
    """A Label Studio import file (JSON list of tasks) for a batch.

    Each task's ``data`` holds ``tavaal_id`` (what :func:`parse_label_studio` reads back),
    ``rank``, ``score``, ``batch`` and, for image folder pools, ``image``: the file's absolute
    path (serve it with Label Studio's local-files storage or rewrite the prefix)."""
    tasks = []
    for rank, (ident, score) in enumerate(zip(ids, scores)):
        data: Dict[str, Any] = {"tavaal_id": ident, "rank": rank, "batch": batch}
        s = _score_text(score)
        data["score"] = float(s) if s else None
        if image_root is not None:
            data["image"] = str(Path(image_root) / ident)
        tasks.append({"data": data})
    return json.dumps(tasks, indent=1) + "\n"


def labels_csv(labels: Dict[str, str]) -> str:
    """All labels as ``id,label`` CSV (the format :func:`parse_csv_labels` reads)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "label"])
    for ident, label in labels.items():
        writer.writerow([ident, label])
    return out.getvalue()
