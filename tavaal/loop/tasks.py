"""What differs between a classification and a segmentation work directory: the task hooks.

A :class:`~tavaal.loop.Workdir` runs every command once for both; its task object
(:data:`CLASSIFICATION` or :data:`SEGMENTATION`, from ``workdir.json``'s ``task``; absent =
classification) supplies the parts that differ. Classification labels are class names from a
label file (stored in ``state.json``); segmentation labels are mask PNGs stored under
``WORKDIR/masks`` (``state.json`` keeps each id's stored mask path and its ``masks`` entry:
sha256 + pixels per class) and the class list is fixed by ``--classes`` (mask value i = class i).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch

from ..config import RunConfig
from ..cycle import CycleData
from ..data.defaults import build_augment
from ..data.imagefiles import parse_hw
from ..data.labelfiles import (DEFAULT_POLICY, LabelFileError, ParsedLabels, SampleLocations, labels_csv,
                               read_label_file)
from ..data.readers.segfolder import segmentation_augment
from ..losses import IGNORE_INDEX
from ..methods import check_dense
from ..data.sources import SourceDataset
from ..training import evaluate_task, predict
from ..training.recipe import crop_padding
from . import backend
from .classes import check_class_list, natural_order
from .errors import LoopError
from .holdout import accuracy_text
from .masks import check_mask_classes, read_mask_folder, stored_mask_path, write_masks
from .merge import ReadLabels, check_entries
from .state import MASKS_DIR, LABEL_STUDIO_TASKS_JSON

log = logging.getLogger("tavaal.loop")

__all__ = ["Task", "ClassificationTask", "SegmentationTask", "CLASSIFICATION", "SEGMENTATION",
           "task_of"]


def _read_label_file(labels, source, policy: str, locations: Optional[SampleLocations] = None) -> ParsedLabels:
    """The label file ``labels`` (a path, or already a :class:`ParsedLabels`) read through the
    label-file registry; file references are resolved by ``locations`` (default: against an
    image-folder pool)."""
    if isinstance(labels, ParsedLabels):
        return labels
    if locations is None and backend.is_image_folder(source):
        locations = SampleLocations(pool_root=str(source.path))
    try:
        return read_label_file(labels, policy=policy, locations=locations)
    except LabelFileError as exc:
        raise LoopError(exc.summary, exc.problems) from None


def _normalisation(meta: Dict[str, Any]) -> Tuple[List[float], List[float]]:
    """The pool's (mean, std); 0 / 1 per channel for a float pool (stored as None)."""
    channels = int(meta["input_shape"][0])
    return meta["mean"] or [0.0] * channels, meta["std"] or [1.0] * channels


@torch.no_grad()
def _logits(task_model, dataset, rows, batch_size: int, device) -> Optional[torch.Tensor]:
    """The task model's logits on ``rows`` of ``dataset`` (None for no rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return None
    task_model.eval()
    return predict(dataset, rows, backbone=task_model.backbone, outputs=("logits",), batch_size=batch_size,
                   device=device)["logits"]


class Task:
    """The hooks a work directory's task provides (see the module docstring)."""

    name: str
    unit: str       # what one sample is called in messages
    kept: str       # what of a labeled sample stays when its file leaves the pool
    item: str       # one offending entry of a label source in messages
    metric: str     # the holdout metric's name
    uses_recipe: bool  # without --preset, init takes the settings of tavaal.training.recipe
    cycle_fields: Tuple[str, ...]  # cycle-record fields in the status besides CYCLE_FIELDS
    header_format: str  # the status header after the work directory ({} = the method)
    returned_how: str   # how the annotators' work comes back (status ``next:``)
    returned_arg: str   # the argument of tavaal label in the status ``next:``

    # ----------------------------------------------------------------------- init
    def init_fields(self, *, classes, method, key, own_model: bool, crop_size, augment) -> Dict[str, Any]:
        """Check the task's init options (before anything is opened; ``own_model``: any of
        --model/--taps/--feature-layer/--weights given); the fields it adds to ``workdir.json``."""
        raise NotImplementedError

    def check_pool(self, source, pool, fields: Dict[str, Any]) -> None:
        """LoopError when the pool cannot hold this task's samples."""

    def read_initial(self, labels, source, classes: Optional[Sequence[str]], policy: str = DEFAULT_POLICY):
        """(class list, :class:`ReadLabels`) of the initial labels (``policy``: how disagreeing
        answers for one sample are settled, see :mod:`tavaal.data.labelfiles.policy`)."""
        raise NotImplementedError

    def describe(self, labels) -> str:
        """How messages name a label source (``labels file X`` / ``masks folder X``)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- label
    def read_returned(self, labels, source, state: Dict[str, Any], add_classes: bool,
                      policy: str = DEFAULT_POLICY, relabel: bool = False,
                      locations: Optional[SampleLocations] = None) -> ReadLabels:
        """The returned labels checked against ``state`` (``relabel``: accept changed labels;
        ``locations``: how file references map to sample ids)."""
        raise NotImplementedError

    def new_classes(self, new: Dict[str, str], classes: Sequence[str]) -> List[str]:
        """Classes the newly labeled ``new`` add to the class list."""
        return []

    def warn(self, read: ReadLabels, ids: Sequence[str], classes: Sequence[str], *, initial: bool) -> None:
        """Log what the labels ``ids`` of ``read`` teach nothing about."""

    def store(self, root: Path, read: ReadLabels, ids: Sequence[str]) -> None:
        """Write the label files of ``ids`` into the work directory (before the commit)."""

    def record(self, state: Dict[str, Any], read: ReadLabels, ids: Sequence[str]) -> None:
        """Task entries of ``ids`` in ``state`` besides ``labels`` / ``label_round``."""

    def labels_csv(self, labels: Dict[str, str]) -> str:
        """The text of ``labels.csv``."""
        return labels_csv(labels)

    # ----------------------------------------------------------------------- methods, cycles
    def check_method(self, method: Optional[str]) -> None:
        """LoopError for a method that cannot select for this task (None: nothing to check)."""

    def cycle_data(self, meta: Dict[str, Any], root: Path, source, rows: np.ndarray, ids: List[str],
                   state: Dict[str, Any], config: RunConfig, exclude: np.ndarray) -> CycleData:
        raise NotImplementedError

    def holdout_metrics(self, task_model, data: CycleData, rows: List[int], ids: List[str], state: Dict[str, Any],
                        config: RunConfig, device, root: Path) -> Dict[str, Any]:
        """Cycle-record fields of the estimate on the held-out rows (``holdout_accuracy``: None
        without a holdout)."""
        raise NotImplementedError

    def explain(self, models, source, rows, meta: Dict[str, Any], state: Dict[str, Any], config: RunConfig,
                device) -> Dict[str, List]:
        """Per-sample columns of what the task model thinks of ``rows`` (for the batch files)."""
        return {}

    def predicted_masks(self, models, source, rows, meta: Dict[str, Any], config: RunConfig,
                        device) -> List[np.ndarray]:
        """The task model's class-index map of each of ``rows`` (segmentation: uint8 (H, W);
        empty for tasks without one) -- pre-annotations for an annotation tool."""
        return []

    # ----------------------------------------------------------------------- status
    def label_counts(self, holdout: Set[str], state: Dict[str, Any]) -> Dict[str, Dict[str, int]]:
        raise NotImplementedError

    def returned_hint(self, root: Path, to_label: Path) -> str:
        """The ``next:`` text while samples are out for labeling."""
        return (f"send {to_label} (or {LABEL_STUDIO_TASKS_JSON}) to the annotators{self.returned_how}, then: "
                f"tavaal label {root} {self.returned_arg}")

    def summary_lines(self, s: Dict[str, Any]) -> List[str]:
        """The status lines of the labeled counts per class."""
        raise NotImplementedError

    def cycle_line(self, c: Dict[str, Any]) -> str:
        raise NotImplementedError


class ClassificationTask(Task):
    """Labels are class names from a label file (CSV ``id,label`` or a Label Studio export)."""

    name, unit, kept, item, metric = "classification", "sample", "labels", "line", "accuracy"
    uses_recipe, cycle_fields, header_format = True, (), "(method {})"
    returned_how, returned_arg = "", "RETURNED_LABELS.csv"

    def init_fields(self, *, classes, method, key, own_model: bool, crop_size, augment) -> Dict[str, Any]:
        if crop_size is not None or augment != "default":
            raise LoopError("--crop-size / --augment apply with --masks only")
        return {}

    def describe(self, labels) -> str:
        return f"labels file {labels.path if isinstance(labels, ParsedLabels) else labels}"

    def read_initial(self, labels, source, classes, policy=DEFAULT_POLICY):
        parsed = _read_label_file(labels, source, policy)
        class_list = list(classes) if classes is not None else natural_order(e.label for e in parsed.entries)
        if classes is not None:
            check_class_list(class_list)
        hint = "name it in --classes, or leave --classes out to take the classes of the labels file"
        return class_list, check_entries(parsed, source, {}, class_list, add_classes=False, add_hint=hint)

    def read_returned(self, labels, source, state, add_classes, policy=DEFAULT_POLICY, relabel=False,
                      locations=None) -> ReadLabels:
        parsed = _read_label_file(labels, source, policy, locations)
        return check_entries(parsed, source, state["labels"], list(state["classes"]), add_classes, relabel)

    def new_classes(self, new, classes) -> List[str]:
        return natural_order(c for c in new.values() if c not in classes)

    def warn(self, read, ids, classes, *, initial) -> None:
        if not initial:
            return
        seen = {read.labels[i] for i in ids}
        empty = [c for c in classes if c not in seen]
        if empty:
            log.warning("class(es) with no labeled sample yet: %s", ", ".join(empty))

    def cycle_data(self, meta, root, source, rows, ids, state, config, exclude) -> CycleData:
        """Class indices of ``ids``; ``config.augment`` ("none", "crop", "flip", "crop+flip") on
        image pools (random translation by 1/8 of the shorter side)."""
        classes = np.asarray(self._class_indices(state, ids), dtype=np.int64)
        shape = tuple(meta["input_shape"])
        spec = config.augment
        if len(shape) != 3 and spec != "none":
            raise LoopError(f"augment={spec!r} needs image samples; this pool holds vectors {list(shape)}: "
                            "tavaal train WORKDIR --set augment=none")
        augment = None if spec == "none" else build_augment(spec, "none", shape, *_normalisation(meta),
                                                             padding=crop_padding(shape), name="workdir")
        return CycleData(source, rows, classes, len(state["classes"]), mean=meta["mean"], std=meta["std"],
                         augment=augment, exclude=exclude, name="workdir")

    @staticmethod
    def _class_indices(state, ids) -> List[int]:
        index_of = {c: k for k, c in enumerate(state["classes"])}
        return [index_of[state["labels"][i]] for i in ids]

    def holdout_metrics(self, task_model, data, rows, ids, state, config, device, root) -> Dict[str, Any]:
        if not ids:
            return {"holdout_accuracy": None}
        logits = _logits(task_model, data.dataset(), rows, config.score_batch_size, device)
        classes = np.asarray(self._class_indices(state, ids))
        return {"holdout_accuracy": float((logits.argmax(1).numpy() == classes).mean())}

    def explain(self, models, source, rows, meta, state, config, device) -> Dict[str, List]:
        """``predicted`` class name and its softmax ``probability`` per row."""
        logits = _logits(models.task, SourceDataset(source, meta["mean"], meta["std"]), rows,
                         config.score_batch_size, device)
        if logits is None:
            return {}
        probs = torch.softmax(logits.float(), dim=1)
        best, index = probs.max(dim=1)
        classes = state["classes"]
        return {"predicted": [classes[int(k)] if int(k) < len(classes) else str(int(k)) for k in index],
                "probability": [round(float(v), 6) for v in best]}

    def label_counts(self, holdout, state) -> Dict[str, Dict[str, int]]:
        """class -> {"train": n, "holdout": n} labeled samples."""
        counts = {c: {"train": 0, "holdout": 0} for c in state["classes"]}
        for i, c in state["labels"].items():
            counts[c]["holdout" if i in holdout else "train"] += 1
        return counts

    def summary_lines(self, s) -> List[str]:
        lines = [f"labeled {s['labeled']} ({s['held_out']} held out for the accuracy estimate), "
                 f"{len(s['classes'])} classes:"]
        width = max(len(c) for c in s["classes"])
        for c, v in s["counts"].items():
            lines.append(f"  {c:<{width}}  {v['train'] + v['holdout']:>7}" + (f"  ({v['holdout']} held out)"
                                                                            if v["holdout"] else ""))
        return lines

    def cycle_line(self, c) -> str:
        acc = accuracy_text(c["holdout_accuracy"], c["holdout"] or 0, warn=False)
        return f"  cycle {c['cycle']:>2}  {c['method']:<8} trained on {c['trained_on']:>7}  holdout accuracy {acc}"


class SegmentationTask(Task):
    """Labels are masks (a folder of class-index PNGs named like the images; see
    :mod:`tavaal.loop.masks`). Training: the DRN task learner (``arch`` auto = drn-d-22), dense
    losses, per-image Ranker targets, paired crop + flip augmentation (``crop_size`` at init);
    the estimate is the mean IoU on the held-out images (``holdout_miou``, also in
    ``holdout_accuracy``). Selection: methods with a per-image form (not BADGE)."""

    name, unit, kept, item, metric = "segmentation", "image", "masks", "mask file", "miou"
    uses_recipe, cycle_fields, header_format = False, ("holdout_miou", "holdout_iou"), "(segmentation, method {})"
    returned_how = "; put the returned masks (PNG, class indices, named like the images) in a folder"
    returned_arg = "RETURNED_MASKS_DIR"

    def init_fields(self, *, classes, method, key, own_model: bool, crop_size, augment) -> Dict[str, Any]:
        if own_model or key is not None:
            raise LoopError("--model/--taps/--feature-layer/--weights/--key do not apply with --masks (segmentation "
                            "uses the built-in DRN: --arch drn-d-22 or drn-d-small)")
        check_mask_classes(classes)
        self.check_method(method)
        try:
            crop = parse_hw(crop_size)
            segmentation_augment(augment, crop, [0.0], [1.0], name="--augment")
        except ValueError as exc:
            raise LoopError(str(exc)) from None
        return {"task": self.name, "segmentation": {"crop_size": None if crop is None else list(crop),
                                                    "augment": augment, "ignore_index": IGNORE_INDEX,
                                                    "masks_dir": MASKS_DIR}}

    def check_pool(self, source, pool, fields) -> None:
        if not backend.is_image_folder(source):
            raise LoopError(f"masks as labels need a folder of images as the pool, got {pool} ({type(source).__name__})")
        crop = fields["segmentation"]["crop_size"]
        if crop is not None and (crop[0] > source.sample_shape[1] or crop[1] > source.sample_shape[2]):
            log.warning("--crop-size %s is larger than the images (%s): crops are padded with unlabeled pixels",
                        tuple(crop), tuple(source.sample_shape[1:]))

    def describe(self, labels) -> str:
        return f"masks folder {labels}"

    def _read(self, masks, source, num_classes: int, existing: Optional[Dict[str, str]]) -> ReadLabels:
        accepted, problems = read_mask_folder(masks, source, num_classes, existing=existing)
        ids = sorted(accepted)
        return ReadLabels(str(Path(masks).resolve()), "masks", {i: stored_mask_path(i) for i in ids}, problems,
                          masks={i: accepted[i] for i in ids})

    def read_initial(self, masks, source, classes, policy=DEFAULT_POLICY):
        class_list = check_mask_classes(classes)
        return class_list, self._read(masks, source, len(class_list), None)

    def read_returned(self, masks, source, state, add_classes, policy=DEFAULT_POLICY, relabel=False,
                      locations=None) -> ReadLabels:
        if relabel:
            raise LoopError("--relabel applies to class labels; a changed mask is refused (remove the old mask's "
                            "label first)")
        if add_classes:
            raise LoopError("--add-classes does not apply to masks: mask value i is class i of the list fixed at init")
        digests = {i: m["sha256"] for i, m in state.get("masks", {}).items()}
        return self._read(masks, source, len(state["classes"]), digests)

    def warn(self, read, ids, classes, *, initial) -> None:
        """Masks without a labeled pixel; at init, classes no mask shows."""
        masks = [read.masks[i] for i in ids]
        blank = [m.id for m in masks if not sum(m.pixels)]
        if blank:
            log.warning("%d mask(s) have no labeled pixel (all 255) and teach nothing: %s", len(blank),
                        ", ".join(blank[:20]))
        if initial:
            empty = [c for k, c in enumerate(classes) if not any(m.pixels[k] for m in masks)]
            if empty:
                log.warning("class(es) with no labeled pixel yet: %s", ", ".join(empty))

    def store(self, root, read, ids) -> None:
        write_masks(root, [read.masks[i] for i in ids])

    def record(self, state, read, ids) -> None:
        masks = state.setdefault("masks", {})
        for i in ids:
            masks[i] = {"sha256": read.masks[i].sha256, "pixels": read.masks[i].pixels}

    def labels_csv(self, labels) -> str:
        return labels_csv(dict(sorted(labels.items())))

    def check_method(self, method) -> None:
        if method is None:
            return
        try:
            check_dense([method])
        except ValueError as exc:
            raise LoopError(str(exc)) from None

    def cycle_data(self, meta, root, source, rows, ids, state, config, exclude) -> CycleData:
        seg = meta["segmentation"]
        crop = tuple(seg["crop_size"]) if seg.get("crop_size") else None
        augment = segmentation_augment(seg.get("augment", "default"), crop, *_normalisation(meta), name="workdir")
        files = [root / state["labels"][i] for i in ids]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise LoopError(f"{len(missing)} stored mask(s) of {root} are missing (the work directory is damaged)",
                            missing)
        return CycleData(source, rows, None, len(state["classes"]), mean=meta["mean"], std=meta["std"],
                         augment=augment, exclude=exclude, name="workdir", masks=files)

    def holdout_metrics(self, task_model, data, rows, ids, state, config, device, root) -> Dict[str, Any]:
        """mIoU (one confusion matrix over every labeled pixel of the held-out images) as
        ``holdout_miou`` and ``holdout_accuracy``, plus pixel accuracy and per-class IoU."""
        if not ids:
            return {"holdout_accuracy": None, "metric": "miou", "holdout_miou": None}
        dataset = data.dataset()
        dataset.masks.update({int(r): root / state["labels"][i] for r, i in zip(rows, ids)})
        held = torch.utils.data.Subset(dataset, [int(r) for r in rows])
        metrics = evaluate_task(task_model.backbone, held, len(state["classes"]), batch_size=config.score_batch_size,
                                device=device)
        iou = [None if not np.isfinite(v) else round(float(v), 6) for v in metrics["iou"]]
        return {"holdout_accuracy": float(metrics["miou"]), "metric": "miou", "holdout_miou": float(metrics["miou"]),
                "holdout_pixel_accuracy": float(metrics["pixel_accuracy"]), "holdout_iou": iou}

    def predicted_masks(self, models, source, rows, meta, config, device) -> List[np.ndarray]:
        """Argmax class indices per pixel of ``rows`` (uint8 (H, W) at the decoded image size)."""
        logits = _logits(models.task, SourceDataset(source, meta["mean"], meta["std"]), rows,
                         min(int(config.score_batch_size), 8), device)
        return [] if logits is None else [m.numpy().astype(np.uint8) for m in logits.argmax(1)]

    def label_counts(self, holdout, state) -> Dict[str, Dict[str, int]]:
        """class -> {"train", "holdout": labeled images showing the class, "pixels": its labeled pixels}."""
        counts = {c: {"train": 0, "holdout": 0, "pixels": 0} for c in state["classes"]}
        for i, m in state.get("masks", {}).items():
            for c, n in zip(state["classes"], m["pixels"]):
                if n:
                    counts[c]["holdout" if i in holdout else "train"] += 1
                    counts[c]["pixels"] += int(n)
        return counts

    def summary_lines(self, s) -> List[str]:
        lines = [f"labeled {s['labeled']} images with masks ({s['held_out']} held out for the mIoU estimate), "
                 f"{len(s['classes'])} classes (images showing the class, labeled pixels):"]
        width = max(len(c) for c in s["classes"])
        total = max(sum(v["pixels"] for v in s["counts"].values()), 1)
        for c, v in s["counts"].items():
            lines.append(f"  {c:<{width}}  {v['train'] + v['holdout']:>7} images  {v['pixels']:>12} px "
                         f"({100 * v['pixels'] / total:5.1f}%)")
        return lines

    def cycle_line(self, c) -> str:
        miou = "n/a (no holdout)" if c["holdout_miou"] is None else f"{100 * c['holdout_miou']:.2f}%"
        return (f"  cycle {c['cycle']:>2}  {c['method']:<8} trained on {c['trained_on']:>7} images  "
                f"holdout mIoU {miou}")


CLASSIFICATION = ClassificationTask()
SEGMENTATION = SegmentationTask()
TASKS = {t.name: t for t in (CLASSIFICATION, SEGMENTATION)}


def task_of(meta: Dict[str, Any]) -> Task:
    """The task of a work directory from its ``workdir.json`` (no ``task``: classification)."""
    name = meta.get("task", CLASSIFICATION.name)
    if name not in TASKS:
        raise LoopError(f"workdir.json names the task {name!r}; this tavaal knows {', '.join(TASKS)}")
    return TASKS[name]
