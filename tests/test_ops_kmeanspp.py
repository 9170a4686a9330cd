"""Specification of tavaal.ops.kmeanspp: exact k-means++ D^2 sampling with an explicit random stream.

The oracle is an independent float64 brute force on MATERIALISED points (for the outer-product
mode the N x (D*F) embeddings g_i = x_i (x) y_i), distances from differences, the weights'
cumulative sum in plain index order and inverse-CDF sampling with the same uniforms:
pick t = the smallest i with cumsum(w)_i > u_t * sum(w).
* On integer-valued data every distance and sum is exact in float64, so the picks and the
  potentials must be identical, boundary hits and ties included.
* On real-valued data the op is simulated step by step along its own picks: each pick must be
  the brute-force pick unless the target u_t * T lies within rounding (1e-9 T) of the
  boundary between the two. (Above 65,536 points the op forms its sums in a tree of 256-way
  nodes, not in one running sum: the same picks up to that rounding.)
* The backends share one arithmetic contract (csrc/kmeanspp_common.h): the C++ CPU and CUDA
  kernels compute the same bits (16-lane float64 dot products, the same sums in the same
  order), so their picks are identical; the pure-torch reference forms distances with torch's
  own sums, so it agrees with them up to rounding at a near-tie.
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
from tavaal.ops.kmeanspp import draw_uniforms

TOL = 1e-9  # relative rounding slack of the real-valued comparison


def embed(x, y=None):
    """The points as a float64 numpy matrix (outer products materialised)."""
    x64 = x.to(torch.float64).numpy()
    if y is None:
        return x64
    y64 = y.to(torch.float64).numpy()
    return np.einsum("nc,nf->ncf", x64, y64).reshape(x64.shape[0], -1)


def first_pick(g, u0, init):
    if init == "norm":
        return int(np.argmax((g * g).sum(1)))  # first maximal index
    return min(int(u0 * g.shape[0]), g.shape[0] - 1)


def brute_kmeanspp(g, uniforms, init):
    """Independent float64 k-means++ on materialised points (see module doc)."""
    n = g.shape[0]
    u = [float(v) for v in uniforms]
    picked = np.zeros(n, bool)
    mind = np.full(n, np.inf)
    picks, potential = [], []
    p = first_pick(g, u[0], init)
    for t in range(len(u)):
        picks.append(p)
        picked[p] = True
        mind = np.minimum(mind, ((g - g[p]) ** 2).sum(1))
        w = np.where(picked, 0.0, mind)
        potential.append(w.sum())
        if t + 1 == len(u):
            break
        cum = np.cumsum(w)
        if cum[-1] > 0:
            p = int(np.searchsorted(cum, u[t + 1] * cum[-1], side="right"))
        else:
            rest = np.flatnonzero(~picked)
            p = int(rest[min(int(u[t + 1] * len(rest)), len(rest) - 1)])
    return picks, potential


def check_along(g, picks, potential, uniforms, init):
    """Simulate in float64 along the op's picks; each pick must be the inverse-CDF pick up to
    rounding at a boundary; potentials within 1e-9 relative."""
    n = g.shape[0]
    u = [float(v) for v in uniforms]
    picks = [int(p) for p in picks]
    assert len(set(picks)) == len(picks), "a point was picked twice"
    assert picks[0] == first_pick(g, u[0], init)
    picked = np.zeros(n, bool)
    mind = np.full(n, np.inf)
    for t, p in enumerate(picks):
        if t > 0:
            w = np.where(picked, 0.0, mind)
            cum = np.cumsum(w)
            total = cum[-1]
            if total > 0:
                target = u[t] * total
                want = int(np.searchsorted(cum, target, side="right"))
                if p != want:
                    lo = cum[p - 1] if p else 0.0
                    assert w[p] > 0 and lo - TOL * total <= target <= cum[p] + TOL * total, (
                        f"pick {t}: {p} but the D^2 sampling picks {want} (target {target}, "
                        f"interval of {p}: [{lo}, {cum[p]}])"
                    )
            else:
                rest = np.flatnonzero(~picked)
                assert p == rest[min(int(u[t] * len(rest)), len(rest) - 1)], f"pick {t}: all-zero rule"
        picked[p] = True
        mind = np.minimum(mind, ((g - g[p]) ** 2).sum(1))
        want_pot = np.where(picked, 0.0, mind).sum()
        np.testing.assert_allclose(float(potential[t]), want_pot, rtol=TOL, atol=1e-12 * max(1.0, want_pot),
                                   err_msg=f"potential after pick {t}")


def make_points(n, d, kind, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        x = torch.randn(n, d, generator=gen)
    elif kind == "integer":  # exact arithmetic in float64: real ties and boundary hits
        x = torch.randint(-3, 4, (n, d), generator=gen).float()
    elif kind == "duplicates":  # few distinct points: the all-zero-weight rule is reached
        base = torch.randint(-2, 3, (max(1, n // 6), d), generator=gen).float()
        x = base[torch.randint(0, base.shape[0], (n,), generator=gen)]
    elif kind == "all_equal":
        x = torch.full((n, d), 1.5)
    elif kind == "clustered":
        c = 4 * torch.randn(12, d, generator=gen)
        x = c[torch.randint(0, 12, (n,), generator=gen)] + 0.2 * torch.randn(n, d, generator=gen)
    return x.to(dtype).contiguous()


# ------------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 12),
    st.sampled_from(["gaussian", "integer", "duplicates", "all_equal", "clustered"]),
    st.booleans(),
    st.sampled_from(["uniform", "norm"]),
    st.integers(0, 2**31 - 1),
    st.data(),
)
def test_picks_follow_d2_sampling(n, d, kind, outer, init, seed, data):
    x = make_points(n, d, kind, seed)
    y = make_points(n, data.draw(st.integers(1, 9)), kind, seed + 1) if outer else None
    b = data.draw(st.integers(1, n))
    u = draw_uniforms(b, seed)
    g = embed(x, y)
    exact = kind in ("integer", "duplicates", "all_equal")
    for name in BACKENDS:
        with use_backend(name):
            idx, pot = ops.kmeanspp(x, b, y=y, init=init, uniforms=u)
        assert idx.shape == (b,) and idx.dtype == torch.int64
        assert pot.shape == (b,) and pot.dtype == torch.float64
        if exact:
            want_idx, want_pot = brute_kmeanspp(g, u, init)
            assert idx.tolist() == want_idx, name
            assert pot.tolist() == want_pot, name
        else:
            check_along(g, idx, pot, u, init)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([torch.float16, torch.bfloat16, torch.float64]), st.sampled_from(["gaussian", "integer"]),
       st.booleans(), st.integers(0, 10**6))
def test_other_dtypes_use_the_stored_values(dtype, kind, outer, seed):
    x = make_points(200, 7, kind, seed, dtype)
    y = make_points(200, 5, kind, seed + 1, dtype) if outer else None
    u = draw_uniforms(40, seed)
    for name in BACKENDS:
        with use_backend(name):
            idx, pot = ops.kmeanspp(x, 40, y=y, init="norm", uniforms=u)
        if kind == "integer":
            assert (idx.tolist(), pot.tolist()) == brute_kmeanspp(embed(x, y), u, "norm")
        else:
            check_along(embed(x, y), idx, pot, u, "norm")


def test_target_on_a_boundary_goes_to_the_next_point():
    """Weights 0, 4, 4, 4, 4 (sum 16) and u = 0.25: the target 4 equals S_1, so the pick is 2."""
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    for name in BACKENDS:
        with use_backend(name):
            idx, pot = ops.kmeanspp(x, 2, uniforms=torch.tensor([0.0, 0.25], dtype=torch.float64))
            assert idx.tolist() == [0, 2]
            assert pot.tolist() == [16.0, 12.0]  # points 1, 3, 4 stay 4 from point 0
            assert ops.kmeanspp(x, 2, uniforms=torch.tensor([0.99, 0.0], dtype=torch.float64))[0].tolist() == [4, 0]


def test_first_pick_rules():
    x = torch.tensor([[1.0, 0.0], [3.0, 4.0], [0.0, 5.0], [0.1, 0.1]])  # norms 1, 5, 5, 0.14
    y = torch.tensor([[1.0], [1.0], [2.0], [1.0]])  # outer norms 1, 5, 10, 0.14
    u = torch.tensor([0.6, 0.5], dtype=torch.float64)
    for name in BACKENDS:
        with use_backend(name):
            assert ops.kmeanspp(x, 2, init="norm", uniforms=u)[0][0] == 1, "largest norm, ties -> lower index"
            assert ops.kmeanspp(x, 2, y=y, init="norm", uniforms=u)[0][0] == 2
            assert ops.kmeanspp(x, 2, init="uniform", uniforms=u)[0][0] == 2, "floor(u0 * N)"


@pytest.mark.parametrize("name", BACKENDS)
def test_picked_and_duplicate_points_are_never_drawn_while_others_weigh(name):
    base = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    x = base.repeat(20, 1).contiguous()  # 100 points, 5 distinct
    y = torch.rand(100, 4, generator=torch.Generator().manual_seed(1)).add_(0.5)
    y = y[torch.arange(100) % 5].contiguous()
    for yy in (None, y):
        with use_backend(name):
            idx, pot = ops.kmeanspp(x, 30, y=yy, seed=3)
        distinct = {int(i) % 5 for i in idx[:5]}
        assert distinct == set(range(5)), "the 5 distinct points come first"
        assert torch.all(pot[4:] == 0), "after them every weight is exactly 0"
        assert len(set(idx.tolist())) == 30


@pytest.mark.parametrize("name", BACKENDS)
def test_column_slices_of_one_matrix_need_no_copy(name):
    """BADGE stores [a | f] side by side: x = m[:, :K], y = m[:, K:] (row stride K + F)."""
    m = make_points(400, 3 + 20, "gaussian", 3)
    x, y = m[:, :3], m[:, 3:]
    assert not x.is_contiguous() and not y.is_contiguous()
    with use_backend(name):
        got = ops.kmeanspp(x, 25, y=y, init="norm", seed=2)
        want = ops.kmeanspp(x.contiguous(), 25, y=y.contiguous(), init="norm", seed=2)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("name", BACKENDS)
def test_b_equal_to_n_picks_every_point(name):
    x = make_points(70, 3, "gaussian", 1)
    with use_backend(name):
        idx, pot = ops.kmeanspp(x, 70, seed=5)
    assert sorted(idx.tolist()) == list(range(70))
    assert pot[-1] == 0


@pytest.mark.parametrize("name", BACKENDS)
def test_seed_defines_the_stream(name):
    x = make_points(500, 6, "gaussian", 2)
    with use_backend(name):
        a = ops.kmeanspp(x, 20, seed=11)
        b = ops.kmeanspp(x, 20, uniforms=draw_uniforms(20, 11))
        c = ops.kmeanspp(x, 20, seed=12)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_sampling_frequencies_match_d2_weights():
    """Statistical check of the second pick over 4000 streams (chi-square at p ~ 1e-6)."""
    x = torch.tensor([[0.0], [1.0], [2.0], [4.0]])
    want = np.array([0.0, 1.0, 4.0, 16.0]) / 21.0  # first pick 0 (u0 = 0)
    u = torch.rand(4000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    counts = np.zeros(4)
    with use_backend("cpp"):
        for v in u.tolist():
            counts[int(ops.kmeanspp(x, 2, uniforms=torch.tensor([0.0, v], dtype=torch.float64))[0][1])] += 1
    assert counts[0] == 0
    expected = want[1:] * 4000
    chi2 = (((counts[1:] - expected) ** 2) / expected).sum()
    assert chi2 < 27.6, (counts, expected)  # chi-square, 2 dof, p = 1e-6


def test_same_picks_on_one_or_many_threads():
    x = make_points(100_000, 10, "clustered", 5)
    y = make_points(100_000, 64, "gaussian", 6)
    old = torch.get_num_threads()
    try:
        res = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with use_backend("cpp"):
                res.append(ops.kmeanspp(x, 40, y=y, init="norm", seed=1))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])


def test_backends_agree_on_a_larger_pool():
    x = make_points(3000, 10, "clustered", 8)
    y = make_points(3000, 32, "gaussian", 9)
    out = {}
    for name in BACKENDS:
        with use_backend(name):
            out[name] = ops.kmeanspp(x, 100, y=y, init="norm", seed=4)
    check_along(embed(x, y), out["cpp"][0], out["cpp"][1], draw_uniforms(100, 4), "norm")
    assert torch.equal(out["cpp"][0], out["reference"][0])
    torch.testing.assert_close(out["cpp"][1], out["reference"][1], rtol=1e-12, atol=0)


def test_a_pool_above_the_root_fan_out_samples_through_the_tree():
    """70,000 integer points: 274 leaves, so the sums go through a level of two 256-way nodes
    above the leaves. Integer coordinates make every distance exact in every backend, so the
    backends' tree descents -- and the brute force's plain running sum, exact here too -- give
    the same picks and potentials bit for bit."""
    x = make_points(70_000, 3, "integer", 12)
    u = draw_uniforms(25, 6)
    want_idx, want_pot = brute_kmeanspp(embed(x), u, "uniform")
    for name in BACKENDS:
        with use_backend(name):
            idx, pot = ops.kmeanspp(x, 25, uniforms=u)
        assert idx.tolist() == want_idx, name
        assert pot.tolist() == want_pot, name


def test_the_tree_descent_agrees_between_backends_on_real_values():
    x = make_points(70_000, 6, "clustered", 13)
    out = {}
    for name in BACKENDS:
        with use_backend(name):
            out[name] = ops.kmeanspp(x, 30, seed=7)
    check_along(embed(x), out["cpp"][0], out["cpp"][1], draw_uniforms(30, 7), "uniform")
    assert torch.equal(out["cpp"][0], out["reference"][0])
    torch.testing.assert_close(out["cpp"][1], out["reference"][1], rtol=1e-12, atol=0)


def test_memory_is_linear_no_materialised_embeddings():
    """N = 200k, 10 x 64 outer products: materialised they would be 512 MB (fp32); an N x b
    matrix 160 MB. The op must stay within ~40 MB."""
    code = r"""
import resource, torch, tavaal.ops as ops
torch.manual_seed(0)
x = torch.randn(200_000, 10)
y = torch.randn(200_000, 64)
ops.kmeanspp(x[:1000].contiguous(), 5, y=y[:1000].contiguous())   # warm-up: library, threads
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
idx, pot = ops.kmeanspp(x, 200, y=y, init="norm")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    env = {k: v for k, v in os.environ.items() if k != "TAVAAL_FORCE_REFERENCE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    grown_mb = float(out.stdout.strip().splitlines()[-1])
    assert grown_mb < 40, f"peak RSS grew by {grown_mb:.0f} MB"


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", BACKENDS)
def test_clear_errors(name):
    x = torch.randn(10, 3)
    y = torch.randn(10, 4)
    u2 = torch.tensor([0.1, 0.2], dtype=torch.float64)
    with use_backend(name):
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.kmeanspp(x, 0)
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.kmeanspp(x, 11)
        with pytest.raises(TypeError, match="b must be an int"):
            ops.kmeanspp(x, 2.0)
        with pytest.raises(TypeError, match="dtype"):
            ops.kmeanspp(torch.ones(10, 3, dtype=torch.int64), 2)
        with pytest.raises(ValueError, match="2-D"):
            ops.kmeanspp(torch.randn(10), 2)
        with pytest.raises(ValueError, match="non-empty"):
            ops.kmeanspp(torch.randn(10, 0), 2)
        with pytest.raises(ValueError, match="contiguous"):
            ops.kmeanspp(torch.randn(3, 10).t(), 2)
        with pytest.raises(ValueError, match="contiguous"):
            ops.kmeanspp(x, 2, y=torch.randn(4, 10).t())
        with pytest.raises(TypeError, match="dtype of x"):
            ops.kmeanspp(x, 2, y=y.double())
        with pytest.raises(ValueError, match="9 rows but x has 10"):
            ops.kmeanspp(x, 2, y=y[:9])
        with pytest.raises(ValueError, match="meta"):
            ops.kmeanspp(x, 2, y=torch.randn(10, 4, device="meta"))
        with pytest.raises(ValueError, match="init"):
            ops.kmeanspp(x, 2, init="random")
        with pytest.raises(ValueError, match=r"shape \(2,\)"):
            ops.kmeanspp(x, 2, uniforms=u2[:1])
        with pytest.raises(TypeError, match="float64"):
            ops.kmeanspp(x, 2, uniforms=u2.float())
        for bad in (1.0, -0.1, float("nan")):
            with pytest.raises(ValueError, match=r"\[0, 1\)"):
                ops.kmeanspp(x, 2, uniforms=torch.tensor([0.5, bad], dtype=torch.float64))
        for bad in (float("nan"), float("inf")):
            z = x.clone()
            z[4, 1] = bad
            with pytest.raises(ValueError, match="NaN or inf in 1 row"):
                ops.kmeanspp(z, 2)
            w = y.clone()
            w[7, 0] = bad
            with pytest.raises(ValueError, match="NaN or inf in 1 row"):
                ops.kmeanspp(x, 2, y=w)


def test_torch_op_checks_its_own_arguments():
    u = torch.tensor([0.1, 0.2], dtype=torch.float64)
    with use_backend("cpp"):
        with pytest.raises(ValueError, match="b .* must be in"):
            torch.ops.tavaal.kmeanspp(torch.randn(1, 2), None, u, "uniform")
        with pytest.raises(ValueError, match="contiguous"):
            torch.ops.tavaal.kmeanspp(torch.randn(2, 5).t(), None, u, "uniform")
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            torch.ops.tavaal.kmeanspp(torch.randn(5, 2), None, u * 10, "uniform")
        with pytest.raises(ValueError, match="NaN or inf"):
            torch.ops.tavaal.kmeanspp(torch.full((5, 2), float("nan")), None, u, "uniform")
        with pytest.raises(TypeError, match="float64"):
            torch.ops.tavaal.kmeanspp(torch.randn(5, 2), None, u.float(), "uniform")


def test_callable_from_torchscript():
    with use_backend("cpp"):
        pass

    @torch.jit.script
    def seeding(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return torch.ops.tavaal.kmeanspp(x, None, u, "norm")[0]

    x = torch.tensor([[0.0], [1.0], [5.0], [2.0]])
    assert seeding(x, torch.tensor([0.3, 0.0], dtype=torch.float64)).tolist() == [2, 0]


def test_disabled_extension_falls_back_with_exactly_one_warning():
    code = r"""
import sys, warnings
sys.modules["tavaal._C"] = None   # makes `import tavaal._C` fail (and TAVAAL_NO_EXT: no JIT build)
import torch, tavaal.ops as ops
x = torch.tensor([[0.0], [1.0], [5.0], [2.0]])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    for _ in range(3):
        idx, pot = ops.kmeanspp(x, 2, init="norm", uniforms=torch.tensor([0.3, 0.0], dtype=torch.float64))
assert idx.tolist() == [2, 0], idx
msgs = [str(m.message) for m in w if "tavaal._C" in str(m.message)]
assert len(msgs) == 1, msgs
print("OK")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("TAVAAL_FORCE_REFERENCE", "TAVAAL_QUIET_FALLBACK")}
    env["TAVAAL_NO_EXT"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


@pytest.mark.gpu
def test_cuda_matches_cpu():
    """The CPU and CUDA kernels share the lane layout and the order of every sum: the same
    picks on every kind of data (near-ties included); the potentials to 1e-12 (the CPU
    compiler may contract the outer-product mode's multiply-add differently)."""
    for kind, dtype, outer in [("clustered", torch.float32, True), ("gaussian", torch.float32, False),
                               ("integer", torch.bfloat16, True), ("gaussian", torch.float16, False),
                               ("duplicates", torch.float32, True)]:
        x = make_points(70_000, 10, kind, 7, dtype)
        y = make_points(70_000, 48, kind, 8, dtype) if outer else None
        for init in ("uniform", "norm"):
            cpu = ops.kmeanspp(x, 200, y=y, init=init, seed=2)
            gpu = ops.kmeanspp(x.cuda(), 200, y=None if y is None else y.cuda(), init=init, seed=2)
            assert gpu[0].device.type == "cuda"
            assert torch.equal(gpu[0].cpu(), cpu[0]), (kind, dtype, init)
            torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-12, atol=0)
    x = make_points(600, 5, "gaussian", 9)
    gpu = ops.kmeanspp(x.cuda(), 60, seed=3)
    check_along(embed(x), gpu[0].cpu(), gpu[1].cpu(), draw_uniforms(60, 3), "uniform")


# ------------------------------------------------------------------------------- CUDA build
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.nvcc
def test_nvcc_compiles_the_kernel_without_torch_headers(tmp_path):
    src = os.path.join(ROOT, "csrc", "cuda", "kmeanspp_kernel.cu")
    for f in (src, os.path.join(ROOT, "csrc", "cuda", "kmeanspp_kernel.h")):
        text = open(f).read()
        assert not any(h in text for h in ("<torch/", "<ATen/", "<c10/")), f"{f} includes a torch header"
    cmd = ["nvcc", "-c", "-std=c++17", "-O3", "-arch=sm_90", f"-I{os.path.join(ROOT, 'csrc')}", src,
           "-o", str(tmp_path / "k.o")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr.lower(), out.stderr


@pytest.mark.nvcc
def test_cuda_registration_parses_against_torch_headers(tmp_path):
    import shutil

    import torch.utils.cpp_extension as cpp_ext

    nvcc = shutil.which("nvcc")
    cands = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda", os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))]
    inc = next((os.path.join(c, "include") for c in cands if c and os.path.exists(os.path.join(c, "include", "cuda_runtime.h"))), None)
    if inc is None:
        pytest.skip("CUDA toolkit headers (cuda_runtime.h) not found next to nvcc")
    stub = tmp_path / "c10" / "cuda" / "impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("#pragma once\n")  # generated by CMake in CUDA torch only
    cmd = ["g++", "-std=c++20", "-fsyntax-only", f"-I{tmp_path}"] + [f"-I{p}" for p in cpp_ext.include_paths()]
    cmd += [f"-I{inc}", f"-I{os.path.join(ROOT, 'csrc')}", os.path.join(ROOT, "csrc", "cuda", "kmeanspp_cuda.cpp")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
