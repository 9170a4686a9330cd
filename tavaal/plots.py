"""Figures of a run: accuracy curves (paper Figs. 3, 11) and the 2-D selection scatter (Fig. 1)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .methods import get_method
from .stats import summarize


def method_style(method: str) -> Dict[str, str]:
    """Matplotlib keyword arguments that show ``method``: its registry label and colour (an
    unregistered name is shown as itself, in the next colour of the cycle)."""
    try:
        m = get_method(method)
    except ValueError:
        return {"label": method}
    return {"label": m.label, **({"color": m.color} if m.color else {})}


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_label(records: Sequence[Dict]) -> str:
    """What the records' ``"accuracy"`` field measures: "mIoU" for segmentation runs (records
    with ``"metric": "miou"``), else "accuracy"."""
    return "mIoU" if any(r.get("metric") == "miou" for r in records) else "accuracy"


def plot_accuracy(records: Sequence[Dict], out: Path, title: str = "", baseline: str = "random") -> List[Path]:
    """accuracy.png (mean +- std over trials) and, when the baseline ran, improvement.png: the
    paired difference to the baseline per labeled size with its 95% Student-t interval
    (:mod:`tavaal.stats`; no band where fewer than 2 trials are paired)."""
    plt = _matplotlib()
    table: Dict[str, Dict[int, List[float]]] = defaultdict(lambda: defaultdict(list))  # method -> labeled -> accuracies
    for r in records:
        table[r["method"]][int(r["labeled"])].append(float(r["accuracy"]))
    metric = metric_label(records)
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, by_size in table.items():
        sizes = np.array(sorted(by_size))
        mean = np.array([np.mean(by_size[s]) for s in sizes]) * 100
        std = np.array([np.std(by_size[s]) for s in sizes]) * 100
        line, = ax.plot(sizes, mean, marker="o", **method_style(method))
        ax.fill_between(sizes, mean - std, mean + std, alpha=0.2, color=line.get_color())
    written.append(_write_curves(plt, fig, ax, Path(out) / "accuracy.png", f"test {metric} (%)",
                                 title or f"{metric} (mean ± std over trials)"))

    if baseline in table and len(table) > 1:
        rows = [r for r in summarize(records, baseline=baseline) if r["cycle"] != "AUBC"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for method in table:
            if method == baseline:
                continue
            mine = [r for r in rows if r["method"] == method and r["paired_trials"] > 0]
            if not mine:
                continue
            sizes = np.array([r["labeled"] for r in mine])
            mean, low, high = (np.array([r[k] for r in mine]) * 100 for k in ("diff_mean", "diff_low", "diff_high"))
            line, = ax.plot(sizes, mean, marker="o", **method_style(method))
            ax.fill_between(sizes, low, high, alpha=0.2, color=line.get_color())
        ax.axhline(0.0, color="k", lw=0.8, ls="--", label=method_style(baseline)["label"])
        ax.text(0.01, 0.01, "bands: paired 95% t-interval over trials", transform=ax.transAxes, fontsize=7,
                alpha=0.7)
        written.append(_write_curves(plt, fig, ax, Path(out) / "improvement.png", f"{metric} - {baseline} "
                                     "(percentage points)", title or f"improvement over {baseline}"))
    return written


def _write_curves(plt, fig, ax, path: Path, ylabel: str, title: str) -> Path:
    """Axis labels (x: labeled samples), grid and legend on ``ax``, then :func:`_save`."""
    ax.set_xlabel("number of labeled samples")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    """``fig`` written to ``path`` (PNG, 120 dpi) and closed."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_selection_scatter(points: np.ndarray, targets: np.ndarray, selections: Dict[str, Dict[str, np.ndarray]],
                           out: Path, cycle: Optional[int] = None) -> Path:
    """Paper Fig. 1: the 2-D pool coloured by class, labeled points, and each method's picks (x).

    selections: method -> {"labeled": indices, "selected": indices}.
    """
    plt = _matplotlib()
    methods = list(selections)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4), squeeze=False)
    colors = np.where(np.asarray(targets) == 0, "tab:red", "tab:blue")
    for ax, method in zip(axes[0], methods):
        labeled, selected = selections[method]["labeled"], selections[method]["selected"]
        ax.scatter(points[:, 0], points[:, 1], c=colors, s=6, alpha=0.25, linewidths=0)
        ax.scatter(points[labeled, 0], points[labeled, 1], c=colors[labeled], s=18, edgecolors="k", linewidths=0.4)
        ax.scatter(points[selected, 0], points[selected, 1], marker="x", c="k", s=50, linewidths=1.6)
        ax.set_title(method_style(method)["label"] + (f" — stage {cycle + 1}" if cycle is not None else ""))
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(plt, fig, Path(out) / "selection_scatter.png")
