"""The disagreement policy every format shares: several answers for one sample -> one label.

``refuse`` (the default): a sample whose answers differ is refused, listing its tasks and
answers. ``latest``: the answer with the newest time (``LabelEntry.time``) when every answer of
the sample has one, else the last in file order. ``majority``: the most frequent label; a tie
is refused (naming ``latest`` as the way out). Identical answers are never a disagreement.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List

from .entries import LabelEntry, ParsedLabels, Reading
from .errors import LabelFileError

__all__ = ["DISAGREEMENT_POLICIES", "DEFAULT_POLICY", "check_policy", "resolve"]

DISAGREEMENT_POLICIES = ("refuse", "latest", "majority")
DEFAULT_POLICY = "refuse"


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`DISAGREEMENT_POLICIES`, else :class:`LabelFileError`."""
    if policy not in DISAGREEMENT_POLICIES:
        raise LabelFileError(f"--on-disagreement {policy!r} is not a policy; choose from "
                             f"{', '.join(DISAGREEMENT_POLICIES)}")
    return policy


def _latest(answers: List[LabelEntry]) -> LabelEntry:
    if all(a.time for a in answers):
        return max(enumerate(answers), key=lambda ka: (ka[1].time, ka[0]))[1]
    return answers[-1]


def resolve(reading: Reading, name: str, policy: str = DEFAULT_POLICY) -> ParsedLabels:
    """One entry per sample from ``reading`` (file order of each sample's first answer).

    Raises :class:`LabelFileError` listing every problem line of the reading, or (``refuse``,
    or a ``majority`` tie) every sample whose answers disagree. A sample answered somewhere is
    neither skipped nor unannotated, whatever its other tasks say."""
    check_policy(policy)
    if reading.problems:
        raise LabelFileError(f"labels file {name} cannot be used ({reading.format})", reading.problems)
    by_sample: Dict[str, List[LabelEntry]] = {}
    for answer in reading.answers:
        by_sample.setdefault(answer.id, []).append(answer)
    entries: List[LabelEntry] = []
    resolved: List[str] = []
    conflicts: List[str] = []
    for ident, answers in by_sample.items():
        labels = Counter(a.label for a in answers)
        if len(labels) == 1:
            entries.append(answers[-1] if policy == "latest" else answers[0])
            continue
        listing = ", ".join(a.describe() for a in answers)
        if policy == "refuse":
            conflicts.append(f"sample {ident}: {listing}")
            continue
        if policy == "latest":
            chosen = _latest(answers)
        else:
            (top, n), *rest = labels.most_common()
            if rest and rest[0][1] == n:
                conflicts.append(f"sample {ident}: no majority ({listing})")
                continue
            chosen = next(a for a in answers if a.label == top)
        entries.append(chosen)
        resolved.append(f"sample {ident}: {chosen.label!r} by {policy} of {listing}")
    if conflicts:
        hint = ("--on-disagreement latest takes the newest answer" if policy == "majority"
                else "--on-disagreement latest or majority settles them")
        raise LabelFileError(f"labels file {name}: {len(conflicts)} sample(s) have disagreeing answers; nothing was "
                             f"merged ({hint})", conflicts)
    answered = set(by_sample)
    skipped = [t for t in reading.skipped if t.id not in answered]
    unannotated = [t for t in reading.unannotated if t.id not in answered and t.id not in {s.id for s in skipped}]
    warnings = list(reading.warnings)
    for refs, what in ((skipped, "task(s) were skipped by the annotators (they stay out for labeling)"),
                       (unannotated, "task(s) or line(s) have no label yet (left out)")):
        if refs:
            warnings.append(f"{len(refs)} {what}: " + "; ".join(t.describe() for t in refs[:20])
                            + (" ..." if len(refs) > 20 else ""))
    return ParsedLabels(name, reading.format, entries, skipped, unannotated, warnings, dict(reading.columns), resolved)
