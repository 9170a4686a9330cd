"""The registry of label-file formats and the one way to read a label file.

A format is one :class:`LabelFormat` registered with :func:`register_format`. Exactly one
format must claim a file (:func:`detect_format`: a file's format is never guessed); it reads the
file and the shared disagreement policy (:mod:`.policy`) makes one label per sample.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .entries import ParsedLabels, Reading, SampleLocations
from .errors import LabelFileError
from .policy import DEFAULT_POLICY, check_policy, resolve

__all__ = ["Content", "ReadOptions", "LabelFormat", "register_format", "unregister_format", "label_formats",
           "detect_format", "read_label_file", "parse_labels"]


class Content:
    """A label file's text and what the sniffers ask about it (parsed once, on demand)."""

    NOT_JSON = object()

    def __init__(self, text: str, suffix: str = ""):
        self.text = text
        self.suffix = suffix.lower()

    @property
    def looks_like_json(self) -> bool:
        return self.text.lstrip()[:1] in ("[", "{")

    @cached_property
    def json(self) -> Any:
        """The parsed JSON value, or :attr:`NOT_JSON` when the text is not JSON."""
        if not self.looks_like_json:
            return self.NOT_JSON
        try:
            return json.loads(self.text)
        except json.JSONDecodeError:
            return self.NOT_JSON

    @cached_property
    def first_line(self) -> str:
        return next((line for line in self.text.splitlines() if line.strip()), "")


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need beyond the text: ``locations`` (file references -> sample ids)
    and ``control`` (the name of the field / column holding the label, e.g. Label Studio's
    Choices control; None: the one field that can be it)."""

    locations: SampleLocations = SampleLocations()
    control: Optional[str] = None


@dataclass(frozen=True)
class LabelFormat:
    """One annotation format. ``sniff(content) -> bool`` says whether the content has this
    format's structure (decided from the content, never from the file name alone);
    ``read(content, name, options) -> Reading`` reads it (problems collected, not raised).
    A ``fallback`` format (plain delimited text) is asked only when no other format claims
    the content."""

    name: str
    description: str
    sniff: Callable[[Content], bool]
    read: Callable[[Content, str, ReadOptions], Reading]
    fallback: bool = False


_FORMATS: Dict[str, LabelFormat] = {}


def register_format(fmt: LabelFormat) -> LabelFormat:
    """Add ``fmt`` to the registry (a new annotation tool is one module that calls this).
    Raises ValueError for a name already registered."""
    if fmt.name in _FORMATS:
        raise ValueError(f"label format {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> LabelFormat:
    """Remove and return the format ``name`` (KeyError if it is not registered)."""
    return _FORMATS.pop(name)


def label_formats() -> Dict[str, LabelFormat]:
    """Registered formats by name (registration order)."""
    return dict(_FORMATS)


def detect_format(content: Content, name: str = "<labels>") -> LabelFormat:
    """The one registered format that claims ``content``; :class:`LabelFileError` if none or
    several do."""
    claims: List[LabelFormat] = [f for f in _FORMATS.values() if not f.fallback and f.sniff(content)]
    if not claims:
        claims = [f for f in _FORMATS.values() if f.fallback and f.sniff(content)]
    if len(claims) == 1:
        return claims[0]
    if claims:
        raise LabelFileError(f"labels file {name} is ambiguous: it reads as {' and as '.join(f.name for f in claims)}; "
                             "refusing to guess (give format=... / fix the file)")
    if content.looks_like_json and content.json is Content.NOT_JSON:
        try:
            json.loads(content.text)
        except json.JSONDecodeError as exc:
            raise LabelFileError(f"labels file {name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    known = "; ".join(f"{f.name}: {f.description}" for f in _FORMATS.values())
    raise LabelFileError(f"labels file {name} is in no known label format (known: {known})")


def parse_labels(text: str, name: str = "<labels>", *, suffix: str = "", policy: str = DEFAULT_POLICY,
                 locations: Optional[SampleLocations] = None, control: Optional[str] = None,
                 format: Optional[str] = None) -> ParsedLabels:
    """``text`` (a label file's content) -> :class:`ParsedLabels`: format detected (or ``format``
    by name), read (``locations``, ``control``: see :class:`ReadOptions`), one label per sample
    by the disagreement ``policy`` ("refuse", "latest", "majority"). Raises :class:`LabelFileError`
    for an unknown, ambiguous or malformed file, for disagreements the policy refuses, and for a
    file holding no task or line at all."""
    check_policy(policy)
    if format is not None and format not in _FORMATS:
        raise LabelFileError(f"unknown label format {format!r}; known: {', '.join(_FORMATS)}")
    content = Content(text, suffix)
    fmt = _FORMATS[format] if format is not None else detect_format(content, name)
    reading = fmt.read(content, name, ReadOptions(locations or SampleLocations(), control))
    parsed = resolve(reading, name, policy)
    if not (parsed.entries or parsed.skipped or parsed.unannotated):
        hint = "; ".join(parsed.warnings[:3])
        raise LabelFileError(f"labels file {name} holds no labels" + (f" ({hint})" if hint else ""))
    return parsed


def read_label_file(path, *, policy: str = DEFAULT_POLICY, locations: Optional[SampleLocations] = None,
                    control: Optional[str] = None, format: Optional[str] = None) -> ParsedLabels:
    """Read the label file at ``path`` (UTF-8, a BOM allowed) with :func:`parse_labels`.
    Raises :class:`LabelFileError` for a missing or unreadable file too."""
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"labels file {path} does not exist (give a CSV 'id,label' or a Label Studio export: "
                             "JSON, JSON_MIN, CSV or TSV)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"labels file {path}: cannot read it as UTF-8 text ({exc})") from None
    return parse_labels(text, str(path), suffix=path.suffix, policy=policy, locations=locations, control=control,
                        format=format)
