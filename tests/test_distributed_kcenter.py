"""Distributed exact k-center and composable core-set on a local Ray cluster."""
import os

import pytest
import torch

from ops_backends import use_backend
from tavaal import ops
from tavaal.distributed.kcenter_state import ShardKCenter

pytestmark = pytest.mark.ray


def _clustered(n=3000, d=16, k=12, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    cen = torch.randn(k, d, generator=g) * 4
    x = cen[torch.randint(0, k, (n,), generator=g)] + torch.randn(n, d, generator=g)
    x[10] = x[n - 5]  # exact duplicates across shard boundaries: ties by id
    x[11] = x[n - 5]
    return x.to(dtype).contiguous()


def _reference(x, b, centers=None, first=None, metric="euclidean"):
    with use_backend("reference"):
        return ops.kcenter_greedy(x, b, centers=centers, first=first, metric=metric)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("with_centers", [False, True])
def test_shard_state_matches_single_machine(dtype, with_centers):
    """The incremental pruned state, driven shard by shard without Ray, gives the reference
    picks and bit-identical radii (and the C++ op's picks)."""
    from tavaal.distributed.ray_kcenter import merge_best
    from tavaal.distributed.kcenter_state import to_radius

    x = _clustered(dtype=dtype)
    centers = torch.arange(0, 3000, 97) if with_centers else None
    first = None if with_centers else 42
    b = 40
    ri, rr = _reference(x, b, centers, first)
    ci, _ = ops.kcenter_greedy(x, b, centers=centers, first=first)
    bounds = [0, 700, 1900, 3000]
    shards = [ShardKCenter(x[a:c], a, group_size=128) for a, c in zip(bounds[:-1], bounds[1:])]

    def add(rows, ids):
        return merge_best([s.add_centers(rows, ids) for s in shards])

    def rows_of(ids):
        return torch.cat([s.rows(ids[(ids >= s.offset) & (ids < s.offset + s.n)]) for s in shards])

    picks, radii = [], []
    if with_centers:
        best = add(rows_of(centers), centers)
    else:
        best = add(rows_of(torch.tensor([first])), torch.tensor([first]))
        picks.append(first)
        radii.append(to_radius(best[0], "euclidean"))
    while len(picks) < b:
        picks.append(best[1])
        best = add(best[2][None], torch.tensor([best[1]]))
        radii.append(to_radius(best[0], "euclidean"))
    assert picks == ri.tolist() == ci.tolist()
    assert torch.equal(torch.tensor(radii, dtype=torch.float32), rr)
    # the pruning did skip work
    total = sum(s.distances_computed for s in shards)
    assert total < 3000 * (b + (centers.numel() if with_centers else 0))


def test_pruning_does_not_change_state():
    x = _clustered(n=2000, d=8)
    a = ShardKCenter(x, 0, group_size=64)
    b = ShardKCenter(x, 0, prune=False)
    for i in [3, 1500, 77, 901, 1999]:
        a.add_centers(x[i : i + 1], torch.tensor([i]))
        b.add_centers(x[i : i + 1], torch.tensor([i]))
        assert a.best()[:2] == b.best()[:2]
    assert torch.equal(a.min_d2[a.pos], b.min_d2[b.pos])
    assert a.distances_computed < b.distances_computed


@pytest.mark.parametrize("dtype,metric", [(torch.float32, "euclidean"), (torch.bfloat16, "euclidean"),
                                          (torch.float16, "cosine")])
def test_ray_exact_kcenter_identical(ray_cluster, dtype, metric):
    from tavaal.distributed import RayKCenter

    x = _clustered(dtype=dtype)
    labeled = torch.arange(5, 3000, 151)
    with RayKCenter(x, num_shards=3, cpus_per_actor=0.5, metric=metric, group_size=128) as kc:
        for centers, first in [(None, None), (None, 17), (labeled, None)]:
            run = kc.greedy(30, centers=centers, first=first)
            ri, rr = _reference(x, 30, centers, first, metric)
            ci, cr = ops.kcenter_greedy(x, 30, centers=centers, first=first, metric=metric)
            assert run.indices.tolist() == ri.tolist() == ci.tolist()
            assert torch.equal(run.radii, rr)
            torch.testing.assert_close(run.radii, cr, rtol=1e-5, atol=1e-6)


def test_ray_kcenter_bool_mask_and_validation(ray_cluster):
    from tavaal.distributed import RayKCenter

    x = _clustered(n=500)
    mask = torch.zeros(500, dtype=torch.bool)
    mask[[3, 250, 499]] = True
    with RayKCenter(x, num_shards=2) as kc:
        run = kc.greedy(10, centers=mask)
        assert run.indices.tolist() == _reference(x, 10, mask)[0].tolist()
        with pytest.raises(ValueError, match="first"):
            kc.greedy(3, centers=mask, first=2)
        with pytest.raises(ValueError, match="b must be"):
            kc.greedy(498, centers=mask)


def test_ray_kcenter_survives_actor_crash(ray_cluster, tmp_path):
    from tavaal.distributed import RayKCenter

    x = _clustered(n=1200)
    labeled = torch.arange(0, 1200, 50)
    expected = _reference(x, 25, labeled)
    marker = str(tmp_path / "crashed")
    with RayKCenter(x, num_shards=2, _crash_once=(1, marker, 7)) as kc:
        run = kc.greedy(25, centers=labeled)
    assert os.path.exists(marker)  # the actor did die once
    assert run.restarts >= 1
    assert run.indices.tolist() == expected[0].tolist()
    assert torch.equal(run.radii, expected[1])


def test_ray_kcenter_survives_kill(ray_cluster):
    import ray

    from tavaal.distributed import RayKCenter

    x = _clustered(n=1200, seed=3)
    expected = _reference(x, 20, None, 5)
    killed = []

    def progress(step, kc):
        if step == 6 and not killed:
            ray.kill(kc.actors[0], no_restart=False)
            killed.append(step)

    with RayKCenter(x, num_shards=2) as kc:
        run = kc.greedy(20, first=5, progress=progress)
    assert killed and run.restarts >= 1
    assert run.indices.tolist() == expected[0].tolist()
    assert torch.equal(run.radii, expected[1])


def test_composable_coreset(ray_cluster):
    from tavaal.distributed import RayKCenter

    x = _clustered(n=3000, seed=1)
    labeled = torch.arange(0, 3000, 301)
    with RayKCenter(x, num_shards=3, cpus_per_actor=0.5) as kc:
        exact = kc.greedy(40, centers=labeled)
        approx = kc.composable(40, centers=labeled)
        cov_exact = kc.covering_radius(torch.cat([labeled, exact.indices]))
        approx2 = kc.composable(40, first=9)
    assert approx.indices.numel() == 40 and len(set(approx.indices.tolist())) == 40
    assert not set(approx.indices.tolist()) & set(labeled.tolist())
    assert cov_exact == pytest.approx(float(exact.radii[-1]), rel=1e-6)
    # 4-approximation vs OPT, and greedy >= OPT / 2: approx radius <= 8 x the exact greedy radius
    assert approx.covering_radius <= 8 * cov_exact
    assert approx.covering_radius >= cov_exact * 0.5
    assert approx2.indices[0] == 9 and len(set(approx2.indices.tolist())) == 40
