"""Label files: one registry of annotation formats, read and written.

Read any registered format with :func:`read_label_file` (or :func:`parse_labels` for text): the
format is detected from the content's structure (:func:`detect_format`; ambiguity is refused),
ids are normalised, and the shared disagreement policy (``refuse`` | ``latest`` | ``majority``)
makes one label per sample (:class:`ParsedLabels`). Errors are :class:`LabelFileError` (a
ValueError listing every offending line).

Built-in formats (one module each): ``csv`` (:mod:`.delimited`: plain CSV/TSV sheets),
``label-studio-json`` and ``label-studio-tasks`` (:mod:`.lsjson`), ``label-studio-json-min``
(:mod:`.lsjsonmin`), ``label-studio-csv`` / ``label-studio-tsv`` (:mod:`.lscsv`). A new
annotation tool is one module that builds a :class:`LabelFormat` and calls
:func:`register_format`.

Writers: :func:`to_label_csv` (a batch to label), :func:`labels_csv` (every label so far),
:func:`label_studio_task` / :func:`label_studio_tasks` (a Label Studio import file).
"""
from .entries import LabelEntry, ParsedLabels, Reading, SampleLocations, TaskRef, normalise_sample_id
from .errors import LabelFileError
from .policy import DEFAULT_POLICY, DISAGREEMENT_POLICIES, check_policy, resolve
from .registry import (Content, LabelFormat, ReadOptions, detect_format, label_formats, parse_labels,
                       read_label_file, register_format, unregister_format)
from . import lscsv, lsjsonmin  # noqa: F401  (built-in formats register themselves on import)
from .delimited import LABEL_ALIASES, SAMPLE_ALIASES, labels_csv, to_label_csv
from .lsjson import read_tasks
from .lstasks import ChoicePrediction, label_studio_task, label_studio_tasks

__all__ = ["LabelEntry", "ParsedLabels", "Reading", "SampleLocations", "TaskRef", "normalise_sample_id",
           "LabelFileError", "DEFAULT_POLICY", "DISAGREEMENT_POLICIES", "check_policy", "resolve",
           "Content", "LabelFormat", "ReadOptions", "detect_format", "label_formats", "parse_labels",
           "read_label_file", "register_format", "unregister_format", "read_tasks", "SAMPLE_ALIASES", "LABEL_ALIASES",
           "labels_csv", "to_label_csv", "ChoicePrediction", "label_studio_task", "label_studio_tasks"]
