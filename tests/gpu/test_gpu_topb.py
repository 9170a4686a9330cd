"""top-b on CUDA: identical values and indices to the CPU op, on the hard inputs."""
import pytest
import torch

import tavaal.ops as ops

pytestmark = pytest.mark.gpu

N = (1 << 20) + 3


def _inputs():
    g = torch.Generator().manual_seed(0)
    yield "all_equal", torch.full((N,), 0.25)
    z = torch.zeros(N)
    z[torch.rand(N, generator=g) < 0.5] = -0.0
    yield "signed_zeros", z
    s = torch.randn(N, generator=g)
    s[torch.rand(N, generator=g) < 0.1] = float("inf")
    s[torch.rand(N, generator=g) < 0.1] = float("-inf")
    yield "infs", s
    t = torch.rand(N, generator=g)  # (0, 1): one top key byte for all
    yield "unit_interval", t
    yield "ties", torch.randint(-2, 3, (N,), generator=g).float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("largest", [False, True])
def test_same_as_cpu(dtype, largest):
    for name, s in _inputs():
        s = s.to(dtype)
        for b in (1, 1000, N):
            want = ops.topb(s, b, largest=largest)
            got = ops.topb(s.cuda(), b, largest=largest)
            assert torch.equal(got[1].cpu(), want[1]), (name, b)
            assert torch.equal(got[0].cpu(), want[0]), (name, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_nan(dtype):
    g = torch.Generator().manual_seed(1)
    s = torch.randn(N, generator=g).to(dtype)
    s[torch.rand(N, generator=g) < 0.05] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ops.topb(s.cuda(), 5)
    for largest in (False, True):
        for b in (10, N):
            want = ops.topb(s, b, largest=largest, nan_policy="worst")
            got = ops.topb(s.cuda(), b, largest=largest, nan_policy="worst")
            assert torch.equal(got[1].cpu(), want[1])


def test_masks():
    g = torch.Generator().manual_seed(2)
    s = torch.rand(N, generator=g)
    mask = torch.rand(N, generator=g) < 0.3
    idx = torch.nonzero(mask).flatten()[::7]
    for m in (mask, idx, idx.flip(0).to(torch.int32)):
        want = ops.topb(s, 333, mask=m)
        got = ops.topb(s.cuda(), 333, mask=m.cuda())
        assert torch.equal(got[1].cpu(), want[1])
