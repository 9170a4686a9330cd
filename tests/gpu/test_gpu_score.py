"""Fused scoring on CUDA (cuBLAS GEMMs + streaming top-b): the selection of topb(D(r, mu))."""
import pytest
import torch

import tavaal.ops as ops
from tavaal.models import Discriminator
from ops_oracles import check_selection, eager64

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("chunk", [0, 7, 4096])
def test_strided_r_and_n_not_a_multiple_of_16(chunk):
    torch.manual_seed(0)
    n = 100_003
    D = Discriminator(32, 256, 4)
    mu, table = torch.randn(n, 32), torch.rand(n, 4)
    r = table[:, 2]
    v, i, s = ops.score_topb(mu.cuda(), table.cuda()[:, 2], D.cuda(), 500, return_scores=True, chunk_size=chunk)
    D = D.cpu()
    check_selection(D, r.contiguous(), mu, 500, v.cpu(), i.cpu(), atol=1e-5)
    torch.testing.assert_close(s.cpu().double(), eager64(D, r.contiguous(), mu), rtol=0, atol=1e-5)
    assert torch.equal(s[i], v)


@pytest.mark.parametrize("hidden, layers", [(3584, 3), (4096, 2), (64, 17)])
def test_wide_and_deep_discriminators(hidden, layers):
    """Widths at and beyond the old kernel's shared-memory limit; 17 layers (its cap was 16)."""
    torch.manual_seed(1)
    D = Discriminator(16, hidden, layers)
    mu, r = torch.randn(20_011, 16), torch.rand(20_011)
    v, i = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 200, largest=True)
    check_selection(D.cpu(), r, mu, 200, v.cpu(), i.cpu(), largest=True, atol=2e-5)


def _matmul_settings():
    m = torch.backends.cuda.matmul
    return (getattr(m, "fp32_precision", None) if hasattr(m, "fp32_precision") else m.allow_tf32,
            m.allow_bf16_reduced_precision_reduction)


def _set_matmul_settings(tf32, bf16_reduced):
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):  # torch >= 2.9: the legacy allow_tf32 must not be mixed in
        m.fp32_precision = tf32 if isinstance(tf32, str) else ("tf32" if tf32 else "ieee")
    else:
        m.allow_tf32 = bool(tf32)
    m.allow_bf16_reduced_precision_reduction = bf16_reduced


def test_precision_is_the_ops_own_whatever_the_global_matmul_settings():
    """With TF32 and reduced-precision bf16 reductions allowed process-wide, the fp32 path is
    still full fp32 (TF32 would be ~1e-3 off float64), bf16 accumulates in fp32 and keeps the
    picks, and the op leaves both settings as they were (it touches no global state)."""
    torch.manual_seed(2)
    D = Discriminator(64, 512, 5)
    mu, r = torch.randn(200_000, 64), torch.rand(200_000)
    old = _matmul_settings()
    _set_matmul_settings(True, True)
    try:
        allowed = _matmul_settings()
        v32, i32, s32 = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 1000, return_scores=True)
        v16, i16 = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 1000, precision="bf16")
        assert _matmul_settings() == allowed, "the op changed a global matmul setting"
    finally:
        _set_matmul_settings(*old)
    D = D.cpu()
    torch.testing.assert_close(s32.cpu().double(), eager64(D, r, mu), rtol=0, atol=1e-5)
    assert len(set(i16.tolist()) & set(i32.tolist())) >= 800
    cpu16 = ops.score_topb(mu, r, D, 1000, precision="bf16")
    assert len(set(i16.tolist()) & set(cpu16[1].tolist())) >= 900


def test_chunks_that_cannot_enter_the_top_b_skip_the_select_and_change_nothing():
    """Scores rising with the row index (largest=False keeps the first rows): after the first
    chunk no later chunk can enter, and the result equals one select over everything."""
    torch.manual_seed(4)
    D = Discriminator(2, 16, 2)
    with torch.no_grad():  # logit = relu(r): the score rises with r
        for p in D.parameters():
            p.zero_()
        D.layers[0].weight[0, 2] = 1.0
        D.layers[1].weight[0, 0] = 1.0
    mu = torch.randn(300_000, 2)
    r = torch.linspace(0, 1, 300_000)
    whole = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 300, chunk_size=300_000)
    chunked = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 300, chunk_size=4096)
    assert torch.equal(whole[1], chunked[1]) and torch.equal(whole[0], chunked[0])
    cpu = ops.score_topb(mu, r, D.cpu(), 300)
    assert torch.equal(chunked[1].cpu(), cpu[1])


def test_no_n_sized_buffer():
    torch.manual_seed(3)
    n = 20_000_000
    D = Discriminator(8, 32, 3).cuda()
    mu, r = torch.randn(n, 8, device="cuda"), torch.rand(n, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    ops.score_topb(mu, r, D, 100, chunk_size=65536)
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < 2 * n, f"{extra} bytes: an N-sized fp32 buffer alone would be {4 * n}"


def test_nan_message_names_the_discriminator():
    D = Discriminator(4, 8, 2).cuda()
    mu, r = torch.randn(1000, 4, device="cuda"), torch.rand(1000, device="cuda")
    mu[17, 1] = float("nan")
    with pytest.raises(ValueError, match="discriminator produced 1 NaN") as err:
        ops.score_topb(mu, r, D, 5)
    assert "nan_policy" not in str(err.value)
