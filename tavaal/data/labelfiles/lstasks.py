"""Label Studio tasks: what tavaal writes into a task and how a task names its sample.

Facts about Label Studio 1.23 (its exports are label-studio-sdk 2.1's ``converter``): a task is
``{"id": N, "data": {...}, "annotations": [...], "predictions": [...]}``; an annotation holds
``result`` (a list of ``{"from_name", "to_name", "type", "value"}``), ``was_cancelled``
(skipped), ``completed_by`` (a user id), ``created_at`` / ``updated_at`` (ISO 8601) and
``lead_time``; a Choices result's ``value`` is ``{"choices": [...]}``. The flat exports
(JSON_MIN, CSV, TSV: :mod:`.lsjsonmin`, :mod:`.lscsv`) add the bookkeeping :data:`EXPORT_FIELDS`.

Task data written by :func:`label_studio_task`: ``tavaal_id`` (the sample id; the only field
a reader takes as the sample when present -- Label Studio's own task ``id`` never is), ``rank``,
``score``, ``batch``, ``cycle``, ``method``, ``predicted`` / ``probability`` (the task model's
class and its probability), ``score_<name>`` components and ``audit`` (a uniformly drawn audit
sample), plus ``image`` for image pools.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .entries import SampleLocations, normalise_sample_id

__all__ = ["SAMPLE_FIELD", "TASK_FIELDS", "REFERENCE_FIELDS", "EXPORT_FIELDS", "ChoicePrediction",
           "label_studio_task", "label_studio_tasks", "sample_of", "label_candidates", "single_choice",
           "author_of"]

SAMPLE_FIELD = "tavaal_id"
TASK_FIELDS = ("tavaal_id", "rank", "score", "batch", "cycle", "method", "predicted", "probability", "audit")
"""Task data fields tavaal writes (besides ``image`` and ``score_<component>``)."""
REFERENCE_FIELDS = ("image", "img", "path", "file", "filename", "url")
"""Task data fields that can hold a file reference (storage-synced tasks have no ``tavaal_id``)."""
EXPORT_FIELDS = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement",
                 "history")
"""Bookkeeping fields of Label Studio's flat exports (never a label)."""


@dataclass(frozen=True)
class ChoicePrediction:
    """A pre-annotation: ``label`` chosen on the Choices control ``from_name`` (of the object tag
    ``to_name``), the model's ``probability`` as the prediction score, ``model_version``."""

    label: str
    probability: Optional[float]
    from_name: str
    to_name: str
    model_version: str

    def as_prediction(self) -> Dict[str, Any]:
        """The prediction object of Label Studio's task / prediction API."""
        return {"model_version": self.model_version, "score": _number(self.probability),
                "result": [{"from_name": self.from_name, "to_name": self.to_name, "type": "choices",
                            "value": {"choices": [self.label]}}]}


def _number(value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def label_studio_task(ident: str, rank: int, score: Optional[float], batch: int, *, cycle: Optional[int] = None,
                      method: Optional[str] = None, image: Optional[str] = None, predicted: Optional[str] = None,
                      probability: Optional[float] = None, components: Optional[Mapping[str, float]] = None,
                      predictions: Sequence[Dict[str, Any]] = (), image_field: str = "image",
                      audit: bool = False) -> Dict[str, Any]:
    """One task to import: ``{"data": {...}}`` (fields in the module docstring; None fields are
    left out) and ``predictions`` (prediction objects, e.g. :meth:`ChoicePrediction.as_prediction`)
    when given. ``image`` is the URL Label Studio loads the sample from, stored under
    ``image_field`` (the project's ``<Image value="$...">``)."""
    data: Dict[str, Any] = {"tavaal_id": str(ident), "rank": int(rank), "batch": int(batch), "score": _number(score)}
    optional = (("cycle", cycle), ("method", method), ("predicted", predicted), ("probability", _number(probability)))
    data.update((key, value) for key, value in optional if value is not None)
    data.update((f"score_{name}", _number(value)) for name, value in (components or {}).items())
    if audit:
        data["audit"] = True
    if image is not None:
        data[image_field] = image
    task: Dict[str, Any] = {"data": data}
    if predictions:
        task["predictions"] = list(predictions)
    return task


def label_studio_tasks(tasks: Sequence[Dict[str, Any]]) -> str:
    """A Label Studio import file (a JSON list of tasks, :func:`label_studio_task`)."""
    return json.dumps(list(tasks), indent=1, ensure_ascii=False) + "\n"


def sample_of(fields: Mapping[str, Any], locations: SampleLocations) -> Tuple[Optional[str], Optional[str], str]:
    """(sample id, problem, field used) of a task's data (or a flat export record).

    ``tavaal_id`` wins; without it, the one file reference among :data:`REFERENCE_FIELDS` (also as
    ``_data_<name>``, the flat exports' spelling when a control shares the name), mapped by
    ``locations``. Several references, or none, are a problem, never a guess."""
    for key in (SAMPLE_FIELD, f"_data_{SAMPLE_FIELD}"):
        value = fields.get(key)
        if value is not None and str(value).strip():
            return normalise_sample_id(str(value)), None, key
    refs = [k for k in fields if k.removeprefix("_data_") in REFERENCE_FIELDS and isinstance(fields[k], str)
            and fields[k].strip()]
    if len(refs) == 1:
        return locations.sample_id(fields[refs[0]]), None, refs[0]
    if refs:
        return None, f"no {SAMPLE_FIELD} and several file references ({', '.join(refs)}): ambiguous sample", ""
    return None, f"no sample id ({SAMPLE_FIELD} or a file reference: {', '.join(REFERENCE_FIELDS)})", ""


def label_candidates(names, control: Optional[str]) -> List[str]:
    """Fields of a flat export record that can hold the label: ``[control]`` if given and present,
    else every name that is neither bookkeeping, a tavaal field nor a file reference."""
    names = list(names)
    if control is not None:
        return [control] if control in names else []
    never = EXPORT_FIELDS + TASK_FIELDS + REFERENCE_FIELDS
    return [n for n in names if n not in never and not n.startswith(("score_", "_data_"))
            and not n.endswith("_transcript")]


def single_choice(results: Sequence[Any], control: Optional[str] = None) -> Tuple[Optional[str], Optional[str]]:
    """(label, problem) of one annotation's ``result`` list: the single choice of its one
    Choices result (on ``control`` when given)."""
    choices = [r for r in results if isinstance(r, dict) and str(r.get("type", "")).lower() == "choices"
               and isinstance(r.get("value"), dict) and "choices" in r["value"]
               and (control is None or r.get("from_name") == control)]
    if not choices:
        return None, "no 'choices' result" + (f" on the control {control!r}" if control else "")
    controls = sorted({str(r.get("from_name")) for r in choices})
    if len(controls) > 1:
        return None, f"choices on several controls ({', '.join(controls)}): ambiguous label"
    values = choices[-1]["value"]["choices"]
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str) or not values[0].strip():
        return None, f"expected exactly one choice, got {values!r}"
    return values[0].strip(), None


def author_of(completed_by: Any) -> Optional[str]:
    """An annotator as text: the email of a user object, ``user N`` for a user id."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("email") or completed_by.get("id")
    if completed_by is None or completed_by == "":
        return None
    if isinstance(completed_by, int) or (isinstance(completed_by, str) and completed_by.strip().isdigit()):
        return f"user {int(completed_by)}"
    return str(completed_by)
