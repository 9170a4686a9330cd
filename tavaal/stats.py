"""Does a method beat random? Paired comparisons over trials, with Student-t intervals.

Definitions (every run's ``summary.csv`` and end-of-run table use them):

* **accuracy per cycle**: mean (and sample standard deviation) over trials of the test
  accuracy at one labeled-set size.
* **paired difference to the baseline** (random): for each trial that both methods completed
  at that labeled size, ``accuracy(method) - accuracy(baseline)`` of the *same* trial (same
  initial set, same cycle-0 models, same seeds: see :mod:`tavaal.experiment`); mean over those
  trials with a two-sided 95% Student-t confidence interval ``mean +- t_{0.975, n-1} * s / sqrt(n)``
  (s: sample standard deviation, n: number of paired trials; no interval for n < 2).
* **AUBC** (area under the budget curve) of one trial: the trapezoid integral of accuracy over
  the number of labeled samples, divided by the labeled range ``max(labeled) - min(labeled)``,
  i.e. the mean accuracy over the budget axis, in [0, 1]. With a single labeled size it is
  that accuracy. The AUBC difference to the baseline is computed per trial over the labeled
  sizes both methods reached in that trial, then summarised like the per-cycle differences.
* **verdict**: ``better`` only where the whole interval lies above 0, ``worse`` where it lies
  below 0, ``n.s.`` (not shown) otherwise, including when fewer than 2 trials are paired.
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

__all__ = ["Interval", "t_interval", "aubc", "verdict", "summarize", "write_summary", "format_table",
           "interval_text", "SUMMARY_FIELDS"]

SUMMARY_FIELDS = ["method", "cycle", "labeled", "trials", "accuracy_mean", "accuracy_std", "accuracy_low",
                  "accuracy_high", "paired_trials", "diff_mean", "diff_low", "diff_high", "verdict"]
"""Columns of ``summary.csv``. One row per (method, cycle), then one row per method with
``cycle == "AUBC"`` (accuracy_* are then the AUBC, diff_* the paired AUBC difference)."""


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a two-sided Student-t confidence interval [low, high]
    (NaN bounds for n < 2; NaN mean for n = 0) and the sample standard deviation (NaN for n < 2)."""

    mean: float
    low: float
    high: float
    std: float
    n: int

    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0.0 or self.high < 0.0)


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Mean of ``values`` with the Student-t interval ``mean +- t_{(1+c)/2, n-1} s / sqrt(n)``.

    Raises ValueError for a confidence outside (0, 1) or non-finite values.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(list(values), dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"t_interval got non-finite values: {x.tolist()}")
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    from scipy.stats import t

    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2.0, n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, std, n)


def aubc(labeled: Sequence[float], accuracy: Sequence[float]) -> float:
    """Normalised area under the budget curve: trapezoid of ``accuracy`` over ``labeled``
    divided by ``max(labeled) - min(labeled)`` (points are sorted by labeled size first).
    One point: its accuracy. Raises ValueError for empty, mismatched or repeated sizes."""
    x = np.asarray(labeled, dtype=np.float64)
    y = np.asarray(accuracy, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"aubc needs two equal-length non-empty 1-D sequences, got {x.shape} and {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) == 0):
        raise ValueError(f"aubc got a labeled size twice: {x.tolist()}")
    if len(x) == 1:
        return float(y[0])
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def verdict(interval: Interval) -> str:
    """"better" / "worse" when the interval excludes 0 on that side, else "n.s."."""
    if not interval.excludes_zero():
        return "n.s."
    return "better" if interval.low > 0.0 else "worse"


def summarize(records: Iterable[Dict], baseline: str = "random", confidence: float = 0.95,
              methods: Optional[Sequence[str]] = None) -> List[Dict]:
    """Rows of :data:`SUMMARY_FIELDS` from metric records (dicts with method, trial, cycle,
    labeled, accuracy). ``methods`` fixes the row order (default: order of appearance).
    Without the baseline among the records the diff columns are NaN and the verdict empty."""
    records = list(records)
    curves: Dict[str, Dict[int, Dict[int, float]]] = defaultdict(lambda: defaultdict(dict))  # [method][trial][labeled]
    for r in records:
        curves[r["method"]][int(r["trial"])][int(r["labeled"])] = float(r["accuracy"])
    cycle_of = {(r["method"], int(r["labeled"])): int(r["cycle"]) for r in records}
    order = list(methods) if methods is not None else list(dict.fromkeys(r["method"] for r in records))
    order = [m for m in order if m in curves]
    base = curves.get(baseline)
    rows: List[Dict] = []
    aubc_rows: List[Dict] = []
    for method in order:
        trials = curves[method]
        sizes = sorted({size for curve in trials.values() for size in curve})
        for size in sizes:
            values = [curve[size] for curve in trials.values() if size in curve]
            acc = t_interval(values, confidence)
            row = {"method": method, "cycle": cycle_of[(method, size)], "labeled": size, "trials": acc.n,
                   "accuracy_mean": acc.mean, "accuracy_std": acc.std, "accuracy_low": acc.low,
                   "accuracy_high": acc.high}
            row.update(_paired(method, baseline, base, trials,
                               lambda mine, theirs: (mine[size] - theirs[size]) if size in mine and size in theirs
                               else None, confidence))
            rows.append(row)
        per_trial = [aubc(sorted(curve), [curve[s] for s in sorted(curve)]) for curve in trials.values() if curve]
        area = t_interval(per_trial, confidence)
        row = {"method": method, "cycle": "AUBC", "labeled": "", "trials": area.n, "accuracy_mean": area.mean,
               "accuracy_std": area.std, "accuracy_low": area.low, "accuracy_high": area.high}
        row.update(_paired(method, baseline, base, trials, _aubc_difference, confidence))
        aubc_rows.append(row)
    return rows + aubc_rows


def _aubc_difference(mine: Dict[int, float], theirs: Dict[int, float]) -> Optional[float]:
    common = sorted(set(mine) & set(theirs))
    if not common:
        return None
    return aubc(common, [mine[s] for s in common]) - aubc(common, [theirs[s] for s in common])


def _paired(method, baseline, base, trials, difference, confidence) -> Dict:
    if base is None:
        return {"paired_trials": 0, "diff_mean": math.nan, "diff_low": math.nan, "diff_high": math.nan,
                "verdict": ""}
    if method == baseline:
        return {"paired_trials": len(trials), "diff_mean": 0.0, "diff_low": math.nan, "diff_high": math.nan,
                "verdict": "baseline"}
    diffs = [d for t, curve in trials.items() if t in base
             for d in [difference(curve, base[t])] if d is not None]
    interval = t_interval(diffs, confidence)
    return {"paired_trials": interval.n, "diff_mean": interval.mean, "diff_low": interval.low,
            "diff_high": interval.high, "verdict": verdict(interval)}


def write_summary(path: Path, rows: Sequence[Dict]) -> Path:
    """Write ``rows`` (from :func:`summarize`) as CSV with :data:`SUMMARY_FIELDS`; NaN as empty."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else
                                 (f"{v:.6f}" if isinstance(v, float) else v)) for k, v in row.items()})
    return path


def _pct(value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def interval_text(mean: float, low: float, high: float, signed: bool = False) -> str:
    """``"mean [low, high]"`` in percent with one decimal (``signed``: with a sign), "-" for a
    value that is None or NaN."""
    return f"{_pct(mean, signed)} [{_pct(low, signed)}, {_pct(high, signed)}]"


def _comparison(row: Dict, baseline: str) -> str:
    """The difference-to-baseline cell (24 wide) and the verdict of a :func:`summarize` row."""
    special = {"baseline": "(baseline)", "": f"(no {baseline})"}
    if row["verdict"] in special:
        return f"{special[row['verdict']]:<24} "
    return f"{interval_text(row['diff_mean'], row['diff_low'], row['diff_high'], signed=True):<24} {row['verdict']}"


def format_table(rows: Sequence[Dict], baseline: str = "random", metric: str = "accuracy") -> str:
    """The end-of-run table (percentages): per cycle mean ``metric`` +- std and the paired
    difference to the baseline with its 95% interval, then AUBC per method. ``metric`` names
    what the records' accuracy field measures ("accuracy", or "mIoU" for segmentation)."""
    cycle_rows = [r for r in rows if r["cycle"] != "AUBC"]
    aubc_rows = [r for r in rows if r["cycle"] == "AUBC"]
    lines = [f"{metric} (%) per cycle; paired difference to {baseline} in points, 95% t-interval over trials",
             f"{'method':<10} {'labeled':>7} {'trials':>6} {metric:>13}  {'diff vs ' + baseline:<24} verdict"]
    for r in cycle_rows:
        acc = f"{_pct(r['accuracy_mean'])} ± {_pct(r['accuracy_std'])}"
        lines.append(f"{r['method']:<10} {r['labeled']:>7} {r['trials']:>6} {acc:>13}  {_comparison(r, baseline)}")
    lines += ["", f"AUBC (normalised area under the {metric}-vs-labels curve, %) with 95% t-interval",
              f"{'method':<10} {'trials':>6} {'AUBC [95% CI]':>20}  {'diff vs ' + baseline:<24} verdict"]
    for r in aubc_rows:
        area = interval_text(r["accuracy_mean"], r["accuracy_low"], r["accuracy_high"])
        lines.append(f"{r['method']:<10} {r['trials']:>6} {area:>20}  {_comparison(r, baseline)}")
    better = [r["method"] for r in aubc_rows if r["verdict"] == "better"]
    if any(r["verdict"] not in ("", "baseline") for r in aubc_rows):
        lines.append(f"beats {baseline} on AUBC (interval excludes 0): {', '.join(better) if better else 'none'}")
    return "\n".join(lines)
