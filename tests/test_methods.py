"""Selection methods on the live path: what a simulated cycle selects for each registered
method (``tavaal.cycle.select_batch`` over the cycle's models), checked against independent
oracles, and the invariants every method keeps."""
import numpy as np
import pytest
import torch

from selection_oracles import (bald, discriminator_scores, entropy, greedy_kcenter, highest, least_confidence, lowest,
                               margin, mc_probabilities, predicted_loss, probabilities, select_live)
from tavaal.config import resolve_config
from tavaal.data import Pool, load_dataset
from tavaal.data.candidates import draw_candidates
from tavaal.methods import get_method, method_names
from tavaal.scoring import SelectionError
from tavaal.training import (build_adversarial_models, build_task_models, predict, train_adversarial_models,
                             train_task_models)

BUDGET = 10


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    data = load_dataset("moons", seed=0)
    config = resolve_config("moons", {"epochs": 15, "steps": None, "wae_iterations": 30, "subset": 60,
                                      "budget": BUDGET})
    pool = Pool.initial(len(data.train), 20, np.random.default_rng(0))
    task = build_task_models(config, data.input_shape, data.num_classes, with_ranker=True, dropout=0.3)
    train_task_models(task, data.train, pool.labeled, config, ranker_loss="ranking", seed=0)
    adversarial = {}
    for kind in ("rank", "plain"):
        models = build_adversarial_models(config, data.input_shape, rank_conditioned=kind == "rank")
        train_adversarial_models(models, data.train, pool.labeled, pool.unlabeled, config, task=task, seed=0)
        adversarial[kind] = models
    return data, config, pool, task, adversarial


def select(setup, name, budget=BUDGET, candidates=None, seed=0):
    data, config, pool, task, adversarial = setup
    candidates = pool.unlabeled if candidates is None else candidates
    return select_live(config, data, pool.labeled, name, budget, candidates, task,
                       adversarial.get(get_method(name).adversarial), seed=seed)


@pytest.mark.parametrize("name", method_names())
def test_selection_is_exactly_budget_distinct_unlabeled_candidates(setup, name):
    pool = setup[2]
    candidates = pool.unlabeled[::3]
    picked = select(setup, name, candidates=candidates)
    assert picked.dtype == np.int64 and len(picked) == BUDGET
    assert len(np.unique(picked)) == BUDGET
    assert np.isin(picked, candidates).all()


@pytest.mark.parametrize("name", method_names())
def test_selection_is_deterministic_for_a_seed(setup, name):
    torch.manual_seed(5)
    first = select(setup, name, seed=3)
    torch.manual_seed(6)
    second = select(setup, name, seed=3)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", method_names())
def test_budget_larger_than_the_candidates_is_an_error(setup, name):
    candidates = setup[2].unlabeled[:5]
    with pytest.raises(SelectionError, match="budget of 6 exceeds the 5 candidate samples"):
        select(setup, name, budget=6, candidates=candidates)


def test_the_subset_method_draws_candidates_from_a_random_subset(setup):
    data, config, pool, _, _ = setup
    subset = get_method("tavaal").training(config).subset
    candidates = draw_candidates(len(data.train), pool.labeled, subset, np.random.default_rng(0))
    assert subset == 60 and len(candidates) == 60 and np.isin(candidates, pool.unlabeled).all()
    assert get_method("random").training(config).subset == 0, "random samples the whole pool"


def test_tavaal_selects_the_lowest_discriminator_scores_of_eq_7(setup):
    data, _, pool, task, adversarial = setup
    candidates = pool.unlabeled[:80]
    scores = discriminator_scores(data.train, candidates, task, adversarial["rank"])
    np.testing.assert_array_equal(select(setup, "tavaal", candidates=candidates), lowest(candidates, scores, BUDGET))


def test_vaal_ignores_the_rank(setup):
    data, _, pool, task, adversarial = setup
    candidates = pool.unlabeled[:80]
    scores = discriminator_scores(data.train, candidates, task, adversarial["plain"])
    np.testing.assert_array_equal(select(setup, "vaal", candidates=candidates), lowest(candidates, scores, BUDGET))


@pytest.mark.parametrize("name", ["lloss", "lloss2"])
def test_learning_loss_selects_the_highest_predicted_loss(setup, name):
    data, _, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    expected = highest(candidates, predicted_loss(data.train, candidates, task), BUDGET)
    np.testing.assert_array_equal(select(setup, name, candidates=candidates), expected)


@pytest.mark.parametrize("name, score, pick", [("entropy", entropy, highest), ("margin", margin, lowest),
                                               ("leastconf", least_confidence, highest)])
def test_uncertainty_methods_select_the_most_uncertain_predictions(setup, name, score, pick):
    data, _, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    expected = pick(candidates, score(probabilities(data.train, candidates, task)), BUDGET)
    np.testing.assert_array_equal(np.sort(select(setup, name, candidates=candidates)), np.sort(expected))


def test_coreset_equals_plain_greedy_k_center_against_the_labeled_set(setup):
    data, _, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    feats = predict(data.train, np.concatenate([candidates, pool.labeled]), backbone=task.backbone,
                    outputs=("feature",))["feature"]
    expected = candidates[greedy_kcenter(feats[:80], feats[80:], BUDGET)]
    np.testing.assert_array_equal(select(setup, "coreset", candidates=candidates), expected)


def test_mcdropout_is_bald_over_stochastic_passes_of_the_live_model(setup):
    data, config, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    picked = select(setup, "mcdropout", candidates=candidates, seed=4)
    # the dropout masks come from torch seeded by the selection's numpy generator (one draw)
    torch_seed = int(np.random.default_rng(4).integers(2**63 - 1))
    samples = mc_probabilities(data.train, candidates, task, config.mc_samples, torch_seed)
    np.testing.assert_array_equal(np.sort(picked), np.sort(highest(candidates, bald(samples), BUDGET)))
    assert not task.backbone.dropout.training, "dropout is switched off again after the passes"


def test_random_is_a_seeded_uniform_draw_from_the_whole_pool(setup):
    pool = setup[2]
    expected = pool.unlabeled[np.random.default_rng(7).choice(pool.num_unlabeled, BUDGET, replace=False)]
    np.testing.assert_array_equal(select(setup, "random", seed=7), expected)


def test_methods_that_need_models_say_which(setup):
    data, config, pool, task, _ = setup
    for name in ("tavaal", "vaal"):  # no WAE + discriminator trained
        with pytest.raises(SelectionError, match=f"support .* not '{name}'"):
            select_live(config, data, pool.labeled, name, BUDGET, pool.unlabeled, task, None)
    with pytest.raises(ValueError, match="unknown method"):
        get_method("no-such-method")


def test_selection_goes_through_the_one_selection_path(setup, monkeypatch):
    import tavaal.cycle as cycle

    calls = []
    original = cycle.select_from_pool

    def spy(scorer, source, method, budget, **kw):
        calls.append((method, scorer.backend if scorer is not None else None, kw["indices"].size))
        return original(scorer, source, method, budget, **kw)

    monkeypatch.setattr(cycle, "select_from_pool", spy)
    candidates = setup[2].unlabeled[:40]
    for name in ("tavaal", "lloss2", "coreset", "random"):
        select(setup, name, budget=5, candidates=candidates)
    assert calls == [("tavaal", "eager", 40), ("lloss", "eager", 40), ("coreset", "eager", 40), ("random", None, 40)]
