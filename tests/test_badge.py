"""BADGE against independent computations.

The gradient embeddings are computed independently with autograd (the gradient of the
cross-entropy at the predicted label w.r.t. the last linear layer's weights, float64) and
MATERIALISED; a float64 brute-force k-means++ (largest norm first, then D^2 sampling by
inverse CDF over the plain cumulative sum) with the same uniforms must make the same picks,
up to float32 rounding of the probabilities at a CDF boundary (checked step by step).
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tavaal import ops
from tavaal.methods import EmbeddingRule, get_method
from tavaal.methods.badge import badge_embedding, badge_factors, badge_select
from tavaal.ops.kmeanspp import draw_uniforms

ROUNDING = 1e-6  # relative: the op receives float32 probabilities


def autograd_embeddings(features64, weight64):
    """(N, K*F) gradients of CE(f W^T, argmax) w.r.t. W, one row at a time, and the probs."""
    rows, probs = [], []
    for f in features64:
        w = weight64.clone().requires_grad_(True)
        logits = f @ w.T
        loss = torch.nn.functional.cross_entropy(logits[None], logits.argmax()[None])
        (grad,) = torch.autograd.grad(loss, w)
        rows.append(grad.reshape(-1))
        probs.append(torch.softmax(logits.detach(), 0))
    return torch.stack(rows).numpy(), torch.stack(probs)


def brute_badge_check(g, picks, uniforms, tol=ROUNDING):
    """Step-by-step float64 k-means++ on materialised g along the op's picks."""
    n = g.shape[0]
    norms = (g * g).sum(1)
    assert (norms[picks[0]] >= norms.max() * (1 - tol)), "first pick: the largest gradient norm"
    picked = np.zeros(n, bool)
    mind = np.full(n, np.inf)
    for t, p in enumerate(picks):
        if t > 0:
            w = np.where(picked, 0.0, mind)
            cum = np.cumsum(w)
            target = float(uniforms[t]) * cum[-1]
            want = int(np.searchsorted(cum, target, side="right"))
            if p != want:
                lo = cum[p - 1] if p else 0.0
                assert lo - tol * cum[-1] <= target <= cum[p] + tol * cum[-1], f"pick {t}: {p}, brute force {want}"
        picked[p] = True
        mind = np.minimum(mind, ((g - g[p]) ** 2).sum(1))


def seed_badge(probs, features, b, uniforms):
    """BADGE's k-means++ seeding on the two factors with the given uniforms (what
    :func:`badge_select` runs on the stored ``[a | f]`` rows)."""
    a, f = badge_factors(probs, features)
    return ops.kmeanspp(a, b, y=f, init="norm", uniforms=uniforms)[0]


def make_case(n, k, f, seed):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n, f, generator=gen).relu().to(torch.float32).to(torch.float64)
    weight = torch.randn(k, f, generator=gen, dtype=torch.float64) * 0.7
    g, probs = autograd_embeddings(features, weight)
    return features, probs, g


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 120), st.integers(2, 6), st.integers(1, 10), st.integers(0, 2**31 - 1), st.data())
def test_picks_match_brute_force_on_materialised_gradient_embeddings(n, k, f, seed, data):
    features, probs, g = make_case(n, k, f, seed)
    b = data.draw(st.integers(1, n))
    u = draw_uniforms(b, seed)
    picks = seed_badge(probs, features, b, u).tolist()
    assert len(set(picks)) == b
    brute_badge_check(g, picks, u.numpy())


def test_factors_are_the_cross_entropy_gradient():
    features, probs, g = make_case(40, 5, 7, 1)
    a, f = badge_factors(probs, features)
    assert a.dtype == f.dtype == torch.float32 and a.is_contiguous() and f.is_contiguous()
    outer = torch.einsum("nk,nf->nkf", a.double(), f.double()).reshape(40, -1).numpy()
    np.testing.assert_allclose(outer, g, rtol=0, atol=1e-6)
    assert torch.equal(a.sum(1).abs() < 1e-6, torch.ones(40, dtype=torch.bool)), "rows of p - onehot sum to 0"


def test_argmax_ties_use_the_lower_class():
    a, _ = badge_factors(torch.tensor([[0.4, 0.4, 0.2]]), torch.ones(1, 2))
    assert a.tolist() == [[pytest.approx(-0.6), pytest.approx(0.4), pytest.approx(0.2)]]


def test_selection_path_method_reproduces_the_direct_call():
    """badge on tavaal.scoring: stored [a | f] rows and uniforms from the selection's rng."""
    features, probs, _ = make_case(300, 4, 16, 2)
    method = get_method("badge").rule
    assert isinstance(method, EmbeddingRule) and method.graph == "classifier" and not method.uses_labeled
    emb = method.embed({"probs": probs.float(), "feature": features.float(), "logits": probs.log().float()})
    assert emb.shape == (300, 4 + 16), "K + F numbers a row, not K * F"
    torch.testing.assert_close(emb, badge_embedding({"probs": probs, "feature": features}))
    picks, values = method.select(emb, 25, centers=None, rng=np.random.default_rng(7), metric="euclidean",
                                  num_classes=4)
    want = seed_badge(probs, features, 25, torch.from_numpy(np.random.default_rng(7).random(25)))
    assert torch.equal(picks, want)
    assert values.dtype == torch.float32 and values.shape == (25,)
    assert torch.all(values[1:] <= values[:-1]), "the k-means potential never grows"


def test_clear_errors():
    p = torch.softmax(torch.randn(10, 3), 1)
    with pytest.raises(ValueError, match=r"probs has 10 rows but features has shape \(9, 4\)"):
        badge_factors(p, torch.randn(9, 4))
    with pytest.raises(ValueError, match="at least 2 classes"):
        badge_factors(torch.ones(10, 1), torch.randn(10, 4))
    with pytest.raises(TypeError, match="floating"):
        badge_factors(p, torch.ones(10, 4, dtype=torch.int64))
    emb = badge_embedding({"probs": p, "feature": torch.randn(10, 4)})
    with pytest.raises(ValueError, match="num_classes"):
        badge_select(emb, 3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not split"):
        badge_select(emb, 3, rng=np.random.default_rng(0), num_classes=7)
    with pytest.raises(ValueError, match="no labeled centers"):
        badge_select(emb, 3, rng=np.random.default_rng(0), num_classes=3, centers=torch.tensor([1]))
    with pytest.raises(ValueError, match="b must be in"):
        badge_select(emb, 11, rng=np.random.default_rng(0), num_classes=3)


# ------------------------------------------------------------------ on the live selection path
def test_cycle_picks_match_brute_force_on_the_task_models_embeddings():
    """A cycle's BADGE selection (live model -> classifier graph -> [a | f] rows ->
    ops.kmeanspp) makes the picks of the brute force on materialised gradient embeddings of the
    same model's outputs, with the uniforms drawn from the cycle's rng."""
    from selection_oracles import select_live, trained_moons_learner
    from tavaal.training import predict

    data, config, pool, task = trained_moons_learner()
    candidates = np.sort(pool.unlabeled[:200])
    picked = select_live(config, data, pool.labeled, "badge", 15, candidates, task, seed=5)
    task.eval()
    out = predict(data.train, candidates, backbone=task.backbone, outputs=("logits", "feature"))
    p = torch.softmax(out["logits"].double(), dim=1)
    a = p.clone()
    a[torch.arange(len(p)), p.argmax(1)] -= 1
    g = torch.einsum("nk,nf->nkf", a, out["feature"].double()).reshape(len(p), -1).numpy()
    positions = np.searchsorted(candidates, picked)
    assert np.array_equal(candidates[positions], picked)
    brute_badge_check(g, positions.tolist(), np.random.default_rng(5).random(15), tol=1e-5)


@pytest.mark.parametrize("method", ["badge", "margin", "leastconf"])
def test_exported_artifacts_select_what_the_live_models_select(method):
    """One selection path: `tavaal.score` on exported artifacts (ONNX classifier graph) and the
    live models of the same checkpoint pick the same rows with the same seed."""
    from score_fixtures import artifacts, labeled_rows, pool_npy

    from tavaal.checkpoint import load_cycle_models
    from tavaal.scoring import Scorer, open_source, select_from_pool

    art = artifacts("moons", "tavaal")
    labeled = labeled_rows("moons")
    models = load_cycle_models(art / "models.pt")
    live = Scorer.from_models(models.task, None, input_shape=models.spec["input_shape"], mean=models.spec["mean"],
                              std=models.spec["std"])
    pool = open_source(pool_npy("moons"))
    got = select_from_pool(Scorer.from_artifacts(art), pool, method, 12, labeled=labeled, seed=3, batch_size=64)
    want = select_from_pool(live, pool, method, 12, labeled=labeled, seed=3, batch_size=64)
    assert len(set(got.rows.tolist())) == 12 and not set(got.rows.tolist()) & set(labeled.tolist())
    np.testing.assert_array_equal(got.rows, want.rows)
