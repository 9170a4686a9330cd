"""Specification of tavaal.ops.topb: the b best scores ordered by (value, index).

Every property is checked for both backends (the C++ extension and the pure-torch reference)
against an independent NumPy float64 brute force (np.lexsort).
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



def brute_topb(scores, b, largest=False, cand=None):
    """float64 oracle: order candidates by (is_nan, value (negated if largest), index)."""
    x = scores.detach().to(torch.float64).numpy()
    idx = np.arange(len(x)) if cand is None else np.asarray(cand)
    v = x[idx]
    nan = np.isnan(v)
    key = np.where(nan, 0.0, -v if largest else v)
    order = np.lexsort((idx, key, nan))[:b]
    return x[idx[order]], idx[order]


def assert_same(got, want_vals, want_idx):
    vals, idx = got
    assert idx.dtype == torch.int64
    assert idx.tolist() == list(want_idx)
    np.testing.assert_array_equal(vals.to(torch.float64).numpy(), want_vals)


# ------------------------------------------------------------------------------- properties
scores_st = st.integers(1, 400).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.sampled_from(["distinct", "ties", "all_equal", "with_inf"]),
        st.integers(0, 2**31 - 1),
    )
)


def make_scores(n, kind, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    if kind == "distinct":
        s = torch.randn(n, generator=g)
    elif kind == "ties":
        s = torch.randint(-3, 4, (n,), generator=g).float()
    elif kind == "all_equal":
        s = torch.full((n,), 0.5)
    else:
        s = torch.randn(n, generator=g)
        s[torch.rand(n, generator=g) < 0.2] = float("inf")
        s[torch.rand(n, generator=g) < 0.2] = float("-inf")
    return s.to(dtype)


@settings(max_examples=60, deadline=None)
@given(scores_st, st.data())
def test_matches_bruteforce_with_ties_and_infs(args, data):
    n, kind, seed = args
    b = data.draw(st.integers(1, n))
    largest = data.draw(st.booleans())
    s = make_scores(n, kind, seed)
    want = brute_topb(s, b, largest)
    for name in BACKENDS:
        with use_backend(name):
            assert_same(ops.topb(s, b, largest=largest), *want)


@settings(max_examples=40, deadline=None)
@given(scores_st, st.data())
def test_mask_and_index_subset_return_indices_into_the_full_array(args, data):
    n, kind, seed = args
    s = make_scores(n, kind, seed)
    g = torch.Generator().manual_seed(seed + 1)
    mask = torch.rand(n, generator=g) < data.draw(st.floats(0.05, 1.0))
    if not mask.any():
        mask[n // 2] = True
    cand = torch.nonzero(mask).flatten()
    b = data.draw(st.integers(1, int(cand.numel())))
    largest = data.draw(st.booleans())
    want = brute_topb(s, b, largest, cand.numpy())
    # index subset given unsorted and with duplicates: same candidates
    perm = cand[torch.randperm(cand.numel(), generator=g)]
    as_index = torch.cat([perm, perm[: max(1, perm.numel() // 3)]])
    for name in BACKENDS:
        with use_backend(name):
            assert_same(ops.topb(s, b, largest=largest, mask=mask), *want)
            assert_same(ops.topb(s, b, largest=largest, mask=as_index), *want)
            assert_same(ops.topb(s, b, largest=largest, mask=as_index.to(torch.int32)), *want)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**31 - 1), st.booleans(), st.data())
def test_nan_worst_ranks_nans_after_every_number(n, seed, largest, data):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g)
    s[torch.rand(n, generator=g) < 0.1] = float("inf") if not largest else float("-inf")
    s[torch.rand(n, generator=g) < 0.3] = float("nan")
    b = data.draw(st.integers(1, n))
    vals_want, idx_want = brute_topb(s, b, largest)
    for name in BACKENDS:
        with use_backend(name):
            vals, idx = ops.topb(s, b, largest=largest, nan_policy="worst")
            assert idx.tolist() == list(idx_want)
            np.testing.assert_array_equal(vals.numpy(), vals_want.astype(np.float32))  # NaN == NaN here


@pytest.mark.parametrize("name", BACKENDS)
def test_nan_raises_with_the_count(name):
    s = torch.arange(10.0)
    s[[2, 5, 7]] = float("nan")
    with use_backend(name):
        with pytest.raises(ValueError, match="3 NaN"):
            ops.topb(s, 2)
        # NaNs outside the candidates do not matter
        v, i = ops.topb(s, 2, mask=torch.tensor([0, 1, 3]))
        assert i.tolist() == [0, 1]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", BACKENDS)
def test_other_float_dtypes(dtype, name):
    s = make_scores(5000, "ties", 3, dtype) + make_scores(5000, "distinct", 4, dtype)
    want = brute_topb(s, 77, False)
    with use_backend(name):
        vals, idx = ops.topb(s, 77)
    assert vals.dtype == dtype
    assert idx.tolist() == list(want[1])


def test_large_input_multithreaded_and_thread_count_invariant():
    """N large enough for the vectorised multi-threaded path; heavy ties; b = N also works."""
    n = 1_000_003
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 1000, (n,), generator=g).float() / 7
    mask = torch.rand(n, generator=g) < 0.7
    want = brute_topb(s, 1000, False)
    want_m = brute_topb(s, 999, True, torch.nonzero(mask).flatten().numpy())
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with use_backend("cpp"):
                assert_same(ops.topb(s, 1000), *want)
                assert_same(ops.topb(s, 999, largest=True, mask=mask), *want_m)
    finally:
        torch.set_num_threads(old)
    small = s[:5000].contiguous()
    with use_backend("cpp"):
        assert_same(ops.topb(small, 5000), *brute_topb(small, 5000))


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", BACKENDS)
def test_clear_errors(name):
    s = torch.randn(10)
    with use_backend(name):
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.topb(s, 0)
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.topb(s, -3)
        with pytest.raises(ValueError, match=r"b must be in \[1, 10\]"):
            ops.topb(s, 11)
        with pytest.raises(ValueError, match="exceeds the number of candidates"):
            ops.topb(s, 4, mask=torch.arange(10) < 3)
        with pytest.raises(ValueError, match="exceeds the number of candidates"):
            ops.topb(s, 4, mask=torch.tensor([1, 1, 2]))
        with pytest.raises(TypeError, match="dtype"):
            ops.topb(torch.arange(10), 2)
        with pytest.raises(TypeError, match="int"):
            ops.topb(s, 2.0)
        with pytest.raises(ValueError, match="1-D"):
            ops.topb(s.reshape(2, 5), 2)
        with pytest.raises(ValueError, match="contiguous"):
            ops.topb(torch.randn(20)[::2], 2)
        with pytest.raises(ValueError, match="meta"):
            ops.topb(s, 2, mask=torch.ones(10, dtype=torch.bool, device="meta"))
        with pytest.raises(ValueError, match="length"):
            ops.topb(s, 2, mask=torch.ones(9, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"\[0, 10\)"):
            ops.topb(s, 2, mask=torch.tensor([0, 10]))
        with pytest.raises(TypeError, match="bool or an integer"):
            ops.topb(s, 2, mask=torch.ones(10))
        with pytest.raises(ValueError, match="nan_policy"):
            ops.topb(s, 2, nan_policy="ignore")


def test_torch_ops_checks_its_own_arguments():
    """The registered op validates too (it is callable without the Python front)."""
    with use_backend("cpp"):
        with pytest.raises(ValueError, match="contiguous"):
            torch.ops.tavaal.topb(torch.randn(20)[::2], 2)
        with pytest.raises(ValueError, match="b must be"):
            torch.ops.tavaal.topb(torch.randn(5), 6)
        with pytest.raises(TypeError, match="floating"):
            torch.ops.tavaal.topb(torch.arange(5), 2)


@pytest.mark.parametrize("b", [2**31 - 1, 2**31, 2**32 + 1, 2**62])
def test_b_beyond_32_bits_is_rejected_not_wrapped(b):
    """b is int64 end to end: a b that would wrap to a small int32 (2^32 + 1 -> 1) is
    rejected by the range check, never silently narrowed (issue 9, defect 7)."""
    s = torch.randn(3)
    with use_backend("cpp"):
        with pytest.raises(ValueError, match=r"b must be in \[1, 3\]"):
            torch.ops.tavaal.topb(s, b)
        with pytest.raises(ValueError, match=r"b must be in \[1, 3\]"):
            ops.topb(s, b)


# ------------------------------------------------------------------------- integration
def test_callable_from_torchscript():
    with use_backend("cpp"):  # fails (or skips with TAVAAL_NO_EXT) when the extension is missing
        pass

    @torch.jit.script
    def smallest(x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.ops.tavaal.topb(x, k, False, None, False)[1]

    s = torch.tensor([3.0, 1.0, 2.0, 1.0, 0.5])
    assert smallest(s, 3).tolist() == [4, 1, 3]


def test_backend_names_and_forced_reference(monkeypatch):
    monkeypatch.delenv("TAVAAL_FORCE_REFERENCE", raising=False)
    if not os.environ.get("TAVAAL_NO_EXT"):
        assert ops.backend() in ("cpp", "cpp+cuda"), ops.extension_error()
        assert ops.backend() == ("cpp+cuda" if torch.version.cuda else "cpp")
    monkeypatch.setenv("TAVAAL_FORCE_REFERENCE", "1")
    assert ops.backend() == "reference"


def test_disabled_extension_falls_back_with_exactly_one_warning():
    code = r"""
import sys, warnings
sys.modules["tavaal._C"] = None   # makes `import tavaal._C` fail (and TAVAAL_NO_EXT: no JIT build)
import torch, tavaal.ops as ops
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    for _ in range(3):
        v, i = ops.topb(torch.tensor([2.0, 1.0, 3.0]), 2)
    ops.kcenter_greedy(torch.randn(20, 3), 2)
assert i.tolist() == [1, 0], i
msgs = [str(x.message) for x in w if "tavaal._C" in str(x.message)]
assert len(msgs) == 1, msgs
assert ops.backend() == "reference"
print("OK")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("TAVAAL_FORCE_REFERENCE", "TAVAAL_QUIET_FALLBACK")}
    env["TAVAAL_NO_EXT"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


@pytest.mark.gpu
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    for n, kind in [(1_000_003, "ties"), (100_000, "distinct"), (5000, "with_inf")]:
        s = make_scores(n, kind, 1)
        mask = torch.rand(n, generator=g) < 0.5
        for largest in (False, True):
            for m in (None, mask, torch.nonzero(mask).flatten()[:777]):
                b = 500 if m is None or m.dtype == torch.bool else 300
                want = ops.topb(s, b, largest=largest, mask=m)
                got = ops.topb(s.cuda(), b, largest=largest, mask=None if m is None else m.cuda())
                assert torch.equal(got[1].cpu(), want[1])
                assert torch.equal(got[0].cpu(), want[0])
    s = make_scores(10_000, "distinct", 2)
    s[::7] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ops.topb(s.cuda(), 5)
    want = ops.topb(s, 9999, nan_policy="worst")
    got = ops.topb(s.cuda(), 9999, nan_policy="worst")
    assert torch.equal(got[1].cpu(), want[1])
