"""The class list of a work directory: fixed at ``init``, extended only on request.

A class's index (the task learner's output unit) is its position in the list, so indices never
change: ``--add-classes`` appends. Without ``--classes`` the list is the sorted set of labels
in the initial labels file, in natural order when every label is an integer ("2" < "10").
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

from .errors import LoopError

__all__ = ["parse_classes", "natural_order", "check_class_list"]


def natural_order(names: Iterable[str]) -> List[str]:
    """Distinct ``names`` sorted numerically when all are integers, else as strings."""
    names = sorted(set(names))
    try:
        return sorted(names, key=lambda n: int(n))
    except ValueError:
        return names


def parse_classes(text: Optional[str]) -> Optional[List[str]]:
    """``--classes a,b,c`` (or a file with one class per line via ``@FILE``) -> list; None if not given.
    Raises :class:`LoopError` for empty names or duplicates."""
    if text is None:
        return None
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
        except OSError as exc:
            raise LoopError(f"--classes {text}: cannot read the class file ({exc})") from None
    else:
        names = [n.strip() for n in text.split(",")]
    empty = [str(k) for k, n in enumerate(names) if not n]
    if empty:
        raise LoopError("--classes has empty class names at positions " + ", ".join(empty))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LoopError(f"--classes lists {', '.join(dup)} more than once")
    if len(names) < 2:
        raise LoopError(f"--classes needs at least 2 classes, got {names}")
    return names


def check_class_list(names: Sequence[str]) -> None:
    """LoopError unless ``names`` are at least 2 distinct class names."""
    if len(names) < 2 or len(set(names)) != len(names):
        raise LoopError(f"the class list needs >= 2 distinct names, got {names}")
