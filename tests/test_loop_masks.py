"""The labeling loop with masks as labels (segmentation): an oracle that answers with hidden
masks drives ``tavaal init --masks -> train -> select -> label -> status`` for 3 cycles with
the small DRN; every bad mask folder is refused with one clear error and leaves the work
directory byte-identical (or uncreated); the loop's checkpoint exports, and ``tavaal.score``
on the artifacts picks what ``tavaal select`` picks."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tavaal import cli
from tavaal.data.readers.segshapes import SEGSHAPES_CLASSES, write_segfolder_layout
from tavaal.loop import LoopError, Workdir

from loop_fixtures import fingerprint

FLAGS = ["--arch", "drn-d-small", "--width", "8", "--epochs", "1", "--batch-size", "4", "--budget", "4",
         "--subset", "12", "--latent-dim", "8", "--wae-iterations", "2", "--set", "wae_width=8", "--set",
         "disc_hidden=16", "--set", "num_threads=1", "--set", "score_batch_size=8"]
SEED_MASKS = 8


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """24 generated street scenes (32x64) as images/ + masks/ (the hidden truth) + classes.txt,
    and a seed folder with the masks of the first 8 images."""
    root = tmp_path_factory.mktemp("segloop")
    write_segfolder_layout(root / "data", num_images=24, image_size=(32, 64), seed=3)
    seed = root / "seed"
    seed.mkdir()
    for m in sorted((root / "data" / "masks").glob("*.png"))[:SEED_MASKS]:
        shutil.copy(m, seed / m.name)
    return root


def _init(scenes, wd: Path, masks: Path, *extra: str) -> int:
    return cli.main(["init", str(wd), "--pool", str(scenes / "data" / "images"), "--masks", str(masks),
                     "--classes", "@" + str(scenes / "data" / "classes.txt"), "--holdout", "2",
                     "--crop-size", "24,48", *FLAGS, *extra])


def _to_label(wd: Path):
    with open(wd / "to_label.csv", newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def _oracle(scenes, ids, out: Path) -> Path:
    """The annotators: the hidden masks of ``ids``, written into a new folder."""
    out.mkdir()
    for ident in ids:
        shutil.copy(scenes / "data" / "masks" / (Path(ident).stem + ".png"), out / (Path(ident).stem + ".png"))
    return out


def _truth(scenes, ident) -> np.ndarray:
    return np.asarray(Image.open(scenes / "data" / "masks" / (Path(ident).stem + ".png")))


@pytest.fixture(scope="module")
def loop(scenes):
    """The oracle drives 3 cycles through the CLI; returns the work directory and the batches."""
    wd = scenes / "wd"
    assert _init(scenes, wd, scenes / "seed") == 0
    batches = []
    for cycle in range(3):
        assert cli.main(["train", str(wd), "--no-progress"]) == 0
        assert cli.main(["select", str(wd), "--no-progress"]) == 0
        ids = _to_label(wd)
        batches.append(ids)
        assert cli.main(["label", str(wd), str(_oracle(scenes, ids, scenes / f"returned_{cycle}"))]) == 0
    return wd, batches


def test_init_with_masks_stores_them_and_fixes_task_classes_and_holdout(scenes, loop):
    wd, _ = loop
    meta = json.loads((wd / "workdir.json").read_text())
    assert meta["task"] == "segmentation" and meta["segmentation"]["crop_size"] == [24, 48]
    assert meta["input_shape"] == [3, 32, 64] and len(meta["holdout"]) == 2
    assert Workdir(wd).task.name == "segmentation"
    state = Workdir(wd).state()
    assert state["classes"] == list(SEGSHAPES_CLASSES)
    seed_ids = sorted(p.stem for p in (scenes / "seed").iterdir())
    assert sorted(Path(i).stem for i, r in state["label_round"].items() if r == 0) == seed_ids
    for ident, stored in state["labels"].items():  # copies inside WORKDIR, decoded = the annotators' masks
        assert np.array_equal(np.asarray(Image.open(wd / stored)), _truth(scenes, ident))
        assert sum(state["masks"][ident]["pixels"]) == int((_truth(scenes, ident) != 255).sum())


def test_an_oracle_drives_three_cycles_of_the_mask_loop(scenes, loop):
    wd, batches = loop
    state = Workdir(wd).state()
    assert [len(b) for b in batches] == [4, 4, 4]
    assert len({i for b in batches for i in b}) == 12  # disjoint batches
    seed = {i for i, r in state["label_round"].items() if r == 0}
    assert not seed & {i for b in batches for i in b}  # never a labeled image
    cycles = state["cycles"]
    assert [c["labeled"] for c in cycles] == [8, 12, 16] and [c["trained_on"] for c in cycles] == [6, 10, 14]
    for c in cycles:
        assert c["metric"] == "miou" and 0.0 <= c["holdout_miou"] <= 1.0
        assert c["holdout_accuracy"] == c["holdout_miou"] and len(c["holdout_iou"]) == len(SEGSHAPES_CLASSES)
    tasks = json.loads((wd / "label_studio_tasks.json").read_text())
    assert [t["data"]["tavaal_id"] for t in tasks] == batches[-1]
    assert all(Path(t["data"]["image"]).is_file() for t in tasks)  # an image task list
    # no mask of an unlabeled image ever entered the work directory
    stored = {p.relative_to(wd / "masks").with_suffix("").as_posix() for p in (wd / "masks").rglob("*.png")}
    assert stored == {Path(i).with_suffix("").as_posix() for i in state["labels"]}


def test_status_reports_miou_per_cycle_and_images_per_class(loop, capsys):
    wd, _ = loop
    assert cli.main(["status", str(wd)]) == 0
    text = capsys.readouterr().out
    assert "segmentation" in text and text.count("holdout mIoU") == 3 and "20 images with masks" in text
    status = Workdir(wd).status()
    assert status["labeled"] == 20 and status["out_for_labeling"] == 0
    assert set(status["counts"]) == set(SEGSHAPES_CLASSES)
    assert status["counts"]["road"]["train"] + status["counts"]["road"]["holdout"] == 20
    assert status["next"].startswith("tavaal train")


def test_merging_the_same_masks_again_changes_nothing(scenes, loop, capsys):
    wd, _ = loop
    before = fingerprint(wd)
    assert cli.main(["label", str(wd), str(scenes / "returned_0")]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert fingerprint(wd) == before


def _write(path: Path, array: np.ndarray, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


BAD = {
    "mask without an image": (lambda s, d: _write(d / "no_such_image.png", np.zeros((32, 64), np.uint8), "L"),
                              "no image no_such_image.* in the pool"),
    "wrong size": (lambda s, d: _write(d / "scene_0020.png", np.zeros((16, 64), np.uint8), "L"),
                   "mask is 64x16 (WxH) but its image is 64x32"),
    "colour mask": (lambda s, d: _write(d / "scene_0020.png", np.zeros((32, 64, 3), np.uint8), "RGB"),
                    "colour-coded masks must be converted"),
    "values outside the class list": (lambda s, d: _write(d / "scene_0020.png", np.full((32, 64), 9, np.uint8), "L"),
                                      "mask values 9 are outside the class list"),
    "empty folder": (lambda s, d: d.mkdir(parents=True, exist_ok=True), "holds no mask files"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_init_refuses_bad_masks_and_creates_nothing(scenes, tmp_path, kind):
    make, message = BAD[kind]
    folder = tmp_path / "masks"
    if kind != "empty folder":
        shutil.copytree(scenes / "seed", folder)
    make(scenes, folder)
    with pytest.raises(LoopError) as info:
        Workdir.init(tmp_path / "wd", scenes / "data" / "images", masks=folder, classes=list(SEGSHAPES_CLASSES))
    assert message in str(info.value)
    assert not (tmp_path / "wd").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".wd")]
    assert _init(scenes, tmp_path / "wd", folder) == 2  # the CLI: exit 2, still nothing
    assert not (tmp_path / "wd").exists()


def test_init_lists_the_first_20_offending_masks_and_a_count(scenes, tmp_path):
    folder = tmp_path / "masks"
    for k in range(25):
        _write(folder / f"orphan_{k:02d}.png", np.zeros((32, 64), np.uint8), "L")
    with pytest.raises(LoopError) as info:
        Workdir.init(tmp_path / "wd", scenes / "data" / "images", masks=folder, classes=list(SEGSHAPES_CLASSES))
    assert len(info.value.problems) == 25 and "... and 5 more (25 in all)" in str(info.value)
    assert "orphan_19.png" in str(info.value) and "orphan_20.png" not in str(info.value)


def test_init_needs_the_class_list_and_refuses_badge(scenes, tmp_path):
    images = scenes / "data" / "images"
    with pytest.raises(LoopError, match="--classes is required with --masks"):
        Workdir.init(tmp_path / "wd", images, masks=scenes / "seed")
    with pytest.raises(LoopError, match="badge"):
        Workdir.init(tmp_path / "wd", images, masks=scenes / "seed", classes=list(SEGSHAPES_CLASSES), method="badge")
    assert not (tmp_path / "wd").exists()
    assert cli.main(["init", str(tmp_path / "wd"), "--pool", str(images), "--masks", str(scenes / "seed"),
                     "--labels", "x.csv", "--classes", "a,b"]) == 2  # labels or masks, not both


LABEL_BAD = dict(BAD)
LABEL_BAD["different mask for a labeled image"] = (
    lambda s, d: _write(d / "scene_0000.png", np.where(_truth(s, "scene_0000.jpg") == 0, 1, 0).astype(np.uint8), "L"),
    "already labeled with a different mask")


@pytest.mark.parametrize("kind", sorted(LABEL_BAD))
def test_label_refuses_bad_masks_and_leaves_the_work_directory_byte_identical(scenes, loop, tmp_path, kind):
    wd, _ = loop
    make, message = LABEL_BAD[kind]
    folder = tmp_path / "returned"
    if kind != "empty folder":
        _oracle(scenes, ["scene_0021.jpg"], folder)  # one good mask next to the bad one: nothing is merged
    make(scenes, folder)
    before = fingerprint(wd)
    with pytest.raises(LoopError) as info:
        Workdir(wd).label(folder)
    assert message in str(info.value)
    assert kind == "empty folder" or "nothing was changed" in str(info.value)
    assert cli.main(["label", str(wd), str(folder)]) == 2
    assert fingerprint(wd) == before


def test_label_refuses_a_csv_and_add_classes_for_masks(scenes, loop, tmp_path):
    wd, _ = loop
    before = fingerprint(wd)
    (tmp_path / "l.csv").write_text("id,label\nscene_0021.jpg,car\n")
    with pytest.raises(LoopError, match="FOLDER of mask PNGs"):
        Workdir(wd).label(tmp_path / "l.csv")
    with pytest.raises(LoopError, match="--add-classes does not apply"):
        Workdir(wd).label(scenes / "returned_0", add_classes=True)
    assert fingerprint(wd) == before


def test_a_mask_outside_the_batches_is_accepted_with_a_warning(scenes, tmp_path, caplog):
    wd = tmp_path / "wd"
    assert _init(scenes, wd, scenes / "seed") == 0
    report = Workdir(wd).label(_oracle(scenes, ["scene_0023.jpg"], tmp_path / "extra"))
    assert report.added == 1 and "not in a selected batch" in report.warnings[0]
    assert Workdir(wd).labels["scene_0023.jpg"] == "masks/scene_0023.png"


def test_the_loop_checkpoint_exports_and_tavaal_score_picks_what_select_picks(scenes, tmp_path):
    """Same models, pool, labeled set, subset and seed: tavaal.score on the exported
    TorchScript artifacts selects the images tavaal select selects (one selection path)."""
    from tavaal.export import main as export_main
    from tavaal.score import main as score_main

    wd = tmp_path / "wd"
    assert _init(scenes, wd, scenes / "seed", "--holdout", "0") == 0
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    seed = Workdir(wd).state()["cycles"][-1]["seed"]
    assert export_main([str(wd), "--out", str(tmp_path / "art"), "--formats", "torchscript", "-q"]) == 0
    assert score_main([str(tmp_path / "art"), "--pool", str(scenes / "data" / "images"), "--budget", "4",
                       "--subset", "12", "--seed", str(seed), "--labeled", str(wd / "labels.csv"), "--backend",
                       "torchscript", "--out", str(tmp_path / "scored.csv"), "--no-progress"]) == 0
    with open(tmp_path / "scored.csv", newline="") as f:
        scored = [row["id"] for row in csv.DictReader(f)]
    assert cli.main(["select", str(wd), "--no-progress"]) == 0
    assert len(scored) == 4 and scored == _to_label(wd)


def test_select_refuses_badge_for_masks(loop):
    wd, _ = loop
    before = fingerprint(wd)
    with pytest.raises(LoopError, match="badge"):
        Workdir(wd).select(2, method="badge")
    assert fingerprint(wd) == before


def test_mask_targets_are_read_per_labeled_row_and_unlabeled_rows_are_all_ignore(scenes):
    """CycleData with masks: the training view yields each labeled image's mask (resized nearest
    with the image when the pool decodes to another size); rows without a mask are all 255."""
    from tavaal.cycle import CycleData
    from tavaal.data.sources import ImageFolderSource

    source = ImageFolderSource(scenes / "data" / "images", image_shape=(3, 16, 32))  # half size
    masks = [scenes / "data" / "masks" / f"scene_{k:04d}.png" for k in (1, 5)]
    data = CycleData(source, [1, 5], None, len(SEGSHAPES_CLASSES), masks=masks)
    assert data.task == "segmentation"
    x, y = data.dataset().get_batch([5, 2, 1])
    assert x.shape == (3, 3, 16, 32) and y.shape == (3, 16, 32) and str(y.dtype) == "torch.int64"
    assert np.array_equal(y[0].numpy(), _truth(scenes, "scene_0005.jpg")[::2, ::2])
    assert np.array_equal(y[2].numpy(), _truth(scenes, "scene_0001.jpg")[::2, ::2])
    assert (y[1] == 255).all()
    with pytest.raises(ValueError, match=r"labels \(classification\) or masks"):
        CycleData(source, [1], [0], 6, masks=masks[:1])


def test_a_dry_run_select_returns_the_predicted_mask_of_each_pick_and_writes_nothing(loop):
    wd, _ = loop
    before = fingerprint(wd)
    batch = Workdir(wd).select(3, dry_run=True)
    assert batch.dry_run and batch.files == {} and fingerprint(wd) == before
    assert len(batch.masks) == 3 and batch.explanation == {}
    k = len(Workdir(wd).state()["classes"])
    for mask in batch.masks:
        assert mask.dtype == np.uint8 and mask.shape == (32, 64) and int(mask.max()) < k
