"""Active-learning cycles end to end: run directory, metrics, resume, errors, CLI."""
import json

import pytest

from tavaal import train
from tavaal.config import resolve_config
from tavaal.experiment import Experiment, RunExistsError, run_experiment
from tavaal.rundir import RunDirectory, read_json

TINY_MOONS = {"trials": 1, "cycles": 3, "epochs": 8, "wae_iterations": 12}


def tiny(preset="moons", **overrides):
    values = dict(TINY_MOONS)
    values.update(overrides)
    return resolve_config(preset, values)


def labeled_after(run_dir, method, trial=0):
    return RunDirectory(run_dir).load_state(method, trial)["pool"]["labeled"]


def test_moons_run_records_every_cycle_of_every_method(tmp_path):
    methods = ["random", "entropy", "mcdropout", "coreset", "lloss", "lloss2", "vaal", "tavaal"]
    records = run_experiment(tiny(methods=methods, cycles=2), tmp_path / "run", progress=False)
    assert len(records) == len(methods) * 2
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines == records
    for r in records:
        assert {"method", "trial", "cycle", "labeled", "accuracy", "selection_seconds"} <= set(r)
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["labeled"] == 20 + 10 * r["cycle"]
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("method,trial,cycle,labeled,accuracy")
    for method in methods:
        trial_dir = tmp_path / "run" / method / "trial_0"
        labeled0 = read_json(trial_dir / "labeled_cycle_00.json")
        selected0 = read_json(trial_dir / "selected_cycle_00.json")
        assert read_json(trial_dir / "labeled_cycle_01.json") == sorted(labeled0 + selected0)
        assert (trial_dir / "checkpoint.pt").exists()


def test_every_method_of_a_trial_starts_from_the_same_initial_set(tmp_path):
    run_experiment(tiny(methods=["random", "tavaal"], cycles=1), tmp_path / "run", progress=False)
    a = read_json(tmp_path / "run" / "random" / "trial_0" / "labeled_cycle_00.json")
    b = read_json(tmp_path / "run" / "tavaal" / "trial_0" / "labeled_cycle_00.json")
    assert a == b and len(a) == 20


def test_digits_tavaal_run_end_to_end(tmp_path):
    config = tiny("digits", methods=["tavaal"], cycles=2, epochs=1, wae_iterations=3, initial=50, budget=50, subset=200)
    records = run_experiment(config, tmp_path / "run", progress=False)
    assert [r["labeled"] for r in records] == [50, 100]


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path):
    config = tiny(methods=["coreset", "tavaal"], trials=2)
    run_experiment(config, tmp_path / "full", progress=False)

    seen = []

    def crash_after_two_cycles(record):
        seen.append(record)
        if len(seen) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(config, tmp_path / "resumed", progress=False, on_cycle_end=crash_after_two_cycles)
    assert RunDirectory(tmp_path / "resumed").load_state("coreset", 0)["completed_cycles"] == 2
    records = run_experiment(config, tmp_path / "resumed", progress=False, resume=True)
    for method in ("coreset", "tavaal"):
        for trial in range(2):
            assert labeled_after(tmp_path / "resumed", method, trial) == labeled_after(tmp_path / "full", method, trial)
    full = {(r["method"], r["trial"], r["cycle"]): r["accuracy"] for r in
            RunDirectory(tmp_path / "full").all_records(["coreset", "tavaal"], 2)}
    assert {(r["method"], r["trial"], r["cycle"]): r["accuracy"] for r in records} == full
    assert len((tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()) == len(full)


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path):
    run_experiment(tiny(methods=["random"], cycles=1), tmp_path / "run", progress=False)
    with pytest.raises(RunExistsError, match="--resume"):
        Experiment(tiny(methods=["random"], cycles=1), tmp_path / "run")


def test_a_pool_too_small_for_the_cycles_is_rejected_before_training(tmp_path):
    with pytest.raises(ValueError, match="need 20020 samples but the training set has 550"):
        Experiment(tiny(cycles=2, budget=10000, subset=0), tmp_path / "run")


def test_cli_runs_a_comparison_and_writes_plots(tmp_path, capsys):
    out = tmp_path / "cli"
    code = train.main(["--dataset", "moons", "--methods", "random,tavaal", "--trials", "2", "--cycles", "2",
                       "--epochs", "5", "--wae-iterations", "5", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "selection" in printed
    for name in ("config.json", "metrics.jsonl", "metrics.csv", "summary.csv", "accuracy.png",
                 "improvement.png", "selection_scatter.png"):
        assert (out / name).exists(), name
    assert read_json(out / "config.json")["methods"] == ["random", "tavaal"]


def test_cli_resume_continues_with_the_saved_configuration(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--dataset", "moons", "--method", "random", "--cycles", "2", "--epochs", "3", "--out", str(out),
            "--no-progress", "--no-plots"]
    assert train.main(args) == 0
    assert train.main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert train.main(["--out", str(out), "--resume", "--no-progress", "--no-plots"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "moons", "--method", "nope"], "unknown method"),
    (["--dataset", "moons", "--budget", "600", "--subset", "0"], "need"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent", "--cycles", "1"], "cifar-10-batches-py"),
])
def test_cli_bad_input_gives_a_clear_error_and_exit_code_2(tmp_path, capsys, argv, message):
    assert train.main(argv + ["--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_console_entry_point_dispatches_subcommands(capsys):
    from tavaal.cli import main

    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["nope"]) == 2
