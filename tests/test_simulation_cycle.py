"""The simulated cycle is the labeling loop's cycle: ``Experiment.run_cycle`` trains through
:func:`tavaal.cycle.train_cycle` and selects through :func:`tavaal.cycle.select_batch` (one
implementation, nothing to drift apart); the options the simulation needs are part of it."""
import numpy as np
import pytest
import torch

from tavaal import cycle as cycle_module
from tavaal import experiment as experiment_module
from tavaal.config import resolve_config
from tavaal.cycle import CycleData, train_cycle
from tavaal.data import load_dataset
from tavaal.experiment import run_experiment

TINY = {"trials": 1, "cycles": 2, "steps": 20, "wae_iterations": 6}


def test_every_simulated_cycle_trains_and_selects_through_the_loop_functions(tmp_path, monkeypatch):
    calls = {"train": [], "select": []}
    real_train, real_select = cycle_module.train_cycle, cycle_module.select_batch
    assert (experiment_module.train_cycle, experiment_module.select_batch) == (real_train, real_select)

    def train_spy(data, config, method, **kwargs):
        calls["train"].append((method, kwargs["cycle"], kwargs["train_task"]))
        return real_train(data, config, method, **kwargs)

    def select_spy(models, source, budget, **kwargs):
        calls["select"].append((kwargs["method"], budget))
        return real_select(models, source, budget, **kwargs)

    monkeypatch.setattr(experiment_module, "train_cycle", train_spy)
    monkeypatch.setattr(experiment_module, "select_batch", select_spy)
    config = resolve_config("moons", dict(TINY, methods=["entropy", "tavaal", "random"]))
    records = run_experiment(config, tmp_path / "run", progress=False)
    assert len(records) == 6
    # random and entropy share the plain cycle-0 learner: the second one loads it (no task training)
    assert sorted(calls["train"]) == sorted([("entropy", 0, True), ("entropy", 1, True), ("tavaal", 0, True),
                                             ("tavaal", 1, True), ("random", 0, False), ("random", 1, True)])
    assert sorted(calls["select"]) == sorted((m, config.budget) for m in ("entropy", "tavaal", "random")
                                             for _ in range(2))


@pytest.fixture(scope="module")
def moons():
    return load_dataset("moons", None, seed=0)


def view_data(bundle, labeled, **kwargs):
    return CycleData(bundle.train_source, labeled, None, bundle.num_classes, mean=bundle.mean, std=bundle.std,
                     name=bundle.name, view=bundle.train, **kwargs)


def test_a_training_view_holds_the_targets_so_labels_and_masks_are_refused_with_it(moons):
    labeled = np.arange(10)
    assert view_data(moons, labeled).task == "classification"
    assert view_data(moons, labeled, view_task="segmentation").task == "segmentation"
    with pytest.raises(ValueError, match="not both"):
        CycleData(moons.train_source, labeled, np.zeros(10, np.int64), moons.num_classes, view=moons.train)
    with pytest.raises(ValueError, match="view_task"):
        view_data(moons, labeled, view_task="detection")


def test_already_trained_task_models_skip_task_training_and_the_rest_of_the_cycle_is_unchanged(moons):
    config = resolve_config("moons", dict(TINY))
    data = view_data(moons, np.arange(0, 400, 20))
    seen = []
    trained = train_cycle(data, config, "tavaal", seed=7, after_task=seen.append)
    assert len(seen) == 1 and seen[0] is trained.models.task and trained.history
    state = trained.models.task.state_dict()
    again = train_cycle(data, config, "tavaal", seed=7, init_state=state, train_task=False,
                        after_task=seen.append)
    assert len(seen) == 1 and again.history == {} and again.seconds["task"] == 0.0   # no training, no callback
    np.testing.assert_array_equal(again.candidates, trained.candidates)
    assert again.rng.bit_generator.state == trained.rng.bit_generator.state
    a, b = trained.models.adversarial.state_dict(), again.models.adversarial.state_dict()
    for part in a:  # the WAE + discriminator see the same random stream after a load as after training
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
