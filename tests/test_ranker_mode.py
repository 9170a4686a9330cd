"""Ranker mode "probe": the Ranker learns from detached stage outputs and never changes the task learner."""
import numpy as np
import pytest
import torch

from tavaal.config import resolve_config
from tavaal.data import load_dataset
from tavaal.training import build_task_models, evaluate_accuracy, train_task_models
from tavaal.training.task import detach_epoch


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, augment="none")


def config(**overrides):
    values = {"steps": 40, "initial": 40}
    values.update(overrides)
    return resolve_config("digits", values)


def trained(digits, cfg, *, with_ranker, ranker_loss, seed=11):
    torch.manual_seed(5)
    models = build_task_models(cfg, digits.input_shape, digits.num_classes, with_ranker=with_ranker)
    ranker_before = None if models.ranker is None else [p.detach().clone() for p in models.ranker.parameters()]
    train_task_models(models, digits.train, np.arange(0, 400, 4), cfg, ranker_loss=ranker_loss, seed=seed)
    return models, ranker_before


def test_probe_mode_never_lets_the_ranker_reach_the_backbone():
    assert detach_epoch(config(ranker_mode="probe")) == -1
    assert detach_epoch(config(ranker_mode="joint", ranker_detach_fraction=0.5)) == 20


@pytest.mark.parametrize("ranker_loss", ["ranking", "margin"])
def test_probe_mode_learner_is_the_plain_learner_bit_for_bit(digits, ranker_loss):
    plain, _ = trained(digits, config(ranker_mode="probe"), with_ranker=False, ranker_loss=None)
    probe, ranker_before = trained(digits, config(ranker_mode="probe"), with_ranker=True, ranker_loss=ranker_loss)
    for (name, a), b in zip(plain.backbone.state_dict().items(), probe.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    assert evaluate_accuracy(plain.backbone, digits.test) == evaluate_accuracy(probe.backbone, digits.test)
    assert any(not torch.equal(a, b) for a, b in zip(ranker_before, probe.ranker.parameters())), \
        "the Ranker itself is trained"


def test_joint_mode_changes_the_learner(digits):
    plain, _ = trained(digits, config(ranker_mode="joint"), with_ranker=False, ranker_loss=None)
    joint, _ = trained(digits, config(ranker_mode="joint"), with_ranker=True, ranker_loss="ranking")
    assert any(not torch.equal(a, b) for a, b in zip(plain.backbone.state_dict().values(),
                                                      joint.backbone.state_dict().values()))


def test_unknown_ranker_mode_is_refused():
    with pytest.raises(ValueError, match="ranker_mode"):
        config(ranker_mode="frozen")


def test_in_probe_mode_every_method_starts_from_randoms_cycle0_accuracy(tmp_path):
    from tavaal.experiment import run_experiment

    cfg = resolve_config("moons", {"trials": 2, "cycles": 1, "steps": 30, "wae_iterations": 5, "ranker_mode": "probe",
                                   "methods": ["random", "lloss", "tavaal"]})
    records = run_experiment(cfg, tmp_path / "run", progress=False)
    for trial in range(2):
        accuracy = {r["method"]: r["accuracy"] for r in records if r["trial"] == trial}
        assert accuracy["lloss"] == accuracy["tavaal"] == accuracy["random"]
