"""The work directory of the labeling loop: init validates before writing, label merges are
atomic and idempotent, every refused request leaves WORKDIR byte-identical, the pool-change
rule, status. (Training and selection: tests/test_loop_cycle.py.)"""
import json
import os

import numpy as np
import pytest

from tavaal import cli
from tavaal.loop import LoopError, Workdir
from tavaal.loop import state as state_module

from loop_fixtures import digits_uint8, fingerprint, write_labels_csv, write_png_pool


@pytest.fixture
def png_pool(tmp_path):
    images, targets = digits_uint8(60)
    ids = write_png_pool(tmp_path / "pool", images)
    return tmp_path / "pool", ids, [str(t) for t in targets]


@pytest.fixture
def workdir(tmp_path, png_pool):
    pool, ids, truth = png_pool
    labels = write_labels_csv(tmp_path / "seed.csv", list(zip(ids[:20], truth[:20])))
    return Workdir.init(tmp_path / "wd", pool, labels, holdout=0), ids, truth


def test_init_writes_a_versioned_work_directory_with_the_labels_and_classes(workdir):
    wd, ids, truth = workdir
    meta = json.loads((wd.root / "workdir.json").read_text())
    assert meta["format"] == "tavaal-workdir" and meta["version"] == 1
    assert meta["pool"]["size"] == 60 and meta["input_shape"] == [1, 8, 8]
    assert len(meta["mean"]) == 1 and meta["std"][0] > 0  # uint8 pool: statistics computed at init
    state = wd.state()
    assert state["labels"] == dict(zip(ids[:20], truth[:20]))
    assert state["classes"] == sorted(set(truth[:20]), key=int)
    assert (wd.root / "labels.csv").read_text().splitlines()[1] == f"{ids[0]},{truth[0]}"
    assert (wd.root / "config.json").exists() and (wd.root / "pool_ids.txt").read_text().split() == ids


def test_init_refuses_bad_labels_with_every_offending_line_and_writes_nothing(tmp_path, png_pool):
    pool, ids, truth = png_pool
    labels = write_labels_csv(tmp_path / "bad.csv", [(ids[0], "1"), ("missing.png", "2"), (ids[1], "3"),
                                                     ("other.png", "5")])
    with pytest.raises(LoopError) as info:
        Workdir.init(tmp_path / "wd", pool, labels)
    text = str(info.value)
    assert "line 3: id 'missing.png' is not in the pool" in text
    assert "line 5: id 'other.png'" in text and len(info.value.problems) == 2
    assert not (tmp_path / "wd").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".wd")] == []  # no half-made directory


def test_init_refuses_disagreeing_answers_for_one_sample_naming_both_lines(tmp_path, png_pool):
    pool, ids, truth = png_pool
    labels = write_labels_csv(tmp_path / "bad.csv", [(ids[0], "1"), (ids[1], "3"), (ids[1], "4")])
    with pytest.raises(LoopError) as info:
        Workdir.init(tmp_path / "wd", pool, labels)
    assert "img_0001.png: '3' (line 3), '4' (line 4)" in str(info.value) and "--on-disagreement" in str(info.value)
    assert not (tmp_path / "wd").exists()


def test_init_with_classes_rejects_unknown_labels_and_warns_on_empty_classes(tmp_path, png_pool, caplog):
    pool, ids, truth = png_pool
    labels = write_labels_csv(tmp_path / "l.csv", [(ids[0], "cat"), (ids[1], "dog"), (ids[2], "emu")])
    with pytest.raises(LoopError, match="unknown class 'emu'") as info:
        Workdir.init(tmp_path / "wd", pool, labels, classes=["cat", "dog", "bird"])
    assert "name it in --classes" in str(info.value) and "--add-classes" not in str(info.value)  # a hint of init
    labels = write_labels_csv(tmp_path / "l.csv", [(ids[0], "cat"), (ids[1], "dog")])
    wd = Workdir.init(tmp_path / "wd", pool, labels, classes=["cat", "dog", "bird"], holdout=0)
    assert wd.state()["classes"] == ["cat", "dog", "bird"]
    assert "no labeled sample yet: bird" in caplog.text


def test_init_refuses_an_existing_work_directory_or_a_non_empty_folder(workdir, tmp_path, png_pool):
    wd, ids, truth = workdir
    labels = write_labels_csv(tmp_path / "l.csv", [(ids[0], "0")])
    with pytest.raises(LoopError, match="already a tavaal work directory"):
        Workdir.init(wd.root, png_pool[0], labels)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(LoopError, match="not an empty directory"):
        Workdir.init(tmp_path / "busy", png_pool[0], labels)


def test_holdout_is_a_seeded_part_of_the_initial_labels(tmp_path, png_pool):
    pool, ids, truth = png_pool
    labels = write_labels_csv(tmp_path / "l.csv", list(zip(ids[:20], truth[:20])))
    a = Workdir.init(tmp_path / "a", pool, labels, holdout=5)
    b = Workdir.init(tmp_path / "b", pool, labels, holdout=5)
    c = Workdir.init(tmp_path / "c", pool, labels, holdout=0.25)
    assert a.meta["holdout"] == b.meta["holdout"] and len(a.meta["holdout"]) == 5
    assert len(c.meta["holdout"]) == 5 and set(a.meta["holdout"]) <= set(ids[:20])
    with pytest.raises(LoopError, match="leaves no labeled sample"):
        Workdir.init(tmp_path / "d", pool, labels, holdout=20)


def test_label_merges_new_labels_and_merging_the_same_file_again_changes_nothing(workdir, tmp_path):
    wd, ids, truth = workdir
    returned = write_labels_csv(tmp_path / "r.csv", list(zip(ids[20:25], truth[20:25])))
    report = wd.label(returned)
    assert (report.added, report.unchanged) == (5, 0)
    assert wd.labels == dict(zip(ids[:25], truth[:25]))
    before = fingerprint(wd.root)
    again = wd.label(returned)
    assert (again.added, again.unchanged, again.changed) == (0, 5, False)
    assert fingerprint(wd.root) == before  # idempotent: not a byte changed


def test_an_id_outside_every_selected_batch_is_accepted_with_a_warning(workdir, tmp_path):
    wd, ids, truth = workdir
    report = wd.label(write_labels_csv(tmp_path / "r.csv", [(ids[30], truth[30])]))
    assert report.added == 1 and any("not in a selected batch" in w for w in report.warnings)


def _bad_label_files(tmp_path, ids, truth):
    lines = {
        "unknown id": [(ids[20], truth[20]), ("nope.png", "1")],
        "conflicting relabel": [(ids[0], str((int(truth[0]) + 1) % 10))],
        "conflict within the file": [(ids[21], "1"), (ids[21], "2")],
        "unknown class": [(ids[22], "zebra")],
    }
    files = {name: write_labels_csv(tmp_path / f"{k}.csv", pairs) for k, (name, pairs) in enumerate(lines.items())}
    (tmp_path / "malformed.csv").write_text("id,label\na,b,c\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.json").write_text("[{")
    files.update({"malformed": tmp_path / "malformed.csv", "empty": tmp_path / "empty.csv",
                  "broken json": tmp_path / "broken.json", "missing file": tmp_path / "absent.csv"})
    return files


def test_every_bad_label_file_is_refused_and_leaves_the_work_directory_byte_identical(workdir, tmp_path):
    wd, ids, truth = workdir
    before = fingerprint(wd.root)
    for name, path in _bad_label_files(tmp_path, ids, truth).items():
        with pytest.raises(LoopError):
            wd.label(path)
        assert fingerprint(wd.root) == before, name


def test_cli_label_errors_exit_2_with_one_error_block_and_no_change(workdir, tmp_path, capsys):
    wd, ids, truth = workdir
    before = fingerprint(wd.root)
    for name, path in _bad_label_files(tmp_path, ids, truth).items():
        assert cli.main(["label", str(wd.root), str(path)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err, name
        assert fingerprint(wd.root) == before, name


def test_add_classes_appends_new_classes_keeping_the_old_indices(workdir, tmp_path):
    wd, ids, truth = workdir
    classes = wd.state()["classes"]
    report = wd.label(write_labels_csv(tmp_path / "r.csv", [(ids[40], "zebra"), (ids[41], "ant")]), add_classes=True)
    assert report.new_classes == ["ant", "zebra"]
    assert wd.state()["classes"] == classes + ["ant", "zebra"]


def test_an_interrupted_merge_leaves_the_previous_state_intact(workdir, tmp_path, monkeypatch):
    wd, ids, truth = workdir
    before = fingerprint(wd.root)
    returned = write_labels_csv(tmp_path / "r.csv", list(zip(ids[20:30], truth[20:30])))

    real_replace = os.replace

    def crash(src, dst):  # the process dies while the new state.json is being put in place
        if str(dst).endswith("state.json"):
            raise KeyboardInterrupt("simulated crash mid-merge")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        wd.label(returned)
    monkeypatch.undo()
    assert fingerprint(wd.root) == before  # no temp file left, old state in force
    assert Workdir(wd.root).labels == dict(zip(ids[:20], truth[:20]))
    assert wd.label(returned).added == 10  # and the merge can simply be run again


def test_pool_change_rule_new_files_join_removed_labeled_files_are_reported(workdir, tmp_path, caplog):
    wd, ids, truth = workdir
    pool = tmp_path / "pool"
    images, _ = digits_uint8(70)
    write_png_pool(pool, images[60:], start=60)   # 10 files added since init
    os.remove(pool / ids[3])                       # a labeled file removed
    status = wd.status()
    assert status["pool"]["size"] == 69
    assert status["pool"]["added_since_init"] == 10 and status["pool"]["removed_since_init"] == 1
    assert status["pool"]["missing_labeled"] == [ids[3]]
    assert ids[3] in wd.labels  # the label is kept, never silently dropped
    assert "no longer in the pool" in caplog.text and ids[3] in wd.status_text()
    # a new file can be labeled like any other unlabeled sample
    assert wd.label(write_labels_csv(tmp_path / "r.csv", [("img_0065.png", "3")])).added == 1


def test_array_pool_appended_rows_join_the_pool(tmp_path):
    images, targets = digits_uint8(50)
    np.save(tmp_path / "pool.npy", images[:40, None])
    wd = Workdir.init(tmp_path / "wd", tmp_path / "pool.npy",
                      write_labels_csv(tmp_path / "l.csv", [(str(i), str(targets[i])) for i in range(10)]), holdout=0)
    assert wd.state()["labels"]["3"] == str(targets[3])
    np.save(tmp_path / "pool.npy", images[:, None])
    assert wd.status()["pool"]["added_since_init"] == 10
    assert wd.label(write_labels_csv(tmp_path / "r.csv", [("45", "1")])).added == 1
    with pytest.raises(LoopError, match="'50' is not in the pool"):
        wd.label(write_labels_csv(tmp_path / "r2.csv", [("50", "1")]))


def test_status_says_what_to_do_next(workdir, capsys):
    wd, ids, truth = workdir
    assert wd.status()["next"] == f"tavaal train {wd.root}"
    assert cli.main(["status", str(wd.root)]) == 0
    out = capsys.readouterr().out
    assert "labeled 20" in out and "cycles: 0" in out and f"next: tavaal train {wd.root}" in out


def test_commands_on_a_folder_that_is_not_a_work_directory_fail_clearly(tmp_path, capsys):
    for command in (["status", str(tmp_path)], ["train", str(tmp_path)], ["select", str(tmp_path), "--budget", "3"]):
        assert cli.main(command) == 2
        assert "not a tavaal work directory" in capsys.readouterr().err


def test_select_before_any_training_is_refused(workdir):
    wd, _, _ = workdir
    before = fingerprint(wd.root)
    with pytest.raises(LoopError, match="no trained models yet"):
        wd.select(5)
    assert fingerprint(wd.root) == before


def test_a_second_command_on_a_busy_work_directory_is_refused(workdir, tmp_path):
    wd, ids, truth = workdir
    with wd.files.lock():
        with pytest.raises(LoopError, match="in use by another tavaal command"):
            wd.label(write_labels_csv(tmp_path / "r.csv", [(ids[30], truth[30])]))


def test_the_state_file_carries_its_format_and_version(workdir):
    wd, _, _ = workdir
    state = json.loads((wd.root / "state.json").read_text())
    assert state["format"] == state_module.STATE_FORMAT and state["version"] == state_module.VERSION
    state["version"] = 99
    (wd.root / "state.json").write_text(json.dumps(state))
    with pytest.raises(LoopError, match="version 99"):
        wd.status()


@pytest.mark.parametrize("command", ["simulate", "train"])
def test_the_simulation_keeps_working_as_tavaal_simulate_and_tavaal_train_with_options(tmp_path, command):
    out = tmp_path / command
    assert cli.main([command, "--dataset", "moons", "--method", "random", "--cycles", "1", "--trials", "1",
                     "--epochs", "1", "--out", str(out), "--no-plots", "--no-progress"]) == 0
    assert (out / "metrics.jsonl").exists() and not (out / "workdir.json").exists()


def test_tavaal_without_a_command_prints_the_usage_with_the_loop_first(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert out.index("init") < out.index("simulate")
    assert cli.main(["bogus"]) == 2


def test_the_console_command_runs_in_its_own_process(workdir, tmp_path):
    import subprocess
    import sys

    wd, ids, truth = workdir
    ok = subprocess.run([sys.executable, "-m", "tavaal.cli", "status", str(wd.root)], capture_output=True, text=True)
    assert ok.returncode == 0 and "next: tavaal train" in ok.stdout
    bad = write_labels_csv(tmp_path / "bad.csv", [("nope.png", "1")])
    before = fingerprint(wd.root)
    refused = subprocess.run([sys.executable, "-m", "tavaal.cli", "label", str(wd.root), str(bad)],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "'nope.png' is not in the pool" in refused.stderr
    assert fingerprint(wd.root) == before
