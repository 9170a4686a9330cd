"""The held-out labeled samples of a work directory: drawn at ``init``, never trained on, the
accuracy estimate of every cycle."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
from scipy.stats import binomtest

from .errors import LoopError

__all__ = ["DEFAULT_HOLDOUT", "MIN_HOLDOUT", "draw_holdout", "holdout_ids", "wilson_interval", "accuracy_text"]

DEFAULT_HOLDOUT = 0.1
"""Default held-out part of the initial labeled set (a fraction; an int is a count)."""
MIN_HOLDOUT = 50
"""Below this many held-out labels the accuracy estimate is flagged as unreliable."""


def holdout_ids(meta: Dict[str, Any], state: Dict[str, Any]) -> Set[str]:
    """The held-out ids: drawn at init (``workdir.json``) plus every audit sample of a batch
    (``select --audit``; uniformly random, so they keep the estimate unbiased). Only labeled
    ones are ever evaluated."""
    audit = {i for b in state["batches"] for i in b.get("audit", [])}
    return set(meta["holdout"]) | audit


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> Tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / total`` (scipy's
    ``binomtest(...).proportion_ci(method="wilson")``); (0, 1) when ``total`` is 0."""
    if total <= 0:
        return 0.0, 1.0
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_text(accuracy: Optional[float], n: int, metric: str = "accuracy", warn: bool = True) -> str:
    """``'62.50% [40.9, 80.0] (95% Wilson) on 16 held-out labels; under 50: a rough estimate'``
    (mIoU: no interval, it is not a proportion of samples; ``warn``: add the small-holdout remark)."""
    if accuracy is None:
        return "n/a (no holdout)"
    if metric == "miou":
        text = f"{100 * accuracy:.2f}% on {n} held-out images"
    else:
        lo, hi = wilson_interval(int(round(accuracy * n)), n)
        text = f"{100 * accuracy:.2f}% [{100 * lo:.1f}, {100 * hi:.1f}] (95% Wilson interval) on {n} held-out labels"
    if warn and n < MIN_HOLDOUT:
        text += (f"; only {n} held out (< {MIN_HOLDOUT}): a rough estimate -- tavaal select --audit K adds random "
                 "samples that join the holdout once labeled")
    return text


def draw_holdout(ids: List[str], holdout, seed: int) -> List[str]:
    """A seeded random part of ``ids`` held out of training: ``holdout`` is a count (int) or a
    fraction in [0, 1) (float; default :data:`DEFAULT_HOLDOUT`). Raises :class:`LoopError`
    for a negative, too large or non-numeric ``holdout``."""
    if holdout is None:
        holdout = DEFAULT_HOLDOUT
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float, np.integer, np.floating)) or holdout < 0:
        raise LoopError(f"--holdout must be a count >= 0 or a fraction in [0, 1), got {holdout!r}")
    if isinstance(holdout, (float, np.floating)):
        if holdout >= 1:
            raise LoopError(f"--holdout as a fraction must be < 1 (give an integer for a count), got {holdout}")
        count = int(np.floor(holdout * len(ids)))
    else:
        count = int(holdout)
    if count > len(ids):
        raise LoopError(f"--holdout {count} is larger than the {len(ids)} labeled samples")
    if count == 0:
        return []
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x401D]))
    picks = rng.choice(len(ids), size=count, replace=False)
    return [ids[int(k)] for k in np.sort(picks)]

