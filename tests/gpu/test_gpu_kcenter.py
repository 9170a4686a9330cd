"""k-center on CUDA: the same picks and radii as the CPU kernel, bit for bit.

Both devices compute every distance with the same per-pair arithmetic (16 fp32 lanes, fmaf,
the same lane reduction), cosine rows are normalised by the same operations, and the radii's
square roots are correctly rounded on both: indices AND radii must be identical. Sizes cross
the old kernel's grid limits (N > 65535 x 16) and 32-bit element offsets (N x D > 2^31).
"""
import pytest
import torch

import tavaal.ops as ops
from ops_oracles import check_greedy

pytestmark = pytest.mark.gpu

BIG_N = 65535 * 16 + 17  # above the old kernel's 65535-block x 16-point grid


def _data(n, d, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g).to(dtype).contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
# d = 8, 20, 512: rows on 16-byte boundaries (the 16-byte-load update for fp32; 8 and 512 for
# fp16/bf16 too); the others take the per-element path
@pytest.mark.parametrize("d, n", [(1, BIG_N), (7, BIG_N), (8, BIG_N), (17, BIG_N), (20, BIG_N), (512, 100_003),
                                  (513, BIG_N), (10241, 20_000)])
def test_cpu_and_cuda_agree_bit_for_bit(d, n, dtype):
    x = _data(n, d, dtype, d)
    g = torch.Generator().manual_seed(1)
    centers = torch.randperm(n, generator=g)[:40]
    for kwargs in ({"centers": centers}, {"first": n - 1}):
        cpu = ops.kcenter_greedy(x, 12, **kwargs)
        gkw = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        gpu = ops.kcenter_greedy(x.cuda(), 12, **gkw)
        assert torch.equal(gpu[0].cpu(), cpu[0]), (kwargs.keys(), gpu[0].cpu().tolist(), cpu[0].tolist())
        assert torch.equal(gpu[1].cpu(), cpu[1]), (gpu[1].cpu().tolist(), cpu[1].tolist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("d", [7, 512, 513])
def test_cosine_is_bit_identical_too(d, dtype):
    x = (torch.randn(50_000, d, generator=torch.Generator().manual_seed(d)) * 3).to(dtype)
    centers = torch.arange(0, 50_000, 997)
    cpu = ops.kcenter_greedy(x, 30, centers=centers, metric="cosine")
    gpu = ops.kcenter_greedy(x.cuda(), 30, centers=centers.cuda(), metric="cosine")
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])


def test_more_than_2_to_the_31_elements_against_a_brute_force():
    """N x D > 2^31 (byte offsets beyond 32 bits): integer-valued data, so fp32 distances are
    exact and the picks must be the float64 greedy's exactly (ties to the lowest index)."""
    n, d = (1 << 31) // 512 + 4099, 512
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randint(-3, 4, (n, d), generator=g, device="cuda", dtype=torch.int8).float()
    x[n - 5] += 9  # the far point sits beyond the 2^31-element boundary
    idx, radii = ops.kcenter_greedy(x, 3, first=0)
    mind = torch.full((n,), float("inf"), dtype=torch.float64, device="cuda")
    picks, is_c = [0], torch.zeros(n, dtype=torch.bool, device="cuda")
    for _ in range(3):
        p = picks[-1]
        is_c[p] = True
        for s in range(0, n, 1 << 18):
            d2 = ((x[s : s + (1 << 18)].double() - x[p].double()) ** 2).sum(1)
            torch.minimum(mind[s : s + (1 << 18)], d2, out=mind[s : s + (1 << 18)])
        m = torch.where(is_c, torch.full_like(mind, -1.0), mind)
        picks.append(int(torch.argmax(m)))
    assert idx.tolist() == picks[:3]
    assert idx[1] == n - 5
    del x


def test_ops_run_on_the_current_stream():
    x = _data(200_000, 33, torch.float32, 5).cuda()
    centers = torch.arange(0, 200_000, 1001, device="cuda")
    want = ops.kcenter_greedy(x, 25, centers=centers)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        y = x * 1.0  # produced on the side stream
        got = ops.kcenter_greedy(y, 25, centers=centers)
        scores = torch.rand(1_000_003, device="cuda")
        tb = ops.topb(scores, 100)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert torch.equal(tb[1].cpu(), ops.topb(scores.cpu(), 100)[1])


def test_memory_is_the_features_plus_o_n():
    """1M x 512 bf16 (1 GiB): the op adds O(N) bytes (min-distances, center flags,
    partials), never an N x D copy (the finiteness check reads the bf16 values in place)."""
    n, d = 1_000_000, 512
    x = torch.rand(n, d, device="cuda").to(torch.bfloat16)
    centers = torch.randperm(n, device="cuda")[:1000]
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    ops.kcenter_greedy(x, 100, centers=centers)
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < 16 * n + (8 << 20), f"{extra / n:.1f} bytes per point beyond the features"


def test_nonfinite_rows_are_counted_in_the_native_dtype():
    x = torch.rand(70_000, 9, device="cuda").to(torch.float16)
    x[5, 3] = float("inf")
    x[60_000, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf in 2 row"):
        ops.kcenter_greedy(x, 3)


def test_gaussian_picks_follow_the_greedy():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(30_000, 24, generator=g)
    centers = torch.randperm(30_000, generator=g)[:300]
    idx, radii = ops.kcenter_greedy(x.cuda(), 60, centers=centers.cuda())
    check_greedy(x, idx.cpu(), radii.cpu(), centers.tolist())
