"""The labeling loop end to end: an oracle that answers from hidden labels drives the CLI loop
(init -> train -> select -> label, 3 cycles) on digits written as PNG files and as an .npy pool;
with the same seed and settings (holdout 0) its picks equal the simulated ``tavaal.train`` run on
the same data. Also: invariants with a holdout, select errors, export of a work directory."""
import csv
import json

import numpy as np
import pytest

from tavaal import cli
from tavaal.config import resolve_config
from tavaal.experiment import initial_pool, run_experiment
from tavaal.loop import LoopError, Workdir
from tavaal.rundir import read_json

from loop_fixtures import TINY, TINY_FLAGS, Oracle, digits_uint8, fingerprint, write_labels_csv, write_png_pool

N, INITIAL, BUDGET, CYCLES = 300, 40, 20, 3


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Pools of the same 300 digits as PNG files and as an .npy array, plus the hidden labels."""
    root = tmp_path_factory.mktemp("digits")
    images, targets = digits_uint8(N + 100)
    ids = write_png_pool(root / "pngs", images[:N])
    np.save(root / "pool.npy", images[:N, None])
    return {"root": root, "images": images, "targets": targets, "png_ids": ids}


def _read_ids(path):
    with open(path, newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def drive_cli_loop(workdir, pool, id_of_row, truth, seed_rows, extra=()):
    """The oracle script: init, then CYCLES x (train, select, label from hidden labels)."""
    seed = write_labels_csv(workdir.parent / f"{workdir.name}-seed.csv", [(id_of_row(r), truth[id_of_row(r)])
                                                                           for r in seed_rows])
    assert cli.main(["init", str(workdir), "--pool", str(pool), "--labels", str(seed), "--holdout", "0",
                     "--method", "tavaal", *TINY_FLAGS, *extra]) == 0
    oracle = Oracle(truth)
    batches = []
    for cycle in range(CYCLES):
        assert cli.main(["train", str(workdir), "--no-progress"]) == 0
        assert cli.main(["select", str(workdir), "--budget", str(BUDGET), "--no-progress"]) == 0
        batches.append(_read_ids(workdir / "to_label.csv"))
        returned = oracle.answer(workdir / "to_label.csv", workdir.parent / f"{workdir.name}-returned-{cycle}.csv")
        assert cli.main(["label", str(workdir), str(returned)]) == 0
    return batches, oracle


@pytest.fixture(scope="module")
def simulation(digits, tmp_path_factory):
    """The simulated run (oracle inside tavaal.train) on the same 300 digits as an npz data set."""
    root = tmp_path_factory.mktemp("sim")
    images, targets = digits["images"], digits["targets"]
    # the loop normalises a uint8 pool with statistics computed at init: the simulation gets the same
    # and the settings the loop resolves (the default recipe under TINY) for INITIAL labels of 10 classes
    probe = Workdir.init(root / "probe", digits["root"] / "pool.npy",
                         write_labels_csv(root / "p.csv", [(str(r), str(targets[r])) for r in range(INITIAL)]),
                         holdout=0, overrides=TINY)
    np.savez(root / "digits.npz", X=images[:N, None], y=targets[:N], X_test=images[N:, None], y_test=targets[N:])
    config = resolve_config(None, dict(probe.config.to_dict(), dataset="npz", data_dir=str(root / "digits.npz"),
                                       methods=["tavaal"], cycles=CYCLES, initial=INITIAL, budget=BUDGET, trials=1,
                                       dataset_options={"mean": probe.meta["mean"], "std": probe.meta["std"]}))
    run_experiment(config, root / "run", progress=False)
    trial = root / "run" / "tavaal" / "trial_0"
    picks = [read_json(trial / f"selected_cycle_{c:02d}.json") for c in range(CYCLES)]
    return {"config": config, "picks": picks, "initial": initial_pool(config, N, 0).labeled.tolist()}


def test_oracle_drives_the_cli_loop_on_png_files_and_picks_what_the_simulation_picks(digits, simulation, tmp_path):
    truth = {i: str(t) for i, t in zip(digits["png_ids"], digits["targets"][:N])}
    batches, oracle = drive_cli_loop(tmp_path / "wd", digits["root"] / "pngs", lambda r: digits["png_ids"][r],
                                     truth, simulation["initial"])
    rows = [[digits["png_ids"].index(i) for i in batch] for batch in batches]
    assert rows == simulation["picks"]
    wd = Workdir(tmp_path / "wd")
    assert len(wd.labels) == INITIAL + CYCLES * BUDGET
    assert [c["labeled"] for c in wd.state()["cycles"]] == [INITIAL + c * BUDGET for c in range(CYCLES)]


def test_oracle_drives_the_cli_loop_on_an_npy_pool_with_the_same_picks(digits, simulation, tmp_path):
    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    batches, _ = drive_cli_loop(tmp_path / "wd", digits["root"] / "pool.npy", str, truth, simulation["initial"])
    assert [[int(i) for i in batch] for batch in batches] == simulation["picks"]


def test_with_a_holdout_the_loop_keeps_its_invariants(digits, tmp_path):
    """A holdout changes the training set (so the picks may differ from the simulation); what must
    hold: labeled-set sizes, disjoint batches, nothing picked that is labeled, no label the oracle
    was not asked for."""
    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    seed_rows = list(range(0, 2 * INITIAL, 2))
    batches, oracle = drive_cli_loop(tmp_path / "wd", digits["root"] / "pool.npy", str, truth, seed_rows,
                                     extra=("--holdout", "8", "--classes", ",".join(map(str, range(10)))))
    wd = Workdir(tmp_path / "wd")
    state = wd.state()
    assert [len(b) for b in batches] == [BUDGET] * CYCLES
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat)                                   # disjoint batches
    assert not set(flat) & {str(r) for r in seed_rows}                   # never re-picks a labeled sample
    assert set(state["labels"]) == {str(r) for r in seed_rows} | set(oracle.asked)  # no other label exists
    cycles = state["cycles"]
    assert [c["trained_on"] for c in cycles] == [INITIAL - 8 + c * BUDGET for c in range(CYCLES)]
    assert all(c["holdout"] == 8 and 0.0 <= c["holdout_accuracy"] <= 1.0 for c in cycles)
    assert not set(wd.meta["holdout"]) & set(flat)


def test_select_refusals_leave_the_work_directory_unchanged(digits, tmp_path, capsys):
    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    seed = write_labels_csv(tmp_path / "seed.csv", [(str(r), truth[str(r)]) for r in range(30)])
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy", seed, holdout=0, overrides=TINY)
    wd.train()
    before = fingerprint(wd.root)
    for args, message in ((["--budget", str(N)], "exceeds the 270 samples left to label"),
                          (["--budget", "0"], "positive"),
                          (["--budget", "20", "--subset", "10"], "smaller than --budget"),
                          (["--budget", "5", "--method", "vaal"], "run tavaal train WORKDIR --method vaal")):
        assert cli.main(["select", str(wd.root), "--no-progress", *args]) == 2, args
        assert message in capsys.readouterr().err, args
        assert fingerprint(wd.root) == before, args
    # a second batch excludes the first (out for labeling) and both are recorded
    first = wd.select(10).ids
    second = wd.select(10, method="random").ids
    assert not set(first) & set(second)
    assert wd.status()["out_for_labeling"] == 20 and "tavaal label" in wd.status()["next"]


def test_export_accepts_a_work_directory(digits, tmp_path):
    from tavaal.artifacts import load_manifest
    from tavaal.export import main as export_main

    pytest.importorskip("onnxruntime")
    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy",
                      write_labels_csv(tmp_path / "s.csv", [(str(r), truth[str(r)]) for r in range(30)]),
                      holdout=0, overrides=TINY)
    wd.train()
    assert export_main([str(wd.root), "--out", str(tmp_path / "art"), "--formats", "torchscript", "-q"]) == 0
    manifest = load_manifest(tmp_path / "art")
    assert "tavaal" in manifest["methods"] and manifest["input"]["shape"] == [1, 8, 8]
    assert manifest["input"]["mean"] == wd.meta["mean"]


def test_a_user_model_with_two_tapped_layers_runs_the_whole_loop_from_python_and_exports(digits, tmp_path):
    import torch

    from tavaal.artifacts import load_manifest
    from tavaal.export import export_run
    from tavaal.scoring import Scorer, open_source, select_from_pool

    from loop_fixtures import tiny_cnn

    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    initial = tiny_cnn(10)
    torch.save(initial.state_dict(), tmp_path / "init.pt")  # initial weights from a state-dict file
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy",
                      write_labels_csv(tmp_path / "s.csv", [(str(r), truth[str(r)]) for r in range(30)]),
                      holdout=5, overrides=TINY, model="loop_fixtures:tiny_cnn", taps=["block1", "block2"],
                      weights=str(tmp_path / "init.pt"))
    assert wd.meta["user_model"]["taps"] == ["block1", "block2"]
    oracle = Oracle(truth)
    for cycle in range(2):
        record = wd.train()
        assert record["holdout_accuracy"] is not None
        batch = wd.select(10)
        assert len(batch.ids) == 10
        wd.label(oracle.answer(wd.root / "to_label.csv", tmp_path / f"r{cycle}.csv"))
    coreset = wd.select(5, method="coreset")   # core-set reads the model's feature layer
    assert not set(coreset.ids) & set(wd.labels)
    manifest = export_run(wd.root, tmp_path / "art", formats=("torchscript",))
    assert manifest["spec"]["user_model"]["factory"] == "loop_fixtures:tiny_cnn"
    scorer = Scorer.from_artifacts(tmp_path / "art", backend="torchscript")
    picks = select_from_pool(scorer, open_source(digits["root"] / "pool.npy"), "tavaal", 5)
    assert len(picks.rows) == 5 and load_manifest(tmp_path / "art")["input"]["shape"] == [1, 8, 8]


def test_a_model_that_cannot_be_tapped_is_refused_at_init(digits, tmp_path):
    seed = write_labels_csv(tmp_path / "s.csv", [(str(r), str(digits["targets"][r])) for r in range(30)])
    with pytest.raises(LoopError, match="no submodule named 'block9'"):
        Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy", seed, model="loop_fixtures:tiny_cnn",
                     taps=["block1", "block9"])
    assert not (tmp_path / "wd").exists()


@pytest.mark.parametrize("method", ["entropy", "margin", "coreset", "random"])
def test_select_runs_any_method_the_trained_models_support(digits, tmp_path, method):
    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy",
                      write_labels_csv(tmp_path / "s.csv", [(str(r), truth[str(r)]) for r in range(30)]),
                      holdout=0, overrides=TINY)
    wd.train()
    batch = wd.select(12, method=method)
    assert len(set(batch.ids)) == 12 and not set(batch.ids) & set(wd.labels)
    assert wd.state()["batches"][-1]["method"] == method


@pytest.mark.ray
@pytest.mark.slow
def test_select_on_ray_picks_what_one_process_picks_from_the_same_artifacts(digits, tmp_path, ray_cluster):
    """--ray exports the cycle once (TorchScript) and scores on actors; the single-process
    selection from the same artifacts is the reference (same candidates, same graphs)."""
    from tavaal.data.candidates import draw_candidates
    from tavaal.scoring import Scorer, open_source, select_from_pool

    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy",
                      write_labels_csv(tmp_path / "s.csv", [(str(r), truth[str(r)]) for r in range(30)]),
                      holdout=0, overrides=TINY)
    record = wd.train()
    batch = wd.select(10, subset=100, ray="local:2", ray_actors=2)
    artifacts = wd.root / "tavaal" / "trial_0" / "artifacts_cycle_00"
    reference = select_from_pool(Scorer.from_artifacts(artifacts, backend="torchscript"),
                                 open_source(digits["root"] / "pool.npy"), "tavaal", 10, subset=100,
                                 seed=record["seed"], labeled=np.arange(30))
    assert batch.ids == [str(r) for r in reference.rows]
    assert set(int(i) for i in batch.ids) <= set(draw_candidates(N, np.arange(30), 100,
                                                                 np.random.default_rng(record["seed"])).tolist())


def test_an_interrupted_train_keeps_the_last_committed_state_and_can_be_rerun(digits, tmp_path, monkeypatch):
    from tavaal.loop.state import WorkdirFiles

    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy",
                      write_labels_csv(tmp_path / "s.csv", [(str(r), truth[str(r)]) for r in range(30)]),
                      holdout=0, overrides=TINY)
    state_before = (wd.root / "state.json").read_bytes()

    def interrupted(self, state):
        raise KeyboardInterrupt("Ctrl-C just before the commit")

    monkeypatch.setattr(WorkdirFiles, "commit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        wd.train()
    monkeypatch.undo()
    assert (wd.root / "state.json").read_bytes() == state_before and wd.state()["cycles"] == []
    assert wd.train()["cycle"] == 0  # the interrupted cycle is simply trained again


@pytest.mark.gpu
def test_the_loop_trains_and_selects_on_cuda(digits, tmp_path):
    truth = {str(r): str(t) for r, t in enumerate(digits["targets"][:N])}
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pool.npy",
                      write_labels_csv(tmp_path / "s.csv", [(str(r), truth[str(r)]) for r in range(30)]),
                      holdout=5, overrides=dict(TINY, device="cuda"))
    record = wd.train()
    assert 0.0 <= record["holdout_accuracy"] <= 1.0
    batch = wd.select(10)
    assert len(set(batch.ids)) == 10 and not set(batch.ids) & set(wd.labels)


def test_a_label_studio_round_trip_import_file_to_export_merges(digits, tmp_path, capsys):
    """select writes a Label Studio import file; what Label Studio exports after annotation
    (JSON export, one cancelled and one unannotated task among them) is what label reads."""
    truth = {i: str(t) for i, t in zip(digits["png_ids"], digits["targets"][:N])}
    seed = write_labels_csv(tmp_path / "s.csv", [(i, truth[i]) for i in digits["png_ids"][:30]])
    wd = Workdir.init(tmp_path / "wd", digits["root"] / "pngs", seed, holdout=0, overrides=TINY)
    wd.train()
    batch = wd.select(8)
    tasks = json.loads((wd.root / "label_studio_tasks.json").read_text())
    assert [t["data"]["tavaal_id"] for t in tasks] == batch.ids
    assert all(t["data"]["image"].endswith(t["data"]["tavaal_id"]) for t in tasks)
    export = []
    for k, task in enumerate(tasks):
        ident = task["data"]["tavaal_id"]
        annotations = [{"was_cancelled": k == 1,
                        "result": [{"type": "choices", "from_name": "c", "to_name": "image",
                                    "value": {"choices": [truth[ident]]}}]}] if k != 2 else []
        export.append(dict(task, id=100 + k, annotations=annotations))
    (tmp_path / "export.json").write_text(json.dumps(export))
    assert cli.main(["label", str(wd.root), str(tmp_path / "export.json")]) == 0
    assert "merged 6 new label(s)" in capsys.readouterr().out
    assert wd.status()["out_for_labeling"] == 2  # the cancelled and the unannotated task are still out
