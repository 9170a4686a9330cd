"""Segmentation metrics: per-class and mean IoU from a confusion matrix, pixel accuracy.

Segmentation conventions (Cityscapes / DRN evaluation):

* pixels whose target is ``ignore_index`` (255) are left out entirely -- whatever is
  predicted there counts nowhere;
* the confusion matrix ``cm[t, p]`` counts pixels of true class t predicted as p;
* IoU of class c = TP / (TP + FP + FN) = ``cm[c, c] / (row_c + col_c - cm[c, c])``;
* a class that appears neither in the targets nor in the predictions has no IoU (NaN) and
  is *excluded* from the mean; a class that is predicted but absent from the targets has
  IoU 0 and counts (it is a false positive everywhere);
* mean IoU = mean over the classes with an IoU (NaN when there is none, e.g. an empty or
  fully ignored evaluation set).

Accumulate over a whole test set with :class:`SegmentationMeter` (one confusion matrix over
every pixel, not a mean of per-image IoUs).
"""
from __future__ import annotations

import csv
import io
from typing import Dict

import numpy as np
import torch

from .losses import IGNORE_INDEX
from .rundir import atomic_write_bytes

__all__ = ["confusion_matrix", "iou_per_class", "mean_iou", "pixel_accuracy", "SegmentationMeter", "metric_record",
           "write_per_class_iou"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """(K, K) int64 counts ``cm[true, predicted]`` over the pixels whose target is not ignored.

    Args:
        pred: int tensor of predicted classes, any shape (e.g. (B, H, W)).
        target: int tensor of the same shape with classes in [0, K) or ``ignore_index``.
        num_classes: K.

    Raises:
        ValueError: shapes differ, or a target/prediction outside [0, K) (targets other than
        ``ignore_index``).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    k = int(num_classes)
    if k < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    t = target.reshape(-1).to(torch.int64)
    p = pred.reshape(-1).to(torch.int64)
    keep = t != ignore_index
    t, p = t[keep], p[keep]
    if t.numel():
        if int(t.min()) < 0 or int(t.max()) >= k:
            bad = t[(t < 0) | (t >= k)]
            raise ValueError(f"target values must be in [0, {k}) or {ignore_index} (ignore); found {int(bad[0])}")
        if int(p.min()) < 0 or int(p.max()) >= k:
            raise ValueError(f"predictions must be in [0, {k}), found range [{int(p.min())}, {int(p.max())}]")
    return torch.bincount(t * k + p, minlength=k * k).reshape(k, k).cpu()


def iou_per_class(cm) -> np.ndarray:
    """(K,) float64 IoU of every class from a (K, K) confusion matrix; NaN where the class is
    absent from both targets and predictions."""
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    return np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)


def mean_iou(cm) -> float:
    """Mean of :func:`iou_per_class` over the classes that have one (NaN if none has)."""
    iou = iou_per_class(cm)
    present = iou[~np.isnan(iou)]
    return float(present.mean()) if present.size else float("nan")


def pixel_accuracy(cm) -> float:
    """Fraction of non-ignored pixels predicted correctly (NaN without pixels)."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else float("nan")


class SegmentationMeter:
    """Accumulates one confusion matrix over batches.

    ``update(output, target)``: ``output`` is either logits (B, K, H, W) (argmax over K) or
    predicted classes (B, H, W); ``target`` (B, H, W). ``compute()`` returns
    ``{"miou", "pixel_accuracy", "iou": [K floats, NaN for absent classes], "pixels"}``.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.cm = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        pred = output.argmax(1) if output.dim() == target.dim() + 1 else output
        self.cm += confusion_matrix(pred.detach(), target.detach(), self.num_classes, self.ignore_index)

    def compute(self) -> Dict[str, object]:
        cm = self.cm.numpy()
        return {"miou": mean_iou(cm), "pixel_accuracy": pixel_accuracy(cm),
                "iou": [float(v) for v in iou_per_class(cm)], "pixels": int(self.cm.sum())}


def _finite_or_none(value: float):
    return None if value is None or not np.isfinite(value) else float(value)


def metric_record(metrics: Dict[str, object]) -> Dict[str, object]:
    """The fields a cycle record gets from the test metrics of ``evaluate_task``.

    ``"accuracy"`` is the cycle's *primary* test metric (what curves, statistics and plots
    read): top-1 accuracy for classifiers, the mean IoU for segmentation. Segmentation records
    add ``"metric": "miou"``, ``"miou"``, ``"pixel_accuracy"`` and ``"iou"`` (per-class IoU in
    class order; None for a class absent from both the test masks and the predictions)."""
    if "miou" not in metrics:
        return {"accuracy": float(metrics["accuracy"])}
    miou = _finite_or_none(metrics["miou"])
    return {"accuracy": 0.0 if miou is None else miou, "metric": "miou", "miou": miou,
            "pixel_accuracy": _finite_or_none(metrics["pixel_accuracy"]),
            "iou": [_finite_or_none(v) for v in metrics["iou"]]}


def write_per_class_iou(path, records, classes=None) -> bool:
    """Write ``per_class_iou.csv`` (method, trial, cycle, labeled, miou, then one column per
    class named by ``classes``; empty = class absent) from the records that carry ``"iou"``;
    returns False (and writes nothing) if none does."""
    rows = [r for r in records if isinstance(r.get("iou"), list)]
    if not rows:
        return False
    k = len(rows[0]["iou"])
    names = list(classes) if classes is not None and len(classes) == k else [f"class_{i}" for i in range(k)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["method", "trial", "cycle", "labeled", "miou"] + names)
    for r in rows:
        writer.writerow([r["method"], r["trial"], r["cycle"], r["labeled"], r.get("miou")]
                        + ["" if v is None else f"{v:.6f}" for v in r["iou"]])
    atomic_write_bytes(path, out.getvalue().encode())
    return True
