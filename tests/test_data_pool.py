import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tavaal.data import BudgetExceededError, Pool, PoolIndexError, check_budget


def _invariants(pool: Pool):
    lab, unl = pool.labeled, pool.unlabeled
    assert lab.dtype == np.int64 and unl.dtype == np.int64
    assert np.all(np.diff(lab) > 0) and np.all(np.diff(unl) > 0)
    assert np.intersect1d(lab, unl).size == 0
    assert np.array_equal(np.union1d(lab, unl), np.arange(pool.num_samples))
    assert pool.num_labeled + pool.num_unlabeled == pool.num_samples
    assert np.array_equal(np.flatnonzero(pool.mask), lab)


def test_basic_and_immutable():
    p = Pool(10, [3, 1])
    _invariants(p)
    assert p.labeled.tolist() == [1, 3]
    q = p.label(np.array([0, 9]))
    _invariants(q)
    assert q.labeled.tolist() == [0, 1, 3, 9]
    assert p.labeled.tolist() == [1, 3]  # unchanged
    with pytest.raises(ValueError):
        p.labeled[0] = 5  # read-only view


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 200), data=st.data())
def test_invariants_property(n, data):
    labeled = data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n)) if n else set()
    pool = Pool(n, sorted(labeled))
    _invariants(pool)
    if pool.num_unlabeled:
        k = data.draw(st.integers(1, pool.num_unlabeled))
        pool = pool.label(pool.unlabeled[:k])
        _invariants(pool)


@pytest.mark.parametrize("bad, match", [
    ([1.5], "integers"),
    (["a"], "integers"),
    ([10], r"out of range \[0, 10\): \[10\]"),
    ([-1], r"out of range.*\[-1\]"),
    ([2, 2], r"duplicate indices: \[2\]"),
    ([[1, 2]], "1-D"),
    (np.ones(10, dtype=bool), "boolean"),
])
def test_label_validation(bad, match):
    with pytest.raises(PoolIndexError, match=match):
        Pool(10, [0]).label(bad)


def test_label_already_labeled_names_indices():
    pool = Pool(10, [4, 7])
    with pytest.raises(PoolIndexError, match=r"already labeled: \[4, 7\]") as ei:
        pool.label([7, 4, 5])
    assert ei.value.indices == [4, 7]
    assert isinstance(ei.value, ValueError)


def test_label_accepts_tensor_and_numpy_ints():
    pool = Pool(5).label(torch.tensor([1, 2])).label([np.int32(4)]).label(3)
    assert pool.labeled.tolist() == [1, 2, 3, 4]
    assert Pool(5).label([]).num_labeled == 0


def test_state_dict_round_trip():
    pool = Pool.initial(50, 7, np.random.default_rng(3))
    state = json.loads(json.dumps(pool.state_dict()))
    assert state == {"num_samples": 50, "labeled": pool.labeled.tolist()}
    again = Pool.from_state_dict(state)
    assert again == pool
    with pytest.raises(ValueError, match="num_samples"):
        Pool.from_state_dict({"labeled": []})
    with pytest.raises(PoolIndexError, match="out of range"):
        Pool.from_state_dict({"num_samples": 3, "labeled": [5]})


def test_initial():
    a = Pool.initial(100, 10, 42)
    b = Pool.initial(100, 10, np.random.default_rng(42))
    assert a == b and a.num_labeled == 10
    assert Pool.initial(5, 5, 0).num_unlabeled == 0
    with pytest.raises(BudgetExceededError, match=r"initial labeled set of 11 .*10 training samples"):
        Pool.initial(10, 11, 0)
    with pytest.raises(ValueError):
        Pool.initial(10, -1, 0)


def test_check_budget():
    assert check_budget(5, 10) == 5
    assert check_budget(10, 10) == 10
    with pytest.raises(BudgetExceededError, match="budget of 11 exceeds the 10 unlabeled"):
        check_budget(11, 10)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError):
            check_budget(bad, 10)


def test_constructor_validation():
    with pytest.raises(PoolIndexError, match="duplicate"):
        Pool(5, [1, 1])
    with pytest.raises(ValueError):
        Pool(-1)
    with pytest.raises(TypeError):
        Pool(5.0)


def test_large_pool_is_fast():
    import time

    pool = Pool(1_000_000, np.arange(0, 1_000_000, 10))
    t = time.perf_counter()
    pool = pool.label(pool.unlabeled[:1000])
    assert time.perf_counter() - t < 1.0
    _invariants(pool)
