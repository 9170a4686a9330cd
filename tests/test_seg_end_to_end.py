"""Segmentation end to end: every strategy runs 2 active-learning cycles with the small DRN on
generated street scenes, records mIoU and per-class IoU, and exported artifacts select the
same images as the in-process strategy (one selection path)."""
from __future__ import annotations

import csv
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tavaal.checkpoint import load_cycle_models, run_config
from tavaal.config import resolve_config
from tavaal.data import Pool, load_dataset
from tavaal.experiment import run_experiment
from tavaal.rundir import RunDirectory
from tavaal.scoring import Scorer, open_source, select_from_pool

from selection_oracles import select_live

from test_cpp_scorer import scorer_exe  # noqa: F401  (fixture: builds export/ with CMake, reused)

OPTIONS = {"num_train": 48, "num_test": 8}
METHODS = ["random", "entropy", "mcdropout", "margin", "leastconf", "coreset", "lloss", "lloss2", "vaal", "tavaal"]


@pytest.fixture(scope="module")
def workdir():
    root = Path(tempfile.mkdtemp(prefix="tavaal-seg-e2e-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _run(root: Path) -> Path:
    config = resolve_config(None, dict(dataset="segshapes", methods=METHODS, epochs=1, cycles=2, initial=8, budget=4,
                                       subset=24, wae_epochs=0.2, dataset_options=OPTIONS))
    assert config.arch == "drn-d-small"  # the segshapes preset's small learner
    run_experiment(config, root / "run", progress=False)
    return root / "run"


def test_every_strategy_runs_two_cycles_and_records_miou(workdir):
    run = _run(workdir)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["cycle"]) for r in records) == sorted((m, c) for m in METHODS for c in (0, 1))
    for r in records:
        assert r["metric"] == "miou" and 0.0 <= r["miou"] <= 1.0 and r["accuracy"] == r["miou"]
        assert len(r["iou"]) == 6 and r["labeled"] == 8 + 4 * r["cycle"]
    for method in METHODS:
        trial = run / method / "trial_0"
        labeled = set(json.loads((trial / "labeled_cycle_00.json").read_text()))
        picked = json.loads((trial / "selected_cycle_00.json").read_text())
        assert len(set(picked)) == 4 and not labeled & set(picked)
        assert set(json.loads((trial / "labeled_cycle_01.json").read_text())) == labeled | set(picked)
    with open(run / "per_class_iou.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records)
    assert list(rows[0])[5:] == ["road", "building", "sky", "car", "person", "pole"]


@pytest.mark.parametrize("method", ["tavaal", "coreset", "entropy"])
def test_exported_segmentation_artifacts_select_the_same_images(workdir, method):
    from tavaal.export import export_run

    run = _run(workdir)
    art = workdir / f"art-{method}"
    if not art.exists():
        export_run(run, art, method=method, onnx_exporter="legacy")
    models = load_cycle_models(RunDirectory(run).latest_checkpoint(method, 0))
    labeled = np.array(json.loads((run / method / "trial_0" / "labeled_cycle_01.json").read_text()))
    bundle = load_dataset("segshapes", **OPTIONS)
    pool = Pool(len(bundle.train), labeled)
    expected = select_live(run_config(run), bundle, labeled, method, 5, pool.unlabeled, models.task,
                           models.adversarial)  # what the simulated cycle selects with the live models
    for backend in ("onnx", "torchscript"):
        scorer = Scorer.from_artifacts(art, backend=backend)
        selection = select_from_pool(scorer, open_source("dataset:segshapes:train", **OPTIONS), method, 5,
                                     labeled=labeled, batch_size=16)
        np.testing.assert_array_equal(selection.rows, expected)


def test_segmentation_checkpoint_rebuilds_the_drn_and_downscaled_wae(workdir):
    run = _run(workdir)
    models = load_cycle_models(RunDirectory(run).latest_checkpoint("tavaal", 0))
    assert models.spec["task"] == "segmentation"
    assert type(models.task.backbone).__name__ == "DRNSeg"
    assert models.adversarial.wae.input_shape == (3, 64, 128)


@pytest.mark.slow
def test_cpp_scorer_selects_the_same_images_from_segmentation_artifacts(workdir, scorer_exe):
    import subprocess

    from tavaal.export import export_run

    run = _run(workdir)
    art = workdir / "art-tavaal-cpp"
    export_run(run, art, method="tavaal", onnx_exporter="legacy")
    x, _ = load_dataset("segshapes", **OPTIONS).train.get_batch(range(OPTIONS["num_train"]))
    pool = workdir / "pool.npy"
    np.save(pool, x.numpy())
    out = workdir / "cpp.csv"
    res = subprocess.run([str(scorer_exe), str(art), str(pool), "--budget", "6", "--method", "tavaal",
                          "--batch-size", "16", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    with open(out) as f:
        ids = [int(r["id"]) for r in csv.DictReader(f)]
    python = select_from_pool(Scorer.from_artifacts(art, backend="torchscript"), open_source(pool), "tavaal", 6)
    assert ids == python.rows.tolist()


def test_cityscapes_preset_runs_from_the_command_line_on_a_cityscapes_tree(tmp_path, capsys):
    """The Table 1 preset on a generated Cityscapes tree, shrunk by flags: file-backed pairs,
    412-style paired crops (here 48), the WAE on frames resized to its canvas (here 32)."""
    from tavaal import train
    from tavaal.data.readers.segshapes import write_cityscapes_layout

    root = write_cityscapes_layout(tmp_path / "cityscapes", num_train=8, num_val=3, image_size=(64, 128))
    argv = ["--preset", "cityscapes", "--data-dir", str(root), "--methods", "random,tavaal", "--trials", "1",
            "--cycles", "2", "--initial", "4", "--budget", "2", "--subset", "4", "--epochs", "1",
            "--set", "arch=drn-d-small", "--set", "width=16", "--set", "wae_input_size=32", "--set", "wae_width=8",
            "--set", "wae_iterations=2", "--set", "num_workers=0", "--dataset-option", "crop_size=48",
            "--out", str(tmp_path / "run"), "--no-progress", "--no-plots"]
    assert train.main(argv) == 0
    assert "mIoU" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(len(r["iou"]) == 19 for r in records)
    models = load_cycle_models(RunDirectory(tmp_path / "run").latest_checkpoint("tavaal", 0))
    assert models.adversarial.wae._canvas == (32, 32) and models.adversarial.wae.input_shape == (3, 64, 128)


def test_a_method_without_segmentation_support_is_refused_before_training(tmp_path):
    from tavaal.experiment import Experiment

    config = resolve_config(None, dict(dataset="segshapes", methods=["random", "badge"], dataset_options=OPTIONS))
    with pytest.raises(ValueError, match="badge do not support segmentation"):
        Experiment(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
