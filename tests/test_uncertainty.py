"""Margin and least-confidence sampling against independent numpy computations.

margin: the b rows with the smallest p_(1) - p_(2) first; least confidence: the b rows with
the largest 1 - max p first; equal scores -> lower row first. Both also run on the single
selection path (tavaal.scoring) as score methods on the classifier graph's probabilities.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tavaal import ops
from tavaal.methods import ScoreRule, get_method
from tavaal.methods.leastconf import least_confidence_scores
from tavaal.methods.margin import margin_scores


def numpy_margin(p):
    s = np.sort(p.astype(np.float64), axis=1)[:, ::-1]
    return s[:, 0] - s[:, 1]


def numpy_least_confidence(p):
    return 1.0 - p.astype(np.float64).max(axis=1)


def ranked(scores, b, smallest):
    """Positions of the b best scores, ties -> lower position (stable sort)."""
    key = scores if smallest else -scores
    return np.argsort(key, kind="stable")[:b]


def rule_picks(name, p, b):
    """Positions the method's rule ranks first in one batch: its score of the classifier
    outputs, then ``ops.topb`` in its direction (the selection path's running top-b)."""
    rule = get_method(name).rule
    return ops.topb(rule.score({"probs": p}), b, largest=rule.largest)[1]


def make_probs(n, k, seed, ties):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 3
    if ties:  # repeated rows (equal scores) and rows with a two-way tie at the top (margin 0)
        logits = logits[torch.randint(0, max(1, n // 4), (n,), generator=g)]
        logits[::5, 1] = logits[::5, 0]
    return torch.softmax(logits, dim=1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(2, 12), st.integers(0, 2**31 - 1), st.booleans(), st.data())
def test_picks_match_an_independent_ranking(n, k, seed, ties, data):
    p = make_probs(n, k, seed, ties)
    b = data.draw(st.integers(1, n))
    # scores are float32; rank the float32 values independently (float64 sort of the same numbers)
    m = margin_scores(p)
    lc = least_confidence_scores(p)
    np.testing.assert_allclose(m.numpy(), numpy_margin(p.numpy()), rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc.numpy(), numpy_least_confidence(p.numpy()), rtol=0, atol=1e-6)
    assert rule_picks("margin", p, b).tolist() == ranked(m.numpy().astype(np.float64), b, smallest=True).tolist()
    assert rule_picks("leastconf", p, b).tolist() == ranked(lc.numpy().astype(np.float64), b, smallest=False).tolist()


def test_hand_worked_example():
    p = torch.tensor([[0.5, 0.3, 0.2],    # margin 0.2, lc 0.5
                      [0.4, 0.4, 0.2],    # margin 0.0, lc 0.6
                      [0.9, 0.05, 0.05],  # margin 0.85, lc 0.1
                      [0.2, 0.3, 0.5],    # margin 0.2, lc 0.5 (ties row 0)
                      [0.34, 0.33, 0.33]])  # margin 0.01, lc 0.66
    assert rule_picks("margin", p, 5).tolist() == [1, 4, 0, 3, 2]
    assert rule_picks("leastconf", p, 5).tolist() == [4, 1, 0, 3, 2]


def test_margin_and_entropy_can_disagree():
    """Two rows with the same top-2 gap but different tails: margin ties them (lower row first)."""
    p = torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.5, 0.3, 0.2, 0.0]])
    assert margin_scores(p)[0] == margin_scores(p)[1]
    assert rule_picks("margin", p, 1).tolist() == [0]


def test_clear_errors():
    with pytest.raises(ValueError, match="2-D"):
        margin_scores(torch.rand(5))
    with pytest.raises(ValueError, match="at least 2 classes"):
        margin_scores(torch.ones(5, 1))
    with pytest.raises(TypeError, match="floating"):
        least_confidence_scores(torch.ones(5, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        margin_scores(np.ones((5, 3)))
    with pytest.raises(ValueError, match="b must be in"):
        rule_picks("margin", torch.softmax(torch.randn(5, 3), 1), 6)


def test_registered_on_the_single_selection_path():
    p = make_probs(50, 4, 0, ties=True)
    out = {"probs": p, "logits": p.log(), "feature": torch.randn(50, 8)}
    margin, leastconf = get_method("margin").rule, get_method("leastconf").rule
    assert isinstance(margin, ScoreRule) and isinstance(leastconf, ScoreRule)
    assert margin.graph == leastconf.graph == "classifier"
    assert margin.largest is False and leastconf.largest is True
    assert torch.equal(margin.score(out), margin_scores(p))
    assert torch.equal(leastconf.score(out), least_confidence_scores(p))


# ------------------------------------------------------------------ on the live selection path
@pytest.fixture(scope="module")
def trained():
    from selection_oracles import trained_moons_learner

    return trained_moons_learner()


@pytest.mark.parametrize("name", ["margin", "leastconf"])
def test_cycle_selects_what_the_independent_ranking_selects(trained, name):
    """A cycle's selection (live model -> classifier graph -> streamed top-b) picks the rows an
    independent float64 ranking of the task model's softmax picks."""
    from selection_oracles import select_live
    from tavaal.training import predict

    data, config, pool, task = trained
    candidates = np.sort(pool.unlabeled[:150])
    picked = select_live(config, data, pool.labeled, name, 12, candidates, task)
    task.eval()
    logits = predict(data.train, candidates, backbone=task.backbone, outputs=("logits",))["logits"]
    p = torch.softmax(logits.double(), dim=1).numpy()
    scores = numpy_margin(p) if name == "margin" else numpy_least_confidence(p)
    want = candidates[ranked(scores, 12, smallest=name == "margin")]
    # the strategy ranks float32 scores: allow swaps only among rows whose float64 scores tie within 1e-6
    cut = np.sort(scores)[11] if name == "margin" else np.sort(scores)[::-1][11]
    clear = np.abs(scores - cut) > 1e-6
    sure = set(candidates[clear & np.isin(candidates, want)].tolist())
    assert sure <= set(picked.tolist()), (picked, want)
    assert len(set(picked.tolist())) == 12 and np.isin(picked, candidates).all()
