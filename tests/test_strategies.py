"""Selection strategies: the invariants every strategy keeps, and what each one selects."""
import numpy as np
import pytest
import torch

from tavaal.config import resolve_config
from tavaal.data import Pool, load_dataset
from tavaal.strategies import STRATEGIES, SelectionContext, bald_scores, get_strategy
from tavaal.training import (build_adversarial_models, build_task_models, predict, train_adversarial_models,
                             train_task_models)
from tavaal.training.inference import rank_inputs


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    data = load_dataset("moons", seed=0)
    config = resolve_config("moons", {"epochs": 15, "wae_iterations": 30, "subset": 60, "budget": 10})
    pool = Pool.initial(len(data.train), 20, np.random.default_rng(0))
    task = build_task_models(config, data.input_shape, data.num_classes, with_ranker=True, dropout=0.3)
    train_task_models(task, data.train, pool.labeled, config, ranker_loss="ranking", seed=0)
    adversarial = {}
    for kind in ("rank", "plain"):
        models = build_adversarial_models(config, data.input_shape, rank_conditioned=kind == "rank")
        train_adversarial_models(models, data.train, pool.labeled, pool.unlabeled, config, task=task, seed=0)
        adversarial[kind] = models
    return data, config, pool, task, adversarial


def make(setup, name, seed=0):
    data, config, pool, task, adversarial = setup
    cls = get_strategy(name)
    context = SelectionContext(config=config, dataset=data.train, task=task,
                               adversarial=adversarial.get(cls.adversarial), rng=np.random.default_rng(seed))
    return cls(context)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_selection_is_exactly_b_distinct_unlabeled_candidates(setup, name):
    pool = setup[2]
    picked = make(setup, name).select(pool, 10)
    assert picked.dtype == np.int64 and len(picked) == 10
    assert len(np.unique(picked)) == 10
    assert np.isin(picked, pool.unlabeled).all()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_selection_is_deterministic_for_a_seed(setup, name):
    pool = setup[2]
    torch.manual_seed(5)
    first = make(setup, name, seed=3).select(pool, 10)
    torch.manual_seed(5)
    second = make(setup, name, seed=3).select(pool, 10)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_budget_larger_than_the_candidates_is_an_error(setup, name):
    pool = setup[2]
    candidates = pool.unlabeled[:5]
    with pytest.raises(ValueError, match="budget of 6 exceeds the 5"):
        make(setup, name).select(pool, 6, candidates)


def test_subset_method_draws_candidates_from_a_random_subset(setup):
    pool = setup[2]
    candidates = make(setup, "tavaal").candidates(pool)
    assert len(candidates) == 60 and np.isin(candidates, pool.unlabeled).all()
    assert len(make(setup, "random").candidates(pool)) == len(pool.unlabeled), "random samples the whole pool"


def test_tavaal_selects_the_lowest_discriminator_scores_of_eq_7(setup):
    data, config, pool, task, adversarial = setup
    candidates = pool.unlabeled[:80]
    picked = make(setup, "tavaal").select(pool, 10, candidates)
    out = predict(data.train, candidates, backbone=task.backbone, ranker=task.ranker, wae=adversarial["rank"].wae,
                  outputs=("rank", "mu"))
    with torch.no_grad():
        scores = adversarial["rank"].discriminator(rank_inputs(out["rank"], "normalized", task.ranker), out["mu"])
    expected = candidates[np.argsort(scores.numpy(), kind="stable")[:10]]
    np.testing.assert_array_equal(np.sort(picked), np.sort(expected))


def test_vaal_ignores_the_rank(setup):
    data, config, pool, task, adversarial = setup
    candidates = pool.unlabeled[:80]
    picked = make(setup, "vaal").select(pool, 10, candidates)
    mu = predict(data.train, candidates, wae=adversarial["plain"].wae, outputs=("mu",))["mu"]
    with torch.no_grad():
        scores = adversarial["plain"].discriminator(None, mu)
    np.testing.assert_array_equal(np.sort(picked), np.sort(candidates[np.argsort(scores.numpy())[:10]]))


@pytest.mark.parametrize("name", ["lloss", "lloss2"])
def test_learning_loss_selects_the_highest_predicted_loss(setup, name):
    data, config, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    picked = make(setup, name).select(pool, 10, candidates)
    rank = predict(data.train, candidates, backbone=task.backbone, ranker=task.ranker, outputs=("rank",))["rank"]
    np.testing.assert_array_equal(np.sort(picked), np.sort(candidates[np.argsort(-rank.numpy())[:10]]))


def test_entropy_selects_the_most_uncertain_predictions(setup):
    data, config, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    picked = make(setup, "entropy").select(pool, 10, candidates)
    p = torch.softmax(predict(data.train, candidates, backbone=task.backbone)["logits"], 1)
    entropy = -(p * p.log()).sum(1)
    np.testing.assert_array_equal(np.sort(picked), np.sort(candidates[np.argsort(-entropy.numpy())[:10]]))


def test_coreset_equals_plain_greedy_k_center_against_the_labeled_set(setup):
    data, config, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    picked = make(setup, "coreset").select(pool, 10, candidates)
    feats = predict(data.train, np.concatenate([candidates, pool.labeled]), backbone=task.backbone,
                    outputs=("feature",))["feature"].double()
    min_dist = torch.cdist(feats[:80], feats[80:]).min(1).values
    expected = []
    for _ in range(10):
        i = int(torch.argmax(min_dist))
        expected.append(i)
        min_dist = torch.minimum(min_dist, torch.cdist(feats[:80], feats[i:i + 1]).squeeze(1))
    np.testing.assert_array_equal(picked, candidates[expected])


def test_bald_is_zero_when_all_samples_agree_and_positive_when_they_disagree():
    same = torch.tensor([[[0.7, 0.3]]]).repeat(4, 1, 1)
    assert float(bald_scores(same)[0]) == pytest.approx(0.0, abs=1e-6)
    split = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert float(bald_scores(split)[0]) == pytest.approx(np.log(2), rel=1e-4)


def test_strategies_that_need_models_say_so():
    data = load_dataset("moons", seed=0)
    config = resolve_config("moons")
    pool = Pool.initial(len(data.train), 20, np.random.default_rng(0))
    for name in ("entropy", "lloss", "tavaal", "vaal", "coreset"):
        with pytest.raises(ValueError, match="needs"):
            get_strategy(name)(SelectionContext(config=config, dataset=data.train)).select(pool, 5)
    with pytest.raises(ValueError, match="unknown method"):
        get_strategy("no-such-method")


def test_mcdropout_is_bald_over_stochastic_passes_of_the_live_model(setup):
    from tavaal.training.inference import set_dropout_train

    data, config, pool, task, _ = setup
    candidates = pool.unlabeled[:80]
    picked = make(setup, "mcdropout", seed=4).select(pool, 10, candidates)
    # the dropout masks come from torch seeded by the selection's numpy generator (one draw)
    torch.manual_seed(int(np.random.default_rng(4).integers(2**63 - 1)))
    task.backbone.eval()
    set_dropout_train(task.backbone, True)
    try:
        probs = torch.stack([torch.softmax(predict(data.train, candidates, backbone=task.backbone)["logits"], 1)
                             for _ in range(config.mc_samples)])
    finally:
        set_dropout_train(task.backbone, False)
    expected = candidates[np.argsort(-bald_scores(probs).numpy(), kind="stable")[:10]]
    np.testing.assert_array_equal(np.sort(picked), np.sort(expected))
    assert not task.backbone.dropout.training, "dropout is switched off again after the passes"


def test_selection_goes_through_the_scoring_pipeline(setup, monkeypatch):
    import tavaal.scoring as scoring

    calls = []
    original = scoring.select_from_pool

    def spy(scorer, source, method, budget, **kw):
        calls.append((method, scorer.backend if scorer is not None else None, kw["indices"].size))
        return original(scorer, source, method, budget, **kw)

    monkeypatch.setattr(scoring, "select_from_pool", spy)
    pool = setup[2]
    for name in ("tavaal", "lloss2", "coreset", "random"):
        make(setup, name).select(pool, 5, pool.unlabeled[:40])
    assert calls == [("tavaal", "eager", 40), ("lloss", "eager", 40), ("coreset", "eager", 40), ("random", None, 40)]
