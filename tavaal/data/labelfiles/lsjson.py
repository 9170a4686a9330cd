"""Label Studio's "JSON" export (a list of tasks with their annotations), the tasks the API
returns (same structure), and the import file tavaal writes (tasks without annotations).

Per task: the sample from ``data`` (:func:`~.lstasks.sample_of`: ``tavaal_id`` wins); no
annotation: unannotated; only cancelled ones: skipped; otherwise every annotation that is not
cancelled is one answer (its single choice, its ``updated_at`` / ``created_at``, its
``completed_by``). Several answers for a sample go to the shared disagreement policy.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from .entries import LabelEntry, Reading, TaskRef
from .lstasks import sample_of, single_choice, author_of
from .registry import Content, LabelFormat, ReadOptions, register_format

__all__ = ["JSON_EXPORT", "IMPORT_FILE", "read_tasks", "task_annotations"]


def _is_task(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("data"), dict)


def task_annotations(tasks: Sequence[Any], options: ReadOptions,
                     reading: Reading) -> Iterator[Tuple[str, str, Optional[str], Optional[str], Dict[str, Any]]]:
    """(where, sample id, task id, annotation id, annotation) of every annotation of ``tasks``
    that is not cancelled. Into ``reading``: a task naming no sample goes to ``problems``, one
    without annotations to ``unannotated``, one with only cancelled ones to ``skipped``; the
    sample fields used to ``columns["sample"]`` (once every task is read)."""
    references = set()
    for k, task in enumerate(tasks):
        if not _is_task(task):
            reading.problems.append(f"item {k}: expected a task object with 'data', got {type(task).__name__}")
            continue
        task_id = str(task["id"]) if task.get("id") is not None else None
        where = f"task {task_id}" if task_id is not None else f"item {k} (no task id)"
        ident, problem, used = sample_of(task["data"], options.locations)
        if problem is not None:
            reading.problems.append(f"{where}: {problem}")
            continue
        if used != "tavaal_id":
            references.add(f"data.{used}")
        annotations = [a for a in (task.get("annotations") or task.get("completions") or []) if isinstance(a, dict)]
        if not annotations:
            reading.unannotated.append(TaskRef(ident, task_id, where))
            continue
        done = [a for a in annotations if not (a.get("was_cancelled") or a.get("skipped"))]
        if not done:
            reading.skipped.append(TaskRef(ident, task_id, where))
            continue
        for annotation in done:
            annotation_id = str(annotation["id"]) if annotation.get("id") is not None else None
            yield (f"{where} annotation {annotation_id}" if annotation_id is not None else where, ident, task_id,
                   annotation_id, annotation)
    reading.columns["sample"] = "data.tavaal_id" + (", else " + ", ".join(sorted(references)) if references else "")


def read_tasks(tasks: Sequence[Any], name: str, options: ReadOptions, format: str = "label-studio-json") -> Reading:
    """A :class:`Reading` of Label Studio tasks (export or API objects), see the module docstring."""
    reading = Reading(format)
    for at, ident, task_id, annotation_id, annotation in task_annotations(tasks, options, reading):
        label, problem = single_choice(annotation.get("result") or [], options.control)
        if problem is not None:
            reading.problems.append(f"{at} ({ident}): {problem}")
            continue
        reading.answers.append(LabelEntry(at, ident, label, task_id, annotation_id,
                                          annotation.get("updated_at") or annotation.get("created_at"),
                                          author_of(annotation.get("completed_by"))))
    reading.columns["label"] = f"annotations' choices{f' on {options.control!r}' if options.control else ''}"
    return reading


def _sniffer(annotated: bool):
    def sniff(content: Content) -> bool:
        value = content.json
        return isinstance(value, list) and bool(value) and all(
            _is_task(t) and ("annotations" in t or "completions" in t) == annotated for t in value)
    return sniff


def _read_import(content: Content, name: str, options: ReadOptions) -> Reading:
    return Reading("label-studio-tasks", problems=[
        f"{name} is a Label Studio import file ({len(content.json)} tasks without annotations, as tavaal select "
        "writes it), not an export: annotate the tasks, then export the project (JSON, JSON_MIN, CSV or TSV) "
        "or pull it with --label-studio"])


JSON_EXPORT = register_format(LabelFormat(
    "label-studio-json", "Label Studio JSON export (a list of tasks with 'data' and 'annotations')",
    _sniffer(True), lambda content, name, options: read_tasks(content.json, name, options)))
IMPORT_FILE = register_format(LabelFormat(
    "label-studio-tasks", "a Label Studio import file (tasks with 'data', no annotations; refused with a hint)",
    _sniffer(False), _read_import))
