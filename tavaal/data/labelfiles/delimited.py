"""Plain label sheets -- CSV (or TSV) lines ``sample,label`` as people make them -- and the CSV
files tavaal writes (``to_label.csv``, ``labels.csv``).

Read: an optional header names the columns. Sample column aliases :data:`SAMPLE_ALIASES`
(``tavaal_id`` wins over the others), label column aliases :data:`LABEL_ALIASES`
(case-insensitive); a header with two candidate sample (or label) columns is refused, never
guessed. Without a header every line is exactly ``sample,label``. Ids are normalised
(:func:`~.entries.normalise_sample_id`); a line with an empty label is left out with a warning
(a half-filled sheet); a line with a label but no sample, or the wrong number of fields, is a
problem. Tab-separated when the file is ``.tsv`` or its first line has tabs and no comma.
Quoting follows the ``csv`` module (RFC 4180). This is the registry's fallback format: it reads
what no more specific format claims.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Dict, Iterable, Mapping, Optional, Sequence

from .entries import LabelEntry, Reading, TaskRef, normalise_sample_id
from .registry import Content, LabelFormat, ReadOptions, register_format

__all__ = ["SAMPLE_ALIASES", "LABEL_ALIASES", "PLAIN_CSV", "to_label_csv", "labels_csv"]

SAMPLE_ALIASES = ("tavaal_id", "id", "filename", "file", "path", "image")
LABEL_ALIASES = ("label", "class", "category")


def _delimiter(content: Content) -> str:
    tabs = "\t" in content.first_line and "," not in content.first_line
    return "\t" if content.suffix == ".tsv" or (content.suffix != ".csv" and tabs) else ","


def _read(content: Content, name: str, options: ReadOptions) -> Reading:
    delimiter = _delimiter(content)
    reading = Reading("csv" if delimiter == "," else "tsv")
    try:
        rows = list(csv.reader(io.StringIO(content.text), delimiter=delimiter))
    except csv.Error as exc:
        reading.problems.append(f"not valid CSV ({exc})")
        return reading
    first = next((k for k, r in enumerate(rows) if any(c.strip() for c in r)), None)
    columns, width, start = (0, 1), 2, 0
    if first is not None:
        header = [c.strip().lower() for c in rows[first]]
        samples = [c for c in SAMPLE_ALIASES if c in header]
        labels = [c for c in LABEL_ALIASES if c in header]
        if options.control is not None and options.control.lower() in header:
            labels = [options.control.lower()]
        if samples or labels:
            if samples[:1] == ["tavaal_id"]:
                samples = samples[:1]
            for found, aliases, what, does in ((samples, SAMPLE_ALIASES, "sample", "name the sample"),
                                               (labels, LABEL_ALIASES, "label", "hold the label")):
                if len(found) != 1:
                    problem = (f"no {what} column (one of {', '.join(aliases)})" if not found
                               else f"several columns could {does} ({', '.join(found)}): ambiguous")
                    reading.problems.append(f"line {first + 1} (header {','.join(rows[first])!r}): {problem}; "
                                            "rename or remove columns")
                    return reading
            columns, width, start = (header.index(samples[0]), header.index(labels[0])), len(header), first + 1
            reading.columns = {"sample": rows[first][columns[0]].strip(), "label": rows[first][columns[1]].strip()}
    expected = "sample,label" if width == 2 and start == 0 else "as the header"
    for number, row in enumerate(rows[start:], start=start + 1):
        if not any(c.strip() for c in row):
            continue
        if len(row) != width:
            reading.problems.append(f"line {number}: expected {width} fields ({expected}), got {len(row)}: "
                                    f"{delimiter.join(row)!r}")
            continue
        ident, label = normalise_sample_id(row[columns[0]]), row[columns[1]].strip()
        if not ident:
            reading.problems.append(f"line {number}: empty id: {delimiter.join(row)!r}")
            continue
        if not label:
            reading.unannotated.append(TaskRef(ident, None, f"line {number}"))
            continue
        reading.answers.append(LabelEntry(f"line {number}", ident, label))
    return reading


PLAIN_CSV = register_format(LabelFormat(
    "csv", "CSV/TSV 'id,label' lines (optional header; sample column id/filename/file/path/image, label column "
    "label/class/category)", lambda content: not content.looks_like_json, _read, fallback=True))


# ----------------------------------------------------------------------------------- writing
def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def _csv_text(header: Sequence, rows: Iterable[Sequence]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def to_label_csv(ids: Sequence[str], scores: Sequence[Optional[float]],
                 columns: Optional[Mapping[str, Sequence]] = None) -> str:
    """``rank,id,score[,<columns>...]`` lines, rank 0 = most informative; an empty cell for a
    missing score (``random``) or value. ``columns``: extra per-sample columns (e.g.
    ``predicted``, ``probability``), never named like a label alias (they would read back as
    the label)."""
    columns = dict(columns or {})
    clash = [c for c in columns if c.lower() in LABEL_ALIASES + SAMPLE_ALIASES + ("rank", "score")]
    if clash:
        raise ValueError(f"to_label.csv columns {clash} collide with the sample/label/rank/score columns")
    for name, values in columns.items():
        if len(values) != len(ids):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(ids)} ids")
    rows = ([rank, ident, _cell(score), *(_cell(v[rank]) for v in columns.values())]
            for rank, (ident, score) in enumerate(zip(ids, scores)))
    return _csv_text(["rank", "id", "score", *columns], rows)


def labels_csv(labels: Dict[str, str]) -> str:
    """All labels as ``id,label`` CSV (what the plain CSV format reads back)."""
    return _csv_text(["id", "label"], labels.items())
