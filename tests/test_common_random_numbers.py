"""Common random numbers (issue 10): within a trial every method sees the same initial set,
the same cycle-0 models and the same per-cycle seeds, so differences are due to selection."""
import numpy as np
import pytest
import torch

from tavaal.config import resolve_config
from tavaal.data import Pool
from tavaal.cycle import cycle_seed
from tavaal.experiment import Experiment, run_experiment
from tavaal.methods import get_method
from tavaal.rundir import RunDirectory


def config(**overrides):
    values = {"trials": 1, "cycles": 2, "steps": 30, "wae_iterations": 8}
    values.update(overrides)
    return resolve_config("moons", values)


def by_key(records):
    return {(r["method"], r["trial"], r["cycle"]): r for r in records}


def test_cycle_zero_is_trained_once_per_learner_and_shared(tmp_path):
    methods = ["random", "entropy", "coreset", "lloss2", "tavaal"]
    records = by_key(run_experiment(config(methods=methods, trials=2), tmp_path / "run", progress=False))
    for trial in range(2):
        plain = [records[(m, trial, 0)] for m in ("random", "entropy", "coreset")]
        ranked = [records[(m, trial, 0)] for m in ("lloss2", "tavaal")]
        for group in (plain, ranked):
            assert len({r["accuracy"] for r in group}) == 1
            assert [r["shared_task"] for r in group] == [False] + [True] * (len(group) - 1)
        assert plain[0]["learner"] != ranked[0]["learner"]
    shared = sorted(p.name for p in (tmp_path / "run" / "shared" / "trial_0").iterdir())
    assert shared == sorted({f"task_cycle00_{get_method(m).training(config()).key}.pt" for m in methods})


def test_cycle_seed_depends_on_trial_and_cycle_not_on_the_method():
    c = config()
    assert cycle_seed(c, 0, 1) == cycle_seed(c, 0, 1)
    assert len({cycle_seed(c, t, k) for t in range(3) for k in range(3)}) == 9
    assert cycle_seed(c, 0, 0) != cycle_seed(config(seed=1), 0, 0)


def task_tensors(run_dir, method):
    state = torch.load(RunDirectory(run_dir).latest_checkpoint(method, 0), weights_only=True)["task"]["backbone"]
    return state


def test_two_methods_with_the_same_labeled_set_train_the_same_model(tmp_path):
    experiment = Experiment(config(methods=["random", "entropy"]), tmp_path / "run", progress=False)
    labeled = np.arange(0, 550, 11)
    pool = Pool.from_state_dict(Pool.initial(550, 20, np.random.default_rng(0)).state_dict())
    pool = pool.label(np.setdiff1d(labeled, pool.labeled)[:20])
    results = {m: experiment.run_cycle(m, 0, 1, pool) for m in ("random", "entropy")}
    assert not any(r.record["shared_task"] for r in results.values())  # cycle 1: both trained from scratch
    assert results["random"].record["accuracy"] == results["entropy"].record["accuracy"]
    a, b = task_tensors(tmp_path / "run", "random"), task_tensors(tmp_path / "run", "entropy")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Interrupt(Exception):
    pass


def test_resume_after_the_shared_cycle_zero_equals_an_uninterrupted_run(tmp_path):
    c = config(methods=["random", "entropy", "tavaal"], trials=2)
    full = by_key(run_experiment(c, tmp_path / "full", progress=False))
    seen = []

    def crash(record):
        seen.append(record)
        if len(seen) == 1:  # right after random's cycle 0 wrote the shared plain learner
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(c, tmp_path / "resumed", progress=False, on_cycle_end=crash)
    resumed = by_key(run_experiment(c, tmp_path / "resumed", progress=False, resume=True))
    assert {k: r["accuracy"] for k, r in resumed.items()} == {k: r["accuracy"] for k, r in full.items()}
    for method in c.methods:
        for trial in range(2):
            a = RunDirectory(tmp_path / "full").load_state(method, trial)["pool"]["labeled"]
            b = RunDirectory(tmp_path / "resumed").load_state(method, trial)["pool"]["labeled"]
            assert a == b
