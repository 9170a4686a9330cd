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


def test_bf16_uses_fp32_accumulation_and_keeps_the_picks():
    torch.manual_seed(2)
    D = Discriminator(64, 512, 5)
    mu, r = torch.randn(200_000, 64), torch.rand(200_000)
    old = torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True  # the op must override it
    try:
        v16, i16 = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 1000, precision="bf16")
        assert torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction, "the op restores the flag"
    finally:
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = old
    v32, i32 = ops.score_topb(mu.cuda(), r.cuda(), D.cuda(), 1000)
    assert len(set(i16.tolist()) & set(i32.tolist())) >= 800
    cpu16 = ops.score_topb(mu, r, D.cpu(), 1000, precision="bf16")
    assert len(set(i16.tolist()) & set(cpu16[1].tolist())) >= 900


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
