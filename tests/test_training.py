"""Algorithm 1: the task learner + Ranker step, and the WAE + discriminator training."""
import numpy as np
import pytest
import torch

from tavaal.config import resolve_config
from tavaal.data import load_dataset
from tavaal.losses import ranking_loss
from tavaal.training import (build_adversarial_models, build_task_models, evaluate_accuracy, train_adversarial_models,
                             train_task_models, wae_iterations)
from tavaal.training.task import batch_loss, detach_epoch


@pytest.fixture(scope="module")
def moons():
    return load_dataset("moons", seed=0)


def small_config(**overrides):
    values = {"epochs": 3, "wae_iterations": 5}
    values.update(overrides)
    return resolve_config("moons", values)


def test_ranker_stops_reaching_the_backbone_after_epoch_120_of_200():
    assert detach_epoch(resolve_config("cifar10", {"ranker_mode": "joint"})) == 120
    assert detach_epoch(small_config(epochs=10, ranker_detach_fraction=0.6, ranker_mode="joint")) == 6


def test_detached_ranker_loss_trains_the_ranker_but_not_the_backbone(moons):
    config = small_config()
    models = build_task_models(config, moons.input_shape, moons.num_classes, with_ranker=True)
    x = torch.stack([moons.train[i][0] for i in range(8)])
    y = torch.tensor([moons.train[i][1] for i in range(8)])
    for detach in (False, True):
        models.backbone.zero_grad()
        models.ranker.zero_grad()
        _, _, l_rank = batch_loss(models, x, y, ranking_loss, detach_ranker=detach)
        l_rank.backward()
        backbone_grad = sum(float(p.grad.abs().sum()) for p in models.backbone.parameters() if p.grad is not None)
        ranker_grad = sum(float(p.grad.abs().sum()) for p in models.ranker.parameters() if p.grad is not None)
        assert ranker_grad > 0
        assert (backbone_grad == 0) == detach


def test_total_loss_is_task_loss_plus_eta_times_ranking_loss(moons):
    models = build_task_models(small_config(), moons.input_shape, moons.num_classes, with_ranker=True)
    x = torch.stack([moons.train[i][0] for i in range(6)])
    y = torch.tensor([moons.train[i][1] for i in range(6)])
    total, task, rank = batch_loss(models, x, y, ranking_loss, eta=0.25)
    assert torch.allclose(total, task + 0.25 * rank)
    total, task, rank = batch_loss(models, x[:1], y[:1], ranking_loss)
    assert rank is None and torch.equal(total, task)


def test_training_reduces_the_task_loss_and_is_reproducible(moons):
    config = small_config(epochs=20)
    labeled = np.arange(0, 550, 5)
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        models = build_task_models(config, moons.input_shape, moons.num_classes, with_ranker=True)
        before = evaluate_accuracy(models.backbone, moons.test)
        history = train_task_models(models, moons.train, labeled, config, ranker_loss="ranking", seed=3)
        results.append((history["task_loss"], evaluate_accuracy(models.backbone, moons.test)))
    assert results[0] == results[1]
    assert results[0][1] >= before and results[0][0] < 0.69


def test_ranker_loss_without_ranker_is_an_error(moons):
    models = build_task_models(small_config(), moons.input_shape, moons.num_classes, with_ranker=False)
    with pytest.raises(ValueError, match="no Ranker"):
        train_task_models(models, moons.train, np.arange(10), small_config(), ranker_loss="ranking")


def test_wae_iterations_follow_the_official_rule():
    config = resolve_config("cifar10")
    # int((1000 * cycle + 10000) * 100 / 128) for cycle 1: 8593 (facts file §3)
    assert wae_iterations(config, 1000, 10000) == 8593
    assert wae_iterations(small_config(wae_iterations=7), 1, 1) == 7


@pytest.mark.parametrize("conditioned", [True, False])
def test_adversarial_training_updates_wae_and_discriminator(moons, conditioned):
    config = small_config(wae_iterations=15)
    task = build_task_models(config, moons.input_shape, moons.num_classes, with_ranker=True)
    adv = build_adversarial_models(config, moons.input_shape, rank_conditioned=conditioned)
    before = [p.detach().clone() for p in adv.discriminator.parameters()]
    losses = train_adversarial_models(adv, moons.train, np.arange(20), np.arange(20, 200), config, task=task)
    assert set(losses) == {"wae_loss", "adversarial_loss", "discriminator_loss", "diagnostics"}  # diagnostics: default
    assert all(np.isfinite(v) for k, v in losses.items() if k != "diagnostics")
    assert any(not torch.equal(a, b) for a, b in zip(before, adv.discriminator.parameters()))
    assert adv.discriminator.rank_conditioned == conditioned
    assert not adv.wae.training, "scoring happens in eval mode by default"


def test_rank_conditioned_training_needs_the_ranker(moons):
    config = small_config()
    adv = build_adversarial_models(config, moons.input_shape, rank_conditioned=True)
    with pytest.raises(ValueError, match="Ranker"):
        train_adversarial_models(adv, moons.train, np.arange(5), np.arange(5, 50), config, task=None)


def test_batch_loader_yields_every_index_once_in_a_seeded_order(moons):
    from tavaal.training.loaders import BatchLoader, make_loader

    indices = np.arange(3, 103)
    loader = make_loader(moons.train, indices, 32, shuffle=True, seed=4)
    assert isinstance(loader, BatchLoader) and len(loader) == 4
    seen = np.concatenate([idx.numpy() for _, _, idx in loader])
    assert sorted(seen) == list(indices)
    assert np.array_equal(seen, np.concatenate([idx.numpy() for _, _, idx in make_loader(
        moons.train, indices, 32, shuffle=True, seed=4)]))
    x, y, idx = next(iter(make_loader(moons.train, indices, 8, shuffle=False)))
    for row, i in enumerate(idx.tolist()):
        assert torch.equal(x[row], moons.train[i][0]) and int(y[row]) == moons.train[i][1]


def test_separation_auc_and_spread():
    from tavaal.training import separation_auc, spread
    from tavaal.training.diagnostics import chance_warning

    assert separation_auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert separation_auc([0.1], [0.5, 0.9]) == 0.0
    assert separation_auc([0.5, 0.5], [0.5]) == 0.5
    assert separation_auc([], [0.5]) is None
    s = spread([3.0, 1.0, 2.0], "d")
    assert (s["d_min"], s["d_median"], s["d_max"]) == (1.0, 2.0, 3.0)
    assert s["d_min"] <= s["d_q05"] <= s["d_median"] <= s["d_q95"] <= s["d_max"]
    assert all(v is None for v in spread([], "d").values())
    assert chance_warning(0.52, "here") is not None and chance_warning(0.8, "here") is None
    assert chance_warning(None, "here") is None


def adversarial_run(data, config, conditioned=True, seed=2):
    torch.manual_seed(0)
    task = build_task_models(config, data.input_shape, data.num_classes, with_ranker=True)
    task.eval()
    adv = build_adversarial_models(config, data.input_shape, rank_conditioned=conditioned)
    torch.manual_seed(9)
    losses = train_adversarial_models(adv, data.train, np.arange(0, 60), np.arange(60, 300), config, task=task,
                                      seed=seed)
    return adv, losses


@pytest.mark.parametrize("conditioned", [True, False])
def test_discriminator_diagnostics_are_recorded(moons, conditioned):
    config = small_config(wae_iterations=20, disc_diagnostics=True, disc_holdout=0.25)
    _, losses = adversarial_run(moons, config, conditioned)
    d = losses["diagnostics"]
    assert (d["disc_heldout_labeled"], d["disc_heldout_unlabeled"]) == (15, 60)
    for key in ("disc_auc_train", "disc_auc_heldout"):
        assert 0.0 <= d[key] <= 1.0
    assert d["disc_score_min"] <= d["disc_score_median"] <= d["disc_score_max"]
    assert 0.0 <= d["disc_score_min"] and d["disc_score_max"] <= 1.0
    assert (d["rank_std"] is not None) == conditioned
    assert d["wae_iterations_run"] == 20
    assert [it for it, _ in d["disc_auc_trace"]] == list(range(2, 21, 2))


def test_diagnostics_change_no_training(moons):
    """Diagnostics (held-out checks included) draw no random numbers and leave the models as without them."""
    plain, plain_losses = adversarial_run(moons, small_config(wae_iterations=12, disc_diagnostics=False))
    watched, watched_losses = adversarial_run(moons, small_config(wae_iterations=12, disc_diagnostics=True))
    assert "diagnostics" not in plain_losses and "diagnostics" in watched_losses
    assert watched_losses["diagnostics"]["disc_auc_heldout"] is None  # no rows held out
    assert {k: v for k, v in watched_losses.items() if k != "diagnostics"} == plain_losses
    for a, b in zip(plain.state_dict()["discriminator"].values(), watched.state_dict()["discriminator"].values()):
        assert torch.equal(a, b)
    for a, b in zip(plain.state_dict()["wae"].values(), watched.state_dict()["wae"].values()):
        assert torch.equal(a, b)
    assert not watched.wae.training, "modes restored after the diagnostics"


@pytest.mark.parametrize("patience", [1, 1000])
def test_plateau_stopping_honours_its_patience_and_cap(moons, patience):
    config = small_config(wae_iterations=10, wae_stop="plateau", disc_holdout=0.25, wae_patience=patience,
                          wae_cap_factor=3.0, disc_diagnostics=True)
    _, losses = adversarial_run(moons, config)
    d = losses["diagnostics"]
    trace = d["disc_auc_trace"]
    assert d["wae_iterations_run"] == trace[-1][0] <= 30
    if patience == 1000:
        assert d["wae_iterations_run"] == 30, "the cap ends training"
    else:
        aucs = [auc for _, auc in trace]
        # it stopped at the first check that did not beat the best before it (or at the cap)
        gains = [aucs[k] > max(aucs[:k]) + 0.005 for k in range(1, len(aucs))]
        assert all(gains[:-1]) and (not gains[-1] or d["wae_iterations_run"] == 30)


def test_plateau_stopping_needs_held_out_rows():
    with pytest.raises(ValueError, match="disc_holdout"):
        small_config(wae_stop="plateau")
