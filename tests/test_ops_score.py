"""Specification of tavaal.ops.score_topb: the selection of topb(D(r, mu), b), fused.

The oracle is the eager discriminator itself (``tavaal.models.Discriminator``) in float64:
the returned values must be its sigmoid outputs (within fp32 tolerance), every returned index
must be among the b best within that tolerance, and where the float64 scores leave no
near-tie the selection must be exactly the float64 one.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tavaal.ops as ops
from ops_backends import BACKENDS, use_backend
from ops_oracles import check_selection, eager64
from tavaal.models import Discriminator



@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 700),
    st.integers(1, 12),
    st.integers(2, 5),
    st.integers(1, 48),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**31 - 1),
    st.data(),
)
def test_same_selection_as_eager(n, d, layers, hidden, rank_cond, largest, seed, data):
    torch.manual_seed(seed)
    D = Discriminator(d, hidden, layers, rank_conditioned=rank_cond)
    mu = torch.randn(n, d)
    r = torch.rand(n) if rank_cond else None
    b = data.draw(st.integers(1, n))
    chunk = data.draw(st.sampled_from([0, 1, 7, 64]))
    for name in BACKENDS:
        with use_backend(name):
            v, i = ops.score_topb(mu, r, D, b, largest=largest, chunk_size=chunk)
        check_selection(D, r, mu, b, v, i, largest)


@pytest.mark.parametrize("name", BACKENDS)
def test_return_scores_equals_eager_probabilities(name):
    D = Discriminator(16, 64, 5)
    mu, r = torch.randn(3000, 16), torch.rand(3000, 1)  # r may be (N, 1)
    with use_backend(name):
        v, i, s = ops.score_topb(mu, r, D, 100, return_scores=True)
    with torch.no_grad():
        torch.testing.assert_close(s, D(r, mu), rtol=0, atol=2e-6)
    assert torch.equal(s[i], v)
    check_selection(D, r, mu, 100, v, i)


def test_r_is_ignored_without_rank_conditioning():
    D = Discriminator(8, 32, 3, rank_conditioned=False)
    mu = torch.randn(500, 8)
    with use_backend("cpp"):
        a = ops.score_topb(mu, None, D, 20)
        b = ops.score_topb(mu, torch.rand(500), D, 20)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_ties_in_score_break_to_the_lower_index():
    """Repeated rows give (mostly) equal probabilities; the order is (value, index) exactly.

    The GEMM may round a row differently depending on its position in the chunk, so the
    oracle is the op's own returned scores, not the eager model.
    """
    D = Discriminator(4, 8, 2)
    mu = torch.randn(5, 4).repeat(40, 1)
    r = torch.rand(5).repeat(40)
    for name in BACKENDS:
        with use_backend(name):
            v, i, s = ops.score_topb(mu, r, D, 60, return_scores=True)
        assert len(torch.unique(s)) < 50, "the test needs ties"
        order = np.lexsort((np.arange(200), s.numpy()))[:60]
        assert i.tolist() == order.tolist()
        assert torch.equal(v, s[i])


def test_bf16_keeps_most_fp32_picks():
    torch.manual_seed(0)
    D = Discriminator(32, 128, 5)
    mu, r = torch.randn(20000, 32), torch.rand(20000)
    with use_backend("cpp"):
        v32, i32 = ops.score_topb(mu, r, D, 500)
        v16, i16 = ops.score_topb(mu, r, D, 500, precision="bf16")
    kept = len(set(i32.tolist()) & set(i16.tolist())) / 500
    assert kept >= 0.8, kept
    p = eager64(D, r, mu)
    np.testing.assert_allclose(v16.double().numpy(), p[i16].numpy(), rtol=0.05, atol=0.01)
    with use_backend("reference"):
        vr, ir = ops.score_topb(mu, r, D, 500, precision="bf16")
    assert len(set(ir.tolist()) & set(i16.tolist())) / 500 >= 0.9


def test_same_result_on_one_or_many_threads():
    D = Discriminator(16, 64, 5)
    mu, r = torch.randn(50000, 16), torch.rand(50000)
    old = torch.get_num_threads()
    try:
        res = []
        for t in (1, 2):
            torch.set_num_threads(t)
            with use_backend("cpp"):
                res.append(ops.score_topb(mu, r, D, 1000))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(res[0][1], res[1][1]) and torch.equal(res[0][0], res[1][0])


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", BACKENDS)
def test_clear_errors(name):
    D = Discriminator(4, 8, 3)
    mu, r = torch.randn(10, 4), torch.rand(10)
    with use_backend(name):
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.score_topb(mu, r, D, 0)
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.score_topb(mu, r, D, 11)
        with pytest.raises(ValueError, match="pass r"):
            ops.score_topb(mu, None, D, 2)
        with pytest.raises(ValueError, match="r must be"):
            ops.score_topb(mu, torch.rand(9), D, 2)
        with pytest.raises(ValueError, match="expects 4"):
            ops.score_topb(torch.randn(10, 5), r, D, 2)
        with pytest.raises(TypeError, match="dtype"):
            ops.score_topb(torch.ones(10, 4, dtype=torch.long), r, D, 2)
        with pytest.raises(ValueError, match="contiguous"):
            ops.score_topb(torch.randn(4, 10).t(), r, D, 2)
        with pytest.raises(ValueError, match="meta"):
            ops.score_topb(mu, torch.rand(10, device="meta"), D, 2)
        with pytest.raises(TypeError, match="layers"):
            ops.score_topb(mu, r, torch.nn.Linear(5, 1), 2)
        with pytest.raises(ValueError, match="precision"):
            ops.score_topb(mu, r, D, 2, precision="fp8")
        bad = mu.clone()
        bad[3, 0] = float("nan")
        with pytest.raises(ValueError, match="NaN"):
            ops.score_topb(bad, r, D, 2)


def test_callable_from_torchscript():
    with use_backend("cpp"):
        pass
    D = Discriminator(4, 8, 3)
    ws = [m.weight.detach() for m in D.layers]
    bs = [m.bias.detach() for m in D.layers]

    @torch.jit.script
    def select(mu: torch.Tensor, r: torch.Tensor, ws: list[torch.Tensor], bs: list[torch.Tensor], k: int):
        return torch.ops.tavaal.score_topb(mu, r, ws, bs, k, False, "fp32", 0, False)[1]

    mu, r = torch.randn(50, 4), torch.rand(50)
    with torch.no_grad():
        want = torch.sort(D(r, mu), stable=True).indices[:5]
    assert select(mu, r, ws, bs, 5).tolist() == want.tolist()


@pytest.mark.gpu
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    D = Discriminator(64, 512, 5)
    mu, r = torch.randn(100_000, 64), torch.rand(100_000)
    cpu = ops.score_topb(mu, r, D, 1000)
    gpu = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 1000)
    check_selection(D.cpu(), r, mu, 1000, gpu[0].cpu(), gpu[1].cpu(), atol=1e-5)
    assert len(set(cpu[1].tolist()) & set(gpu[1].cpu().tolist())) >= 990


# ------------------------------------------------------------- the registered op, directly
def _params(D):
    return [m.weight.detach() for m in D.layers], [m.bias.detach() for m in D.layers]


@pytest.mark.parametrize("name", BACKENDS)
def test_strided_r_gives_the_same_selection(name):
    """r may have any stride (a column of a bigger array); both the Python front and the
    registered op read it correctly (issue 9, defect 3)."""
    torch.manual_seed(3)
    D = Discriminator(6, 16, 3)
    mu = torch.randn(900, 6)
    table = torch.rand(900, 3)
    r = table[:, 1]
    assert not r.is_contiguous()
    with use_backend(name):
        got = ops.score_topb(mu, r, D, 50, return_scores=True)
        want = ops.score_topb(mu, r.contiguous(), D, 50, return_scores=True)
    for a, b_ in zip(got, want):
        assert torch.equal(a, b_)
    check_selection(D, r.contiguous(), mu, 50, got[0], got[1])


def test_registered_op_reads_strided_r():
    with use_backend("cpp"):
        pass
    torch.manual_seed(4)
    D = Discriminator(5, 12, 3)
    ws, bs = _params(D)
    mu, r2 = torch.randn(700, 5), torch.rand(1400)
    strided = torch.ops.tavaal.score_topb(mu, r2[::2], ws, bs, 40, False, "fp32", 64, True)
    dense = torch.ops.tavaal.score_topb(mu, r2[::2].contiguous(), ws, bs, 40, False, "fp32", 64, True)
    for a, b_ in zip(strided, dense):
        assert torch.equal(a, b_)


def test_registered_op_names_the_discriminator_for_nan_scores():
    """NaN probabilities are the discriminator's doing: the message says so and does not
    suggest top-b's nan_policy (which score_topb does not have; issue 9, defect 10)."""
    with use_backend("cpp"):
        pass
    D = Discriminator(4, 8, 2)
    ws, bs = _params(D)
    mu, r = torch.randn(30, 4), torch.rand(30)
    mu[7, 2] = float("nan")
    with pytest.raises(ValueError, match="discriminator produced 1 NaN score") as err:
        torch.ops.tavaal.score_topb(mu, r, ws, bs, 3, False, "fp32", 0, False)
    assert "nan_policy" not in str(err.value)


@pytest.mark.gpu
def test_cuda_strided_r_and_nan_message():
    D = Discriminator(6, 16, 3)
    mu, table = torch.randn(5000, 6), torch.rand(5000, 3)
    cpu = ops.score_topb(mu, table[:, 1], D, 70)
    gpu = ops.score_topb(mu.cuda(), table.cuda()[:, 1], D.cuda(), 70)
    check_selection(D.cpu(), table[:, 1].contiguous(), mu, 70, gpu[0].cpu(), gpu[1].cpu(), atol=1e-5)
    assert len(set(cpu[1].tolist()) & set(gpu[1].cpu().tolist())) >= 68
    mu[7, 2] = float("nan")
    with pytest.raises(ValueError, match="discriminator produced 1 NaN") as err:
        ops.score_topb(mu.cuda(), table.cuda()[:, 1], D.cuda(), 3)
    assert "nan_policy" not in str(err.value)
