"""Masks as labels: the labeling loop for semantic segmentation.

The pool is a folder of images; a label is a mask file with the image's path and stem
(``images/a/b.jpg`` <-> ``MASKS/a/b.png``; any of .png/.bmp/.tif/.pgm), the image's width and
height, one channel ("L" or "P" PNG) of class indices ``0..K-1`` and 255 for unlabeled pixels
(the segfolder format, :mod:`tavaal.data.readers.segfolder`)::

    tavaal init WORK --pool images/ --masks masks/ --classes road,car,sky   # (or @classes.txt)
    tavaal train WORK ; tavaal select WORK --budget 50
    tavaal label WORK returned_masks/      # a folder of mask PNGs for (some of) the batch
    tavaal status WORK

:class:`MaskWorkdir` is the :class:`~tavaal.loop.Workdir` of such a directory (``Workdir(path)``
opens it as one): the same commands, files, atomic commit and pool-change rule, with these
differences:

* Storage: every merged mask is decoded, checked and stored *inside* the work directory as a
  class-index PNG ``WORKDIR/masks/<id stem>.png`` (so the annotators' folder may change or
  disappear afterwards). ``state.json`` maps each labeled id to that file (``labels``) and keeps
  the sha256 of its decoded labels and its per-class pixel counts (``masks``); ``labels.csv``
  lists ``id,mask file``.
* Merge rules: each mask must belong to an image of the pool; an id already labeled with the
  same mask content is unchanged (idempotent), with a different one it is a conflict; an id
  outside the selected batches is accepted with a warning. Masks without an image, of another
  size than their image, colour (multi-channel) masks, values outside the class list and an
  empty folder are refused together in one :class:`LoopError` (first 20 + a count), before
  anything is written. The class list is fixed at ``init`` (mask value i = class i).
* Training: a segmentation cycle (:class:`tavaal.cycle.CycleData` with ``masks``): the DRN task
  learner (``arch`` auto = drn-d-22; the ``segshapes``-style drn-d-small for CPU), dense losses,
  per-image Ranker targets, paired crop + flip augmentation (``crop_size`` at init); the
  accuracy estimate is the mean IoU on the held-out labeled images (``holdout_miou``, also in
  ``holdout_accuracy`` so that every reader of the cycle records sees the primary metric).
* Selection: the shared selection path unchanged (entropy = mean pixel entropy per image,
  core-set on pooled features, ...); BADGE has no per-image form and is refused.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..losses import IGNORE_INDEX
from . import backend
from .errors import LoopError
from .state import VERSION, WORKDIR_FORMAT, check_new_workdir, create_workdir, empty_state, write_json, write_text
from .workdir import (STATS_ROWS, MergeReport, Workdir, _draw_holdout, _now, _out_for_labeling, _pending_lines,
                      _pool_lines, log)

__all__ = ["MaskWorkdir", "MaskLabel", "read_mask_folder", "is_mask_workdir", "TASK", "MASKS_DIR"]

TASK = "segmentation"
"""``workdir.json``'s ``task`` for work directories whose labels are masks."""
MASKS_DIR = "masks"
"""Folder inside the work directory holding the merged masks (class-index PNGs)."""


def is_mask_workdir(path) -> bool:
    """True if ``path`` is a work directory initialised with masks as labels (never raises:
    anything unreadable is left to :class:`~tavaal.loop.Workdir`'s own checks)."""
    try:
        with open(Path(path) / "workdir.json", encoding="utf-8") as f:
            return json.load(f).get("task") == TASK
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class MaskLabel:
    """One checked mask: the pool ``id`` it labels, the ``file`` it was read from, the decoded
    labels (``labels``, uint8 (H, W): class indices, 255 = unlabeled), their ``sha256`` and the
    per-class pixel counts (``pixels``, K ints)."""

    id: str
    file: Path
    labels: np.ndarray
    sha256: str
    pixels: List[int]

    def png_bytes(self) -> bytes:
        """The labels as a single-channel ("L") PNG, the format stored in the work directory."""
        from PIL import Image

        out = io.BytesIO()
        Image.fromarray(self.labels, mode="L").save(out, format="PNG")
        return out.getvalue()


def _digest(labels: np.ndarray) -> str:
    h = hashlib.sha256(f"{labels.shape[0]}x{labels.shape[1]}:".encode())
    h.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _stem_key(rel: str) -> str:
    """``a/b.jpg`` -> ``a/b`` (the image <-> mask pairing key)."""
    return Path(rel).with_suffix("").as_posix()


def stored_mask_path(ident: str) -> str:
    """Where the mask of pool id ``ident`` is stored, relative to the work directory."""
    return f"{MASKS_DIR}/{_stem_key(ident)}.png"


def read_mask_folder(folder, source, num_classes: int, *,
                     existing: Optional[Dict[str, str]] = None) -> Tuple[Dict[str, MaskLabel], List[str]]:
    """Check every mask file under ``folder`` (recursive) against the image-folder pool
    ``source`` and the class list (values ``0..num_classes-1``, 255 = unlabeled).

    Returns (id -> :class:`MaskLabel` of the usable masks, problems): one line per mask without
    an image in the pool (or matching several images), per duplicate mask of one image, per
    mask of another size than its image, colour / multi-channel or undecodable mask, per mask
    with values outside the class list, and per id whose mask differs from the one already
    merged (``existing``: id -> sha256). Raises :class:`LoopError` when ``folder`` is not a
    folder or holds no mask file."""
    from ..data.errors import CorruptDatasetError
    from ..data.readers.segfolder import MASK_EXTENSIONS, _size_of, identity_lookup, read_mask

    folder = Path(folder)
    if not folder.is_dir():
        hint = " (a work directory with masks takes a FOLDER of mask PNGs named like the images)" \
            if folder.is_file() else ""
        raise LoopError(f"masks folder {folder} does not exist or is not a folder{hint}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MASK_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise LoopError(f"masks folder {folder} holds no mask files ({'/'.join(e.lstrip('.') for e in MASK_EXTENSIONS)}"
                        "; single-channel class indices, named like their images)")
    by_stem: Dict[str, List[str]] = {}
    for ident in source.ids:
        by_stem.setdefault(_stem_key(ident), []).append(ident)
    lookup = identity_lookup(num_classes)
    existing = existing or {}
    accepted: Dict[str, MaskLabel] = {}
    problems: List[str] = []
    seen: Dict[str, Path] = {}
    for path in files:
        rel = path.relative_to(folder).as_posix()
        key = _stem_key(rel)
        images = by_stem.get(key, [])
        if not images:
            problems.append(f"{rel}: no image {key}.* in the pool (a mask must have the path and stem of a pool "
                            "image)")
            continue
        if len(images) > 1:
            problems.append(f"{rel}: matches several pool images ({', '.join(images)}); give them distinct stems")
            continue
        ident = images[0]
        if key in seen:
            problems.append(f"{rel}: a second mask for {ident} (also {seen[key].relative_to(folder).as_posix()})")
            continue
        seen[key] = path
        try:
            hw = _size_of(Path(source.path) / ident)
            labels = read_mask(path, lookup, None, expected_hw=hw).numpy()
        except CorruptDatasetError as exc:
            problems.append(str(exc))
            continue
        digest = _digest(labels)
        if ident in existing and existing[ident] != digest:
            problems.append(f"{rel}: {ident} is already labeled with a different mask; relabeling conflicts")
            continue
        valid = labels[labels != IGNORE_INDEX]
        pixels = np.bincount(valid.astype(np.int64), minlength=num_classes)[:num_classes]
        accepted[ident] = MaskLabel(ident, path, labels, digest, [int(v) for v in pixels])
    return accepted, problems


def _check_classes(classes: Optional[Sequence[str]]) -> List[str]:
    if classes is None:
        raise LoopError("--classes is required with --masks: mask value i is class i (give the names in that "
                        "order, comma-separated or @classes.txt with one per line)")
    names = [str(c) for c in classes]
    if len(names) < 2 or len(set(names)) != len(names):
        raise LoopError(f"the class list needs >= 2 distinct names, got {names}")
    if len(names) > 255:
        raise LoopError(f"at most 255 classes fit 8-bit masks (255 = unlabeled), got {len(names)}")
    return names


def _refuse_dense(method: Optional[str]) -> None:
    """LoopError for a method without a per-image (segmentation) form (BADGE)."""
    if method is None:
        return
    from ..experiment import check_dense_methods
    from ..strategies import STRATEGIES

    if method in STRATEGIES:
        try:
            check_dense_methods([method])
        except ValueError as exc:
            raise LoopError(str(exc)) from None
    elif method == "badge":
        raise LoopError("badge has no per-image form for segmentation; use entropy, margin, leastconf, coreset, "
                        "lloss, vaal or tavaal")


class MaskWorkdir(Workdir):
    """A work directory whose labels are masks (see the module docstring). ``Workdir(path)``
    returns one for such a directory; create one with :meth:`MaskWorkdir.init`."""

    task = TASK

    @classmethod
    def init(cls, path, pool, masks, *, classes: Optional[Sequence[str]] = None, preset: Optional[str] = None,
             config=None, overrides: Optional[Dict[str, Any]] = None, holdout: Union[int, float, None] = None,
             image_shape: Optional[Sequence[int]] = None, method: Optional[str] = None,
             crop_size: Optional[Sequence[int]] = None, augment: str = "default") -> "MaskWorkdir":
        """Create a work directory for the image folder ``pool`` whose labels are the masks in
        the folder ``masks`` (some of the pool's images). ``classes``: the class names (required;
        mask value i = ``classes[i]``). ``crop_size``: (H, W) of random training crops (paired
        with the masks; None = whole images); ``augment``: "default" (crop if ``crop_size`` +
        horizontal flip), "flip", "crop", "crop+flip" or "none". Other arguments as
        :meth:`Workdir.init` (``holdout`` counts images; its mIoU is the accuracy estimate).
        Raises :class:`LoopError` (nothing written) for every bad input."""
        from ..data.readers.segfolder import _hw, segmentation_augment

        root = Path(path)
        check_new_workdir(root)
        class_list = _check_classes(classes)
        _refuse_dense(method)
        resolved = cls._resolve_config(preset, config, overrides, method)
        _refuse_dense(resolved.methods[0])
        try:
            crop = _hw(crop_size)
            segmentation_augment(augment, crop, [0.0], [1.0], name="--augment")
        except ValueError as exc:
            raise LoopError(str(exc)) from None
        try:
            source = backend.open_pool_spec({"path": str(pool), "key": None, "image_shape": image_shape})
        except (backend.SourceError, ValueError) as exc:
            raise LoopError(f"cannot open the pool: {exc}") from None
        if not backend.is_image_folder(source):
            raise LoopError(f"masks as labels need a folder of images as the pool, got {pool} ({type(source).__name__})")
        if len(source) == 0:
            raise LoopError(f"the pool {pool} is empty: nothing to label")
        if crop is not None and (crop[0] > source.sample_shape[1] or crop[1] > source.sample_shape[2]):
            log.warning("--crop-size %s is larger than the images (%s): crops are padded with unlabeled pixels",
                        crop, tuple(source.sample_shape[1:]))
        accepted, problems = read_mask_folder(masks, source, len(class_list))
        if problems:
            raise LoopError(f"masks folder {masks}: {len(problems)} mask file(s) cannot be used; nothing was written",
                            problems)
        _warn_empty(accepted.values(), class_list)
        ids = sorted(accepted)
        holdout_ids = _draw_holdout(ids, holdout, resolved.seed)
        if len(ids) - len(holdout_ids) < 1:
            raise LoopError(f"the holdout ({len(holdout_ids)}) leaves no labeled image to train on "
                            f"({len(ids)} labeled): lower --holdout")
        mean, std = backend.pool_stats(source, STATS_ROWS, resolved.seed)
        ids_text = "\n".join(source.ids) + "\n"
        meta = {
            "format": WORKDIR_FORMAT, "version": VERSION, "created": _now(), "task": TASK,
            "pool": {"path": str(Path(pool).resolve()), "key": None, "image_shape": list(source.sample_shape),
                     "kind": type(source).__name__, "dtype": source.dtype, "size": len(source),
                     "ids_sha256": hashlib.sha256(ids_text.encode()).hexdigest()},
            "input_shape": list(source.sample_shape), "mean": mean, "std": std,
            "holdout": sorted(holdout_ids), "initial_labels": str(Path(masks).resolve()), "user_model": None,
            "segmentation": {"crop_size": None if crop is None else list(crop), "augment": augment,
                             "ignore_index": IGNORE_INDEX, "masks_dir": MASKS_DIR},
            "config": resolved.to_dict(),
        }
        state = empty_state()
        state["classes"] = class_list
        state["labels"] = {i: stored_mask_path(i) for i in ids}
        state["masks"] = {i: {"sha256": accepted[i].sha256, "pixels": accepted[i].pixels} for i in ids}
        state["label_round"] = {i: 0 for i in ids}
        state["merges"] = [{"round": 0, "file": str(Path(masks).resolve()), "format": "masks", "added": len(ids),
                            "time": _now()}]
        with create_workdir(root) as files:
            write_json(files.config_path, resolved.to_dict())
            write_text(files.pool_ids_path, ids_text)
            _write_masks(files.root, [accepted[i] for i in ids])
            write_text(files.labels_path, _labels_csv(state["labels"]))
            files.commit(state)
            write_json(files.meta_path, meta)
        return Workdir(root)

    # ------------------------------------------------------------------------------ train hooks
    def _cycle_data(self, source, rows, ids, state, *, exclude):
        from ..cycle import CycleData
        from ..data.readers.segfolder import segmentation_augment

        seg = self.meta["segmentation"]
        crop = tuple(seg["crop_size"]) if seg.get("crop_size") else None
        mean = self.meta["mean"] or [0.0] * int(self.meta["input_shape"][0])
        std = self.meta["std"] or [1.0] * int(self.meta["input_shape"][0])
        augment = segmentation_augment(seg.get("augment", "default"), crop, mean, std, name="workdir")
        files = [self.root / state["labels"][i] for i in ids]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise LoopError(f"{len(missing)} stored mask(s) of {self.root} are missing (the work directory is "
                            "damaged)", missing)
        return CycleData(source, rows, None, len(state["classes"]), mean=self.meta["mean"], std=self.meta["std"],
                         augment=augment, exclude=exclude, name="workdir", masks=files)

    def _holdout_metrics(self, task, data, rows, ids, state, config, device) -> Dict[str, Any]:
        """mIoU (one confusion matrix over every labeled pixel of the held-out images) as
        ``holdout_miou`` and ``holdout_accuracy``, plus pixel accuracy and per-class IoU."""
        if not ids:
            return {"holdout_accuracy": None, "metric": "miou", "holdout_miou": None}
        import torch

        from ..training.task import evaluate_task

        dataset = data.dataset()
        dataset.masks.update({int(r): self.root / state["labels"][i] for r, i in zip(rows, ids)})
        held = torch.utils.data.Subset(dataset, [int(r) for r in rows])
        metrics = evaluate_task(task.backbone, held, len(state["classes"]), batch_size=config.score_batch_size,
                                device=device)
        iou = [None if not np.isfinite(v) else round(float(v), 6) for v in metrics["iou"]]
        return {"holdout_accuracy": float(metrics["miou"]), "metric": "miou", "holdout_miou": float(metrics["miou"]),
                "holdout_pixel_accuracy": float(metrics["pixel_accuracy"]), "holdout_iou": iou}

    # ------------------------------------------------------------------------------ select
    def select(self, budget=None, *, method=None, **kwargs):
        """:meth:`Workdir.select` (``to_label.csv`` + a Label Studio image task list; masks come
        back as PNG files, see :meth:`label`); BADGE is refused (no per-image form)."""
        _refuse_dense(method)
        return super().select(budget, method=method, **kwargs)

    # ------------------------------------------------------------------------------ label
    def label(self, labels, *, add_classes: bool = False) -> MergeReport:
        """Merge a folder of returned masks (see the module docstring for the rules). Atomic:
        the masks are written under new names first, then ``state.json`` is replaced in one
        rename; a refused merge changes nothing; merging the same folder twice changes nothing."""
        if add_classes:
            raise LoopError("--add-classes does not apply to masks: mask value i is class i of the list fixed at init")
        with self.files.lock():
            state = self.state()
            view = self._pool_view(state)
            classes = list(state["classes"])
            digests = {i: m["sha256"] for i, m in state.get("masks", {}).items()}
            accepted, problems = read_mask_folder(labels, view.source, len(classes), existing=digests)
            if problems:
                raise LoopError(f"masks folder {labels}: {len(problems)} mask file(s) cannot be merged; nothing was "
                                "changed", problems)
            new = {i: m for i, m in accepted.items() if i not in state["labels"]}
            unchanged = len(accepted) - len(new)
            out = set(_out_for_labeling(state))
            warnings = []
            outside = sorted(i for i in new if i not in out)
            if outside:
                warnings.append(f"{len(outside)} id(s) were not in a selected batch (accepted): "
                                + ", ".join(outside[:20]) + (" ..." if len(outside) > 20 else ""))
            report = MergeReport(len(new), unchanged, [], warnings)
            for w in warnings:
                log.warning("%s", w)
            _warn_empty(new.values(), classes, only_unlabeled=True)
            if not new:
                return report  # idempotent: nothing to write
            _write_masks(self.root, list(new.values()))  # unreferenced until the commit below
            round_ = len(state["merges"])
            state.setdefault("masks", {})
            for i in sorted(new):
                state["labels"][i] = stored_mask_path(i)
                state["masks"][i] = {"sha256": new[i].sha256, "pixels": new[i].pixels}
                state["label_round"][i] = round_
            state["merges"].append({"round": round_, "file": str(Path(labels).resolve()), "format": "masks",
                                    "added": len(new), "unchanged": unchanged, "new_classes": [], "time": _now()})
            self.files.commit(state)  # the commit point
            write_text(self.files.labels_path, _labels_csv(state["labels"]))
        return report

    # ------------------------------------------------------------------------------ status
    def status(self) -> Dict[str, Any]:
        """:meth:`Workdir.status` for masks: ``counts`` per class are labeled *images* showing the
        class (train / holdout) and its labeled ``pixels``; cycles carry ``holdout_miou``."""
        state = self.state()
        status = super().status()
        status["task"] = TASK
        status["cycles"] = [dict(c, holdout_miou=r.get("holdout_miou"), holdout_iou=r.get("holdout_iou"))
                            for c, r in zip(status["cycles"], state["cycles"])]
        if status["out_for_labeling"]:
            status["next"] = (f"send {self.root / 'to_label.csv'} (or label_studio_tasks.json) to the annotators; "
                              f"put the returned masks (PNG, class indices, named like the images) in a folder, then: "
                              f"tavaal label {self.root} RETURNED_MASKS_DIR")
        return status

    def _label_counts(self, state: Dict[str, Any]) -> Dict[str, Dict[str, int]]:
        """class -> {"train", "holdout": labeled images showing the class, "pixels": its labeled pixels}."""
        holdout = set(self.meta["holdout"])
        counts = {c: {"train": 0, "holdout": 0, "pixels": 0} for c in state["classes"]}
        for i, m in state.get("masks", {}).items():
            for c, n in zip(state["classes"], m["pixels"]):
                if n:
                    counts[c]["holdout" if i in holdout else "train"] += 1
                    counts[c]["pixels"] += int(n)
        return counts

    def status_text(self) -> str:
        """:meth:`status` as the text ``tavaal status`` prints (mIoU per cycle)."""
        s = self.status()
        lines = [f"work directory {s['workdir']} (segmentation, method {s['method']})",
                 *_pool_lines(s, "image", "masks")]
        held = len([i for i in self.meta["holdout"] if i in self.labels])
        lines.append(f"labeled {s['labeled']} images with masks ({held} held out for the mIoU estimate), "
                     f"{len(s['classes'])} classes (images showing the class, labeled pixels):")
        width = max(len(c) for c in s["classes"])
        total = max(sum(v["pixels"] for v in s["counts"].values()), 1)
        for c, v in s["counts"].items():
            lines.append(f"  {c:<{width}}  {v['train'] + v['holdout']:>7} images  {v['pixels']:>12} px "
                         f"({100 * v['pixels'] / total:5.1f}%)")
        lines.append(f"cycles: {len(s['cycles'])}")
        for c in s["cycles"]:
            miou = "n/a (no holdout)" if c["holdout_miou"] is None else f"{100 * c['holdout_miou']:.2f}%"
            lines.append(f"  cycle {c['cycle']:>2}  {c['method']:<8} trained on {c['trained_on']:>7} images  "
                         f"holdout mIoU {miou}")
        return "\n".join(lines + _pending_lines(s))


# ---------------------------------------------------------------------------------- helpers
def _write_masks(root: Path, masks: Sequence[MaskLabel]) -> None:
    """Store ``masks`` as class-index PNGs under ``root`` (each write atomic)."""
    from ..rundir import _atomic_write_bytes

    for m in masks:
        target = root / stored_mask_path(m.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(target, m.png_bytes())


def _labels_csv(labels: Dict[str, str]) -> str:
    from .labels import labels_csv

    return labels_csv(dict(sorted(labels.items())))


def _warn_empty(masks, classes: Sequence[str], only_unlabeled: bool = False) -> None:
    """Warnings: masks without a labeled pixel; (at init) classes no mask shows."""
    masks = list(masks)
    blank = [m.id for m in masks if not sum(m.pixels)]
    if blank:
        log.warning("%d mask(s) have no labeled pixel (all 255) and teach nothing: %s", len(blank),
                    ", ".join(blank[:20]))
    if not only_unlabeled:
        seen = np.zeros(len(classes), dtype=np.int64)
        for m in masks:
            seen += np.asarray(m.pixels, dtype=np.int64)
        empty = [c for c, n in zip(classes, seen) if n == 0]
        if empty:
            log.warning("class(es) with no labeled pixel yet: %s", ", ".join(empty))
