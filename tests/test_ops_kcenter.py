"""Specification of tavaal.ops.kcenter_greedy: the plain greedy k-center, exactly.

The oracle is an independent float64 simulation of the greedy along the op's own picks: at
every step the pick must be a valid argmax of the min-distance to the centers chosen so far
(within floating-point tolerance), it must BE the float64 argmax when the float64 runner-up is
not within that tolerance, and on integer-valued data (all distances exact in fp32 and fp64)
the picks must be identical to the float64 greedy, ties to the lower index included.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tavaal.ops as ops
from ops_backends import BACKENDS, use_backend
from ops_oracles import RTOL, brute_greedy, check_greedy


def make_features(n, d, kind, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        x = torch.randn(n, d, generator=g)
    elif kind == "integer":  # exact distances in fp32/fp16/bf16 and float64: real ties
        x = torch.randint(-3, 4, (n, d), generator=g).float()
    elif kind == "duplicates":
        base = torch.randint(-2, 3, (max(1, n // 5), d), generator=g).float()
        x = base[torch.randint(0, base.shape[0], (n,), generator=g)]
    elif kind == "all_equal":
        x = torch.full((n, d), 1.5)
    elif kind == "clustered":
        c = 4 * torch.randn(20, d, generator=g)
        x = c[torch.randint(0, 20, (n,), generator=g)] + 0.3 * torch.randn(n, d, generator=g)
    return x.to(dtype).contiguous()


# ------------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 160),
    st.integers(1, 40),
    st.sampled_from(["gaussian", "integer", "duplicates", "all_equal", "clustered"]),
    st.integers(0, 2**31 - 1),
    st.data(),
)
def test_greedy_picks_and_radii(n, d, kind, seed, data):
    x = make_features(n, d, kind, seed)
    n_centers = data.draw(st.sampled_from([0, 1, n // 3, n - 1]))
    g = torch.Generator().manual_seed(seed)
    centers = torch.randperm(n, generator=g)[:n_centers]
    b = data.draw(st.integers(1, n - n_centers))
    first = data.draw(st.integers(0, n - 1))
    exact = kind in ("integer", "duplicates", "all_equal")
    for name in BACKENDS:
        with use_backend(name):
            if n_centers:
                idx, radii = ops.kcenter_greedy(x, b, centers=centers)
            else:
                idx, radii = ops.kcenter_greedy(x, b, first=first)
        assert idx.shape == (b,) and idx.dtype == torch.int64
        assert radii.shape == (b,) and radii.dtype == torch.float32
        check_greedy(x, idx, radii, centers.tolist(), first, exact=exact)
        if exact:
            assert idx.tolist() == brute_greedy(x.double().numpy(), b, centers.tolist(), first)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([torch.float16, torch.bfloat16]), st.sampled_from(["gaussian", "integer"]), st.integers(0, 10**6))
def test_low_precision_features_use_the_stored_values(dtype, kind, seed):
    x = make_features(150, 24, kind, seed, dtype)
    centers = torch.arange(0, 150, 11)
    with use_backend("cpp"):
        idx, radii = ops.kcenter_greedy(x, 40, centers=centers)
    check_greedy(x, idx, radii, centers.tolist(), exact=kind == "integer")
    with use_backend("reference"):
        ref = ops.kcenter_greedy(x, 40, centers=centers)
    check_greedy(x, ref[0], ref[1], centers.tolist(), exact=kind == "integer")


def test_pruned_search_is_exact_on_clustered_data_with_many_centers():
    """Large enough that whole groups are skipped; the picks still follow the exact greedy."""
    g = torch.Generator().manual_seed(1)
    c = 6 * torch.randn(40, 16, generator=g)
    x = (c[torch.randint(0, 40, (6000,), generator=g)] + torch.randn(6000, 16, generator=g)).contiguous()
    centers = torch.randperm(6000, generator=g)[:700]
    with use_backend("cpp"):
        idx, radii = ops.kcenter_greedy(x, 300, centers=centers)
    check_greedy(x, idx, radii, centers.tolist())
    assert torch.all(radii[1:] <= radii[:-1]), "the covering radius never grows"
    with use_backend("reference"):
        ref_idx, ref_radii = ops.kcenter_greedy(x, 300, centers=centers)
    torch.testing.assert_close(radii, ref_radii, rtol=RTOL, atol=0)


def test_same_picks_on_one_or_many_threads():
    x = make_features(20000, 32, "clustered", 5)
    centers = torch.arange(0, 20000, 97)
    old = torch.get_num_threads()
    try:
        res = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with use_backend("cpp"):
                res.append(ops.kcenter_greedy(x, 200, centers=centers))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])


@pytest.mark.parametrize("name", BACKENDS)
def test_b_equal_to_all_remaining_points(name):
    x = make_features(50, 3, "gaussian", 0)
    centers = torch.zeros(50, dtype=torch.bool)
    centers[:20] = True
    with use_backend(name):
        idx, radii = ops.kcenter_greedy(x, 30, centers=centers)
    assert sorted(idx.tolist()) == list(range(20, 50))
    assert radii[-1] == 0
    check_greedy(x, idx, radii, list(range(20)))


@pytest.mark.parametrize("name", BACKENDS)
def test_empty_initial_set_starts_at_first(name):
    x = make_features(100, 5, "gaussian", 2)
    with use_backend(name):
        for centers in (None, torch.empty(0, dtype=torch.long), torch.zeros(100, dtype=torch.bool)):
            idx, radii = ops.kcenter_greedy(x, 10, centers=centers, first=42)
            assert idx[0] == 42
            check_greedy(x, idx, radii, [], first=42)
        assert ops.kcenter_greedy(x, 3)[0][0] == 0  # default first


@pytest.mark.parametrize("name", BACKENDS)
def test_cosine_metric(name):
    x = make_features(300, 12, "gaussian", 3) * torch.rand(300, 1) * 10  # scale must not matter
    centers = torch.arange(0, 300, 10)
    with use_backend(name):
        idx, radii = ops.kcenter_greedy(x, 40, centers=centers, metric="cosine")
        idx2, _ = ops.kcenter_greedy(x / x.norm(dim=1, keepdim=True), 40, centers=centers, metric="cosine")
    assert idx.tolist() == idx2.tolist()
    assert float(radii.max()) <= 2.0
    check_greedy(x, idx, radii, centers.tolist(), metric="cosine")


def test_index_and_mask_centers_agree_and_duplicates_are_merged():
    x = make_features(200, 6, "gaussian", 4)
    mask = torch.zeros(200, dtype=torch.bool)
    mask[::3] = True
    idx_centers = torch.nonzero(mask).flatten()
    with use_backend("cpp"):
        a = ops.kcenter_greedy(x, 20, centers=mask)
        b = ops.kcenter_greedy(x, 20, centers=torch.cat([idx_centers.flip(0), idx_centers[:5]]).to(torch.int32))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_memory_is_linear_no_n_by_l_matrix():
    """N=100k, L=10k: an N x L fp32 matrix would be 4 GB; the op must stay within ~100 MB."""
    code = r"""
import resource, torch, tavaal.ops as ops
torch.manual_seed(0)
x = torch.rand(100_000, 4)
centers = torch.randperm(100_000)[:10_000]
ops.kcenter_greedy(x, 10, centers=centers[:10])   # warm-up: load the library, threads
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
idx, radii = ops.kcenter_greedy(x, 100, centers=centers)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    env = {k: v for k, v in os.environ.items() if k != "TAVAAL_FORCE_REFERENCE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    grown_mb = float(out.stdout.strip().splitlines()[-1])
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB"


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", BACKENDS)
def test_clear_errors(name):
    x = torch.randn(10, 3)
    with use_backend(name):
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.kcenter_greedy(x, 0)
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.kcenter_greedy(x, 11)
        with pytest.raises(ValueError, match=r"b must be in \[1, 7\]"):
            ops.kcenter_greedy(x, 8, centers=torch.tensor([0, 1, 2]))
        with pytest.raises(ValueError, match=r"\[0, 10\)"):
            ops.kcenter_greedy(x, 2, centers=torch.tensor([3, 10]))
        with pytest.raises(ValueError, match=r"\[0, 10\)"):
            ops.kcenter_greedy(x, 2, first=10)
        with pytest.raises(ValueError, match="first is only used"):
            ops.kcenter_greedy(x, 2, centers=torch.tensor([3]), first=1)
        with pytest.raises(TypeError, match="dtype"):
            ops.kcenter_greedy(x.double(), 2)
        with pytest.raises(TypeError, match="dtype"):
            ops.kcenter_greedy(torch.ones(10, 3, dtype=torch.int64), 2)
        with pytest.raises(ValueError, match="2-D"):
            ops.kcenter_greedy(torch.randn(10), 2)
        with pytest.raises(ValueError, match="contiguous"):
            ops.kcenter_greedy(torch.randn(3, 10).t(), 2)
        with pytest.raises(ValueError, match="meta"):
            ops.kcenter_greedy(x, 2, centers=torch.tensor([1], device="meta"))
        with pytest.raises(ValueError, match="metric"):
            ops.kcenter_greedy(x, 2, metric="manhattan")
        for bad in (float("nan"), float("inf")):
            y = x.clone()
            y[4, 1] = bad
            with pytest.raises(ValueError, match="NaN or inf in 1 row"):
                ops.kcenter_greedy(y, 2)
        z = x.clone()
        z[2] = 0
        with pytest.raises(ValueError, match="zero row"):
            ops.kcenter_greedy(z, 2, metric="cosine")


def test_torch_op_checks_its_own_arguments():
    with use_backend("cpp"):
        with pytest.raises(ValueError, match="b must be"):
            torch.ops.tavaal.kcenter_greedy(torch.randn(5, 2), 6)
        with pytest.raises(IndexError, match="centers indices"):
            torch.ops.tavaal.kcenter_greedy(torch.randn(5, 2), 1, torch.tensor([7]))
        with pytest.raises(ValueError, match="contiguous"):
            torch.ops.tavaal.kcenter_greedy(torch.randn(2, 5).t(), 1)


def test_callable_from_torchscript():
    with use_backend("cpp"):
        pass

    @torch.jit.script
    def coreset(x: torch.Tensor, centers: torch.Tensor, k: int) -> torch.Tensor:
        return torch.ops.tavaal.kcenter_greedy(x, k, centers, 0, "euclidean")[0]

    x = torch.tensor([[0.0], [1.0], [5.0], [2.0], [10.0]])
    assert coreset(x, torch.tensor([0]), 3).tolist() == [4, 2, 3]


@pytest.mark.gpu
def test_cuda_matches_cpu():
    for kind, dtype in [("clustered", torch.float32), ("gaussian", torch.float32), ("integer", torch.bfloat16),
                        ("gaussian", torch.float16)]:
        x = make_features(50_000, 64, kind, 7, dtype)
        centers = torch.randperm(50_000)[:2000]
        cpu = ops.kcenter_greedy(x, 300, centers=centers)
        gpu = ops.kcenter_greedy(x.cuda(), 300, centers=centers.cuda())
        if kind == "integer":
            assert torch.equal(gpu[0].cpu(), cpu[0])
        check_greedy(x, gpu[0].cpu(), gpu[1].cpu(), centers.tolist(), exact=kind == "integer")
        torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=RTOL, atol=1e-6)
    x = make_features(3000, 16, "gaussian", 8)
    cpu = ops.kcenter_greedy(x, 50, first=7, metric="cosine")
    gpu = ops.kcenter_greedy(x.cuda(), 50, first=7, metric="cosine")
    check_greedy(x, gpu[0].cpu(), gpu[1].cpu(), [], first=7, metric="cosine")


# ------------------------------------------------------------------ fp32 arithmetic, exactly
def lane_sqdist32(a, c):
    """The kernels' squared distance in float32 for D <= 16 (one coordinate per lane, so each
    lane is one rounded square) followed by the fixed pairwise reduction of the 16 lanes."""
    assert a.shape[-1] <= 16
    with np.errstate(over="ignore", invalid="ignore"):
        diff = (a.astype(np.float32) - c.astype(np.float32)).astype(np.float32)
        lanes = np.zeros(a.shape[:-1] + (16,), np.float32)
        lanes[..., : a.shape[-1]] = diff * diff
        for half in (8, 4, 2, 1):
            lanes = (lanes[..., :half] + lanes[..., half : 2 * half]).astype(np.float32)
    return lanes[..., 0]


def fp32_greedy(x, b, centers):
    """Plain greedy on lane_sqdist32 values (ties -> lowest index): (picks, squared radii)."""
    n = x.shape[0]
    mind = np.full(n, np.inf, np.float32)
    is_c = np.zeros(n, bool)
    for c in centers:
        mind = np.minimum(mind, lane_sqdist32(x, x[c]))
        is_c[c] = True
    picks, radii2 = [], []
    for _ in range(b):
        p = int(np.argmax(np.where(is_c, np.float32(-1), mind)))
        picks.append(p)
        is_c[p] = True
        mind = np.minimum(mind, lane_sqdist32(x, x[p]))
        rest = mind[~is_c]
        radii2.append(rest.max() if rest.size else np.float32(0))
    return picks, np.array(radii2, np.float32)


def test_huge_coordinates_never_skip_on_an_overflowed_bound():
    """|x| ~ 1e19: 4 d2 overflows fp32 and so does the distance between two centers; the
    pruning must not read `inf >= inf` as "cannot get closer" (issue 9, defect 11)."""
    x = torch.tensor([[0.0], [1.7e19], [3.3e19]])
    with use_backend("cpp"):
        idx, radii = ops.kcenter_greedy(x, 2, centers=torch.tensor([0]))
    assert idx.tolist() == [2, 1]
    # point 1 is (1.6e19)^2 from the new center 2, closer than (1.7e19)^2 from center 0
    np.testing.assert_allclose(radii.double().numpy(), [1.6e19, 0.0], rtol=1e-6)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("d", [1, 2, 5])
def test_huge_coordinates_follow_the_fp32_greedy_exactly(seed, d):
    """Coordinates up to 1.5e19: many squared distances overflow to +inf. The picks and radii
    are bit-identical to the plain greedy on the same fp32 arithmetic (inf ties -> lowest index)."""
    g = torch.Generator().manual_seed(seed)
    x = ((torch.rand(400, d, generator=g) * 2 - 1) * 1.5e19).contiguous()
    x[torch.rand(400, generator=g) < 0.5] *= 1e-3  # a dense core next to the huge points
    centers = torch.randperm(400, generator=g)[:30]
    want_picks, want_r2 = fp32_greedy(x.numpy(), 60, centers.tolist())
    with use_backend("cpp"):
        idx, radii = ops.kcenter_greedy(x, 60, centers=centers)
    assert idx.tolist() == want_picks
    np.testing.assert_array_equal(radii.numpy(), np.sqrt(want_r2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [3, 16])
def test_cosine_normalises_with_the_lane_ordered_norm(dtype, d):
    """Cosine = Euclidean on x / ||x|| where ||x||^2 is summed in the kernels' lane order, the
    sqrt and the divisions correctly rounded fp32 (the CUDA kernel does the same operations,
    so both devices pick the same points; issue 9, defect 2)."""
    g = torch.Generator().manual_seed(d)
    x = (torch.randn(500, d, generator=g) * torch.rand(500, 1, generator=g) * 30).to(dtype).contiguous()
    x32 = x.float().numpy()
    nrm = np.sqrt(lane_sqdist32(x32, np.zeros(d, np.float32))).astype(np.float32)
    y = torch.from_numpy((x32 / nrm[:, None]).astype(np.float32))
    centers = torch.arange(0, 500, 25)
    with use_backend("cpp"):
        ci, cr = ops.kcenter_greedy(x, 80, centers=centers, metric="cosine")
        ei, er = ops.kcenter_greedy(y, 80, centers=centers)
    assert ci.tolist() == ei.tolist()
    torch.testing.assert_close(cr, er.double().pow(2).div(2).float(), rtol=1e-6, atol=0)


def test_cosine_rejects_rows_whose_norm_overflows():
    x = torch.ones(5, 4)
    x[3] = 3e19
    with use_backend("cpp"):
        with pytest.raises(ValueError, match="overflows fp32"):
            ops.kcenter_greedy(x, 2, metric="cosine")
