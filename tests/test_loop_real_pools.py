"""The labeling loop on real pools and small seed sets (issue 16), through the CLI as a user
runs it: unreadable files, mixed image shapes, device and model checks at init, settings
changed after init, an honest holdout estimate with audit samples, the batch lifecycle
(unselect, dry run, deleted pending files, which file holds which batch) and why each sample
was picked. The "done means" pool (broken files, mixed sizes and modes, unicode and spaces,
a ``filename,class`` seed sheet in NFD) runs init -> train -> select -> unselect -> label."""
from __future__ import annotations

import csv
import io
import json
import shutil
import unicodedata
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from tavaal import cli
from tavaal.advise import retrospective_bundle
from tavaal.loop import Workdir
from tavaal.loop.holdout import wilson_interval

from loop_fixtures import digits_uint8, fingerprint, write_labels_csv, write_png_pool

# tiny training settings (no --preset: the default recipe applies under them)
FLAGS = ["--arch", "resnet18-cifar", "--width", "8", "--steps", "2", "--batch-size", "16", "--wae-iterations", "2",
         "--latent-dim", "8", "--budget", "8", "--subset", "0", "--set", "wae_width=8", "--set", "disc_hidden=16",
         "--set", "num_threads=1"]


def _ids(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        return [row["id"] for row in csv.DictReader(f)]


def _rows(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _jpeg_bytes(img: np.ndarray, size) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, "L").convert("RGB").resize(size).save(buf, "JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def digits():
    images, targets = digits_uint8(100)
    return images, [str(int(t)) for t in targets]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """A PNG pool of 100 digits, 30 labels (6 held out), one trained cycle (module-scoped:
    tests copy it)."""
    root = tmp_path_factory.mktemp("realpool")
    images, truth = digits
    ids = write_png_pool(root / "pool", images)
    seed = write_labels_csv(root / "seed.csv", list(zip(ids[:30], truth[:30])))
    wd = root / "wd"
    assert cli.main(["init", str(wd), "--pool", str(root / "pool"), "--labels", str(seed), "--holdout", "6",
                     "--no-progress", *FLAGS]) == 0
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    return root, ids, dict(zip(ids, truth))


@pytest.fixture
def copy(trained, tmp_path):
    """A fresh copy of the trained work directory and its pool (paths stay valid: the pool path
    recorded in workdir.json is rewritten to the copy's)."""
    root, ids, truth = trained
    shutil.copytree(root / "pool", tmp_path / "pool")
    shutil.copytree(root / "wd", tmp_path / "wd")
    meta = json.loads((tmp_path / "wd" / "workdir.json").read_text())
    meta["pool"]["path"] = str((tmp_path / "pool").resolve())
    (tmp_path / "wd" / "workdir.json").write_text(json.dumps(meta))
    return tmp_path / "wd", tmp_path / "pool", ids, truth


# ------------------------------------------------------------------------------- init reports
def test_init_excludes_unreadable_files_into_unreadable_csv_and_says_so_in_one_line(tmp_path, digits, capsys):
    images, truth = digits
    ids = write_png_pool(tmp_path / "pool", images[:40])
    (tmp_path / "pool" / "cut.jpg").write_bytes(_jpeg_bytes(images[0], (32, 32))[:200])
    (tmp_path / "pool" / "empty.png").write_bytes(b"")
    seed = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    assert cli.main(["init", str(tmp_path / "wd"), "--pool", str(tmp_path / "pool"), "--labels", str(seed),
                     "--no-progress", *FLAGS]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "unreadable" in line and "excluded" in line]
    assert len(lines) == 1 and "2 unreadable file(s)" in lines[0] and "cut.jpg" in lines[0] and "empty.png" in lines[0]
    rows = _rows(tmp_path / "wd" / "unreadable.csv")
    assert [r["id"] for r in rows] == ["cut.jpg", "empty.png"] and all(r["reason"] for r in rows)
    status = Workdir(tmp_path / "wd").status()
    assert status["pool"]["size"] == 40 and status["pool"]["unreadable"] == 2
    assert cli.main(["status", str(tmp_path / "wd")]) == 0
    assert "UNREADABLE: 2 file(s)" in capsys.readouterr().out


def test_init_says_which_image_shape_it_chose_and_how_many_files_differ(tmp_path, digits, capsys):
    images, truth = digits
    ids = write_png_pool(tmp_path / "pool", images[:30])
    Image.fromarray(images[30], "L").convert("RGB").resize((20, 20)).save(tmp_path / "pool" / "UPPER.JPG")
    seed = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    assert cli.main(["init", str(tmp_path / "wd"), "--pool", str(tmp_path / "pool"), "--labels", str(seed),
                     "--no-progress", *FLAGS]) == 0
    out = capsys.readouterr().out
    assert "images decoded to 1x8x8" in out and "1 of 31 sampled files differ" in out and "--image-shape" in out
    assert Workdir(tmp_path / "wd").meta["input_shape"] == [1, 8, 8]  # the most common, not the first file's
    assert cli.main(["init", str(tmp_path / "wd3"), "--pool", str(tmp_path / "pool"), "--labels", str(seed),
                     "--image-shape", "3,16,16", "--no-progress", *FLAGS]) == 0
    assert "images decoded to 3x16x16" in capsys.readouterr().out


def test_a_model_that_does_not_fit_the_pools_channels_names_image_shape(tmp_path, digits, capsys):
    images, truth = digits
    ids = write_png_pool(tmp_path / "pool", images[:30])
    seed = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    rc = cli.main(["init", str(tmp_path / "wd"), "--pool", str(tmp_path / "pool"), "--labels", str(seed),
                   "--model", "user_model_fixture:rgb_two_tap_net", "--taps", "block1", "--image-shape", "1,8,8",
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--image-shape" in err and not (tmp_path / "wd").exists()


def test_init_device_gpu_on_a_cpu_torch_exits_2_with_one_line_and_creates_nothing(tmp_path, digits, capsys):
    import torch

    images, truth = digits
    ids = write_png_pool(tmp_path / "pool", images[:30])
    seed = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    argv = ["init", str(tmp_path / "wd"), "--pool", str(tmp_path / "pool"), "--labels", str(seed), "--no-progress"]
    assert cli.main(argv + ["--device", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device 'gpu'" in err and not (tmp_path / "wd").exists()
    if not torch.cuda.is_available():
        assert cli.main(argv + ["--device", "cuda"]) == 2
        assert "cannot use CUDA" in capsys.readouterr().err and not (tmp_path / "wd").exists()


def test_a_model_whose_forward_returns_a_dict_needs_output_key_said_at_init(tmp_path, digits, capsys):
    images, truth = digits
    ids = write_png_pool(tmp_path / "pool", images[:30])
    seed = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    argv = ["init", str(tmp_path / "wd"), "--pool", str(tmp_path / "pool"), "--labels", str(seed),
            "--model", "user_model_fixture:dict_output_net", "--taps", "block1", "--no-progress", *FLAGS]
    assert cli.main(argv) == 2
    assert "--output-key" in capsys.readouterr().err and not (tmp_path / "wd").exists()
    assert cli.main(argv + ["--output-key", "logits"]) == 0
    assert Workdir(tmp_path / "wd").meta["user_model"]["output_key"] == "logits"
    assert cli.main(["train", str(tmp_path / "wd"), "--no-progress"]) == 0


def test_init_prints_the_default_recipe_and_help_shows_every_default(tmp_path, digits, capsys):
    images, truth = digits
    ids = write_png_pool(tmp_path / "pool", images[:30])
    seed = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    assert cli.main(["init", str(tmp_path / "wd"), "--pool", str(tmp_path / "pool"), "--labels", str(seed),
                     "--no-progress", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "default recipe" in out and "optimizer = adam" in out
    assert "steps = " in out and "[overridden by your setting]" in out
    config = Workdir(tmp_path / "wd").config
    assert config.optimizer == "adam" and config.steps == 3  # the recipe, under the user's flag
    with pytest.raises(SystemExit):
        cli.main(["init", "--help"])
    help_text = capsys.readouterr().out
    assert "default training recipe" in help_text and "(default: the preset's" in help_text


# ------------------------------------------------------------------------------- train
def test_train_set_changes_settings_for_this_and_later_cycles_and_records_them(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["train", str(wd), "--no-progress", "--set", "lr=0.005", "--set", "wae_iterations=3"]) == 0
    assert "lr=0.005" in capsys.readouterr().out
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    state = Workdir(wd).state()
    assert state["cycles"][1]["settings"] == {"lr": 0.005, "wae_iterations": 3}
    assert "settings" not in state["cycles"][2]
    assert Workdir(wd).config.lr == 0.005 and json.loads((wd / "config.json").read_text())["lr"] == 0.005
    before = fingerprint(wd)
    assert cli.main(["train", str(wd), "--no-progress", "--set", "methods=['vaal']"]) == 2
    assert cli.main(["train", str(wd), "--no-progress", "--set", "no_such_setting=1"]) == 2
    assert fingerprint(wd) == before


def test_train_skips_files_that_became_unreadable_and_records_them(copy, capsys):
    wd, pool, ids, truth = copy
    (pool / ids[50]).write_bytes(b"not an image")   # unlabeled: read by the WAE (subset 0 = every row)
    (pool / ids[3]).write_bytes(b"")                # labeled
    before = fingerprint(wd)
    assert cli.main(["train", str(wd), "--no-progress", "--on-unreadable", "error"]) == 2
    err = capsys.readouterr().err
    assert ids[3] in err and "--on-unreadable skip" in err and fingerprint(wd) == before
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    state = Workdir(wd).state()
    assert set(state["unreadable"]) == {ids[3], ids[50]}
    assert state["cycles"][-1]["trained_on"] == 30 - 6 - 1 and state["labels"][ids[3]] == truth[ids[3]]
    assert {r["id"] for r in _rows(wd / "unreadable.csv")} == {ids[3], ids[50]}
    assert Workdir(wd).status()["pool"]["unreadable"] == 2


def test_select_never_picks_a_file_that_became_unreadable_and_records_it(copy, capsys):
    wd, pool, ids, truth = copy
    broken = ids[60]
    (pool / broken).write_bytes(b"\x89PNG truncated")
    before = fingerprint(wd)
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "69", "--on-unreadable", "error"]) == 2
    assert broken in capsys.readouterr().err and fingerprint(wd) == before
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "69"]) == 0
    assert broken not in _ids(wd / "to_label.csv") and len(_ids(wd / "to_label.csv")) == 69
    assert list(Workdir(wd).state()["unreadable"]) == [broken]
    assert [r["id"] for r in _rows(wd / "unreadable.csv")] == [broken]


# ------------------------------------------------------------------------------- the holdout
def test_the_holdout_estimate_has_a_wilson_interval_and_a_warning_under_50(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["status", str(wd)]) == 0
    out = capsys.readouterr().out
    record = Workdir(wd).state()["cycles"][0]
    lo, hi = wilson_interval(round(record["holdout_accuracy"] * 6), 6)
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}] (95% Wilson interval) on 6 held-out labels" in out
    assert "6 held-out labels (< 50)" in out
    assert wilson_interval(5, 8) == pytest.approx((0.3057, 0.8632), abs=1e-4)


def test_audit_samples_are_uniformly_random_marked_in_the_batch_files_and_join_the_holdout(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "5", "--audit", "4"]) == 0
    rows = _rows(wd / "to_label.csv")
    assert len(rows) == 9 and [r["audit"] for r in rows] == [""] * 5 + ["audit"] * 4
    tasks = json.loads((wd / "label_studio_tasks.json").read_text())
    assert [t["data"].get("audit", False) for t in tasks] == [False] * 5 + [True] * 4
    audit = [r["id"] for r in rows[5:]]
    assert not set(audit) & set(r["id"] for r in rows[:5]) and not set(audit) & set(Workdir(wd).labels)
    returned = write_labels_csv(wd.parent / "ret.csv", [(r["id"], truth[r["id"]]) for r in rows])
    assert cli.main(["label", str(wd), str(returned)]) == 0
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    record = Workdir(wd).state()["cycles"][-1]
    assert record["holdout"] == 6 + 4 and record["trained_on"] == 24 + 5
    bundle = retrospective_bundle(Workdir(wd))  # tavaal advise tests on the same held-out labels
    assert (len(bundle.test), len(bundle.train)) == (6 + 4, 24 + 5)


def test_label_studio_tasks_json_takes_the_image_urls_of_an_import_by_hand(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "3", "--image-root", str(pool.parent)]) == 0
    tasks = json.loads((wd / "label_studio_tasks.json").read_text())
    assert [t["data"]["image"] for t in tasks] == [f"/data/local-files/?d=pool/{quote(t['data']['tavaal_id'])}"
                                                   for t in tasks]
    prefix = "https://images.example/digits/"
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "3", "--image-url-prefix", prefix]) == 0
    tasks = json.loads((wd / "batches" / "batch_01" / "label_studio_tasks.json").read_text())
    assert [t["data"]["image"] for t in tasks] == [prefix + quote(t["data"]["tavaal_id"]) for t in tasks]
    capsys.readouterr()
    before = fingerprint(wd)
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "3", "--image-root", str(pool)]) == 2
    assert "must be a parent folder of the pool" in capsys.readouterr().err and fingerprint(wd) == before


# ------------------------------------------------------------------------------- batch lifecycle
def test_dry_run_shows_the_batch_and_records_and_writes_nothing(copy, capsys):
    wd, pool, ids, truth = copy
    before = fingerprint(wd)
    assert cli.main(["select", str(wd), "--no-progress", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "predicted" in out and fingerprint(wd) == before
    assert cli.main(["select", str(wd), "--no-progress"]) == 0
    dry = [line.split()[1] for line in out.splitlines()[out.splitlines().index(
        next(line for line in out.splitlines() if line.startswith("rank"))) + 1:]]
    assert dry == _ids(wd / "to_label.csv")  # the dry run showed exactly the batch select then made


def test_unselect_returns_pending_samples_and_keeps_what_came_back(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "6"]) == 0
    batch = _ids(wd / "to_label.csv")
    returned = write_labels_csv(wd.parent / "half.csv", [(i, truth[i]) for i in batch[:2]])
    assert cli.main(["label", str(wd), str(returned)]) == 0
    assert cli.main(["unselect", str(wd)]) == 0
    assert "batch 0: 4 pending sample(s) returned to the pool" in capsys.readouterr().out
    status = Workdir(wd).status()
    assert status["out_for_labeling"] == 0 and all(i in Workdir(wd).labels for i in batch[:2])
    assert status["next"].startswith("tavaal train")
    assert cli.main(["unselect", str(wd), "--all"]) == 2  # nothing pending any more
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "68"]) == 0  # every unlabeled one, the 4 included
    assert set(batch[2:]) <= set(_ids(wd / "to_label.csv"))


def test_a_pending_sample_whose_file_was_deleted_stops_being_pending(copy, caplog):
    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "4"]) == 0
    batch = _ids(wd / "to_label.csv")
    (pool / batch[0]).unlink()
    status = Workdir(wd).status()
    assert status["out_for_labeling"] == 3 and status["pool"]["missing_out_for_labeling"] == [batch[0]]
    assert "no longer pending" in caplog.text
    assert status["batches"][0]["pending"] == 3


def test_a_second_select_never_overwrites_the_pending_top_level_file_and_next_names_both(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "4"]) == 0
    first = (wd / "to_label.csv").read_bytes()
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert (wd / "to_label.csv").read_bytes() == first
    second = wd / "batches" / "batch_01" / "to_label.csv"
    assert f"batch 1 is {second}" in out and len(_ids(second)) == 3
    status = Workdir(wd).status()
    assert str(wd / "to_label.csv") in status["next"] and str(second) in status["next"]
    assert [b["file"] for b in status["batches"]] == [str(wd / "to_label.csv"), str(second)]
    labels = write_labels_csv(wd.parent / "all.csv", [(i, truth[i]) for i in _ids(wd / "to_label.csv")])
    assert cli.main(["label", str(wd), str(labels)]) == 0
    assert Workdir(wd).status()["next"] == Workdir(wd).task.returned_hint(wd, str(second))
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "2"]) == 0  # batch 0 is done: replaced now
    assert _ids(wd / "to_label.csv") == _ids(wd / "batches" / "batch_02" / "to_label.csv")


# ------------------------------------------------------------------------------- why picked
def test_the_batch_files_say_what_the_model_predicts_and_the_score_components(copy, capsys):
    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--save-scores"]) == 0
    rows = _rows(wd / "to_label.csv")
    classes = Workdir(wd).state()["classes"]
    assert all(r["predicted"] in classes and 0 < float(r["probability"]) <= 1 for r in rows)
    assert all(r["d"] == r["score"] and r["r"] for r in rows)  # TA-VAAL: D's probability and the rank r
    tasks = json.loads((wd / "label_studio_tasks.json").read_text())
    assert [t["data"]["predicted"] for t in tasks] == [r["predicted"] for r in rows]
    assert all("score_r" in t["data"] and "score_d" in t["data"] for t in tasks)
    scores = _rows(wd / "batches" / "batch_00" / "scores.csv")
    taken = set(Workdir(wd).state()["labels"])
    assert len(scores) == 100 - 30 and not {s["id"] for s in scores} & taken
    picked = {r["id"]: float(r["score"]) for r in rows}
    assert max(picked.values()) <= min(float(s["score"]) for s in scores if s["id"] not in picked)
    assert cli.main(["select", str(wd), "--no-progress", "--dry-run", "--save-scores"]) == 2


def test_a_loop_export_names_its_classes_and_score_leaves_the_labeled_and_pending_out(copy, capsys):
    from tavaal.artifacts import load_manifest
    from tavaal.export import main as export_main
    from tavaal.score import main as score_main

    wd, pool, ids, truth = copy
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "10"]) == 0
    art = wd.parent / "art"
    assert export_main([str(wd), "--out", str(art), "--formats", "torchscript", "-q"]) == 0
    assert load_manifest(art)["class_names"] == Workdir(wd).state()["classes"]
    taken = set(Workdir(wd).labels) | set(_ids(wd / "to_label.csv"))
    out = wd.parent / "picked.csv"
    common = [str(art), "--pool", str(pool), "--budget", "60", "--method", "tavaal", "--backend", "torchscript",
              "--no-verify", "--workers", "0"]
    assert score_main(common + ["--out", str(out)]) == 0
    assert "excluding 40 labeled or pending samples" in capsys.readouterr().err
    assert len(_ids(out)) == 60 and not set(_ids(out)) & taken
    assert score_main(common + ["--out", str(out), "--include-workdir-samples"]) == 0
    assert set(_ids(out)) & taken


# ------------------------------------------------------------------------------- done means
def _messy_pool(root: Path, images, truth):
    """Digits as files of mixed sizes and modes, unicode and space-containing names, a
    truncated JPEG and a zero-byte PNG; a ``filename,class`` seed sheet in NFD."""
    pool = root / "pool"
    pool.mkdir()
    names = {}
    for k, img in enumerate(images):
        if k % 5 == 1:
            name = f"été {k:03d}.png"
            Image.fromarray(img, "L").convert("RGB").resize((12, 12)).save(pool / name)
        elif k % 5 == 2:
            name = f"photo {k:03d}.jpg"
            Image.fromarray(img, "L").convert("RGB").resize((10, 8)).save(pool / name, quality=95)
        elif k % 5 == 3:
            name = f"img_{k:03d}.png"
            Image.fromarray(img, "L").convert("P").save(pool / name)
        else:
            name = f"img_{k:03d}.png"
            Image.fromarray(img, "L").save(pool / name)
        names[name] = truth[k]
    (pool / "truncated.jpg").write_bytes(_jpeg_bytes(images[0], (64, 64))[:300])
    (pool / "zero.png").write_bytes(b"")
    seed = root / "seed.csv"
    with open(seed, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "class"])
        for name in list(names)[:30]:
            writer.writerow([unicodedata.normalize("NFD", name), names[name]])
    return pool, seed, names


def test_a_messy_pool_runs_init_train_select_unselect_label_and_no_batch_holds_a_broken_file(
        tmp_path, digits, capsys):
    images, truth = digits
    pool, seed, names = _messy_pool(tmp_path, images[:80], truth)
    wd = tmp_path / "wd"
    assert cli.main(["init", str(wd), "--pool", str(pool), "--labels", str(seed), "--holdout", "5",
                     "--no-progress", *FLAGS]) == 0
    out = capsys.readouterr().out
    assert "truncated.jpg" in out and "zero.png" in out and "images decoded to 3x8x8" in out  # 3 of 5 colour, 3 of 5 8x8
    assert Workdir(wd).labels == {n: names[n] for n in list(names)[:30]}  # NFD ids matched the NFC files
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "10", "--audit", "2"]) == 0
    first = _ids(wd / "to_label.csv")
    assert cli.main(["unselect", str(wd)]) == 0
    assert cli.main(["select", str(wd), "--no-progress", "--budget", "10"]) == 0
    batch = _ids(wd / "to_label.csv")
    assert not {"truncated.jpg", "zero.png"} & set(first + batch) and set(batch) <= set(names)
    sheet = tmp_path / "returned.csv"
    with open(sheet, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "category"])
        for k, ident in enumerate(batch):
            writer.writerow([unicodedata.normalize("NFD", ident), names[ident] if k % 2 == 0 else ""])
    assert cli.main(["label", str(wd), str(sheet)]) == 0
    assert len(Workdir(wd).labels) == 30 + 5
    assert cli.main(["train", str(wd), "--no-progress"]) == 0
    assert cli.main(["status", str(wd)]) == 0
