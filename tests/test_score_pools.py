"""Pool readers: sharded pools (every dtype, latents, features), batching, prefetch, RunningTopB."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tavaal.scoring import (SourceError, RunningTopB, Scorer, ShardedPoolWriter, merge_selections, open_source,
                            select_from_pool, write_sharded_pool)
from tavaal.data.sources import prefetch

from score_fixtures import artifacts, pool_npy, scratch


def _collect(pool, **kw):
    ids, xs = [], []
    for i, x in pool.iter_batches(**kw):
        ids.append(i)
        xs.append(x)
    return np.concatenate(ids), xs


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "uint8"])
def test_sharded_pool_round_trip(dtype):
    rng = np.random.default_rng(0)
    data = rng.random((103, 3, 4, 4), dtype=np.float32)
    if dtype == "uint8":
        data = (data * 255).astype(np.uint8)
    d = scratch(f"sharded-{dtype}")
    chunks = (data[s:s + 40] for s in range(0, 103, 40))  # a generator: bounded memory
    meta = write_sharded_pool(d, chunks, dtype=dtype, shard_rows=25, overwrite=True)
    assert meta["rows"] == 103 and meta["dtype"] == dtype and meta["sample_shape"] == [3, 4, 4]
    assert [s["rows"] for s in meta["shards"]] == [25, 15, 25, 15, 23]
    pool = open_source(d)
    assert len(pool) == 103 and pool.sample_shape == (3, 4, 4) and pool.dtype == dtype
    ids, xs = _collect(pool, batch_size=17)
    np.testing.assert_array_equal(ids, np.arange(103))
    x = torch.cat(xs)
    expect = torch.from_numpy(data)
    if dtype == "bfloat16":
        assert x.dtype == torch.bfloat16
        expect = expect.to(torch.bfloat16)
    tol = 1e-3 if dtype == "float16" else 0.0
    torch.testing.assert_close(x.float(), expect.float(), rtol=tol, atol=tol)
    # ranges, explicit indices and exclusions keep global ids
    ids, xs = _collect(pool, batch_size=10, start=20, stop=60, exclude=np.array([21, 22, 50]))
    assert ids.tolist() == [i for i in range(20, 60) if i not in (21, 22, 50)]
    assert all(len(b) <= 10 for b in xs)
    ids, xs = _collect(pool, batch_size=4, indices=np.array([0, 24, 25, 26, 99]))
    assert ids.tolist() == [0, 24, 25, 26, 99]
    torch.testing.assert_close(torch.cat(xs)[1].float(), expect[24].float(), rtol=tol, atol=tol)


def test_sharded_pool_errors():
    d = scratch("sharded-bad")
    write_sharded_pool(d, np.zeros((5, 2), np.float32), overwrite=True)
    with pytest.raises(SourceError, match="already holds"):
        write_sharded_pool(d, np.zeros((5, 2), np.float32))
    (d / "pool.json").write_text('{"format": "tavaal-sharded-pool", "version": 7}')
    with pytest.raises(SourceError, match="version 7"):
        open_source(d)
    with pytest.raises(SourceError, match="does not exist"):
        open_source(d / "nope.npy")


def test_latents_and_features_pools_give_same_selection():
    art = artifacts("digits", "tavaal", "dynamo")
    scorer = Scorer.from_artifacts(art)
    pool = open_source(pool_npy("digits"))
    ref = select_from_pool(scorer, pool, "tavaal", 15)

    def latents():
        for _, x in pool.iter_batches(300):
            out = scorer.score_batch(x)
            yield out["mu"], out["r"]
    d = scratch("latents")
    write_sharded_pool(d, latents(), kind="latents", shard_rows=256, overwrite=True)
    lat = open_source(d)
    assert lat.kind == "latents" and lat.sample_shape == (16,)
    assert (d / "shard_00000.r.npy").exists()
    sel = select_from_pool(scorer, lat, "tavaal", 15)
    np.testing.assert_array_equal(sel.rows, ref.rows)
    with pytest.raises(ValueError, match="latents pool"):
        select_from_pool(scorer, lat, "lloss", 15)

    labeled = np.arange(0, 1438, 7)
    ref_c = select_from_pool(scorer, pool, "coreset", 10, labeled=labeled)
    fd = scratch("features")
    write_sharded_pool(fd, (scorer.features_batch(x) for _, x in pool.iter_batches(400)), kind="features",
                       overwrite=True)
    sel_c = select_from_pool(scorer, open_source(fd), "coreset", 10, labeled=labeled)
    np.testing.assert_array_equal(sel_c.rows, ref_c.rows)


def test_sharded_selection_merges_like_one_process():
    scorer = Scorer.from_artifacts(artifacts("digits", "tavaal", "dynamo"))
    pool = open_source(pool_npy("digits"))
    ref = select_from_pool(scorer, pool, "tavaal", 20, with_latents=True)
    parts = [select_from_pool(scorer, pool, "tavaal", 20, start=s, stop=s + 500, with_latents=True)
             for s in (1000, 0, 500)]
    merged = merge_selections(parts, 20, pool)
    np.testing.assert_array_equal(merged.rows, ref.rows)
    np.testing.assert_allclose(merged.latents["mu"], ref.latents["mu"])
    assert merged.scored == 1438


def test_running_topb_ties_and_merge():
    top = RunningTopB(3)
    top.update(torch.tensor([0.5, 0.1, 0.1]), torch.tensor([0, 1, 2]))
    top.update(torch.tensor([0.1, 0.05]), torch.tensor([3, 4]))
    assert top.rows.tolist() == [4, 1, 2]
    other = RunningTopB(3)
    other.update(torch.tensor([0.1, 0.0]), torch.tensor([0, 9]))
    assert top.merge(other).rows.tolist() == [9, 4, 0]
    big = RunningTopB(2, largest=True)
    big.update(torch.tensor([1.0, 3.0, 3.0]), torch.tensor([5, 6, 7]))
    assert big.rows.tolist() == [6, 7]


def test_prefetch_bounds_and_errors():
    produced = []

    def gen():
        for i in range(100):
            produced.append(i)
            yield i
    it = prefetch(gen(), depth=2)
    assert next(it) == 0
    import time

    time.sleep(0.2)
    assert len(produced) <= 4  # never more than depth (+1 in hand) read ahead
    it.close()

    def bad():
        yield 1
        raise OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(bad(), 2))


def test_writer_incremental_bf16_tensor():
    d = scratch("writer")
    with ShardedPoolWriter(d, kind="inputs", shard_rows=8, overwrite=True) as w:
        w.write(torch.randn(10, 5).to(torch.bfloat16))
        w.write(torch.randn(3, 5).to(torch.bfloat16))
    pool = open_source(d)
    assert pool.dtype == "bfloat16" and len(pool) == 13
    x = pool.read_rows([0, 12])
    assert x.dtype == torch.bfloat16 and x.shape == (2, 5)
