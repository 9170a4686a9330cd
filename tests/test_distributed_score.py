"""Ray pool scoring: exact global top-b (identical to the single process), ties across units,
fault handling, and the ``--ray`` option of ``python -m tavaal.score``."""
import json
import os

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.ray

@pytest.fixture(scope="module")
def moons_artifacts():
    from score_fixtures import artifacts

    return artifacts("moons", "tavaal")


@pytest.fixture(scope="module")
def pools(tmp_path_factory, moons_artifacts):
    """An inputs pool (2-D points) and a latents pool ((mu, r), d = the artifacts' latent size),
    sharded with shard sizes that are not multiples of the batch size, with exact duplicate
    rows placed on both sides of unit boundaries (deliberate ties)."""
    from tavaal.scoring import write_sharded_pool

    root = tmp_path_factory.mktemp("pools")
    d = json.loads((moons_artifacts / "manifest.json").read_text())["latent_dim"]
    g = torch.Generator().manual_seed(0)
    n = 9000
    x = torch.randn(n, 2, generator=g)
    mu = torch.randn(n, d, generator=g)
    r = torch.rand(n, generator=g)
    for src, dst in [(50, 1030), (50, 7000), (2047, 2048), (2047, 6143)]:  # across units of 1024 / 2048 rows
        x[dst] = x[src]
        mu[dst], r[dst] = mu[src], r[src]
    write_sharded_pool(root / "inputs", x, "inputs", shard_rows=1500)
    write_sharded_pool(root / "latents", (mu, r), "latents", shard_rows=1700)
    return {"inputs": root / "inputs", "latents": root / "latents", "x": x, "mu": mu, "r": r}


def _single(art, pool, method, budget, **kw):
    from tavaal.scoring import Scorer, open_source, select_from_pool

    scorer = Scorer.from_artifacts(art)
    return select_from_pool(scorer, open_source(pool), method, budget, **kw)


@pytest.mark.parametrize("kind,method", [("latents", "tavaal"), ("inputs", "tavaal"), ("inputs", "lloss")])
def test_ray_selection_identical_to_single_process(ray_cluster, moons_artifacts, pools, kind, method):
    from tavaal.distributed.ray_pool import ScorerSpec, ray_select_from_pool

    labeled = np.arange(3, 9000, 37)
    for budget in (1, 60):
        expected = _single(moons_artifacts, pools[kind], method, budget, labeled=labeled, batch_size=128)
        got = ray_select_from_pool(ScorerSpec(str(moons_artifacts)), str(pools[kind]), method, budget,
                                   labeled=labeled, batch_size=128, num_actors=2, rows_per_unit=1000)
        assert got.ray.units >= 8  # many units, both actors used
        np.testing.assert_array_equal(got.rows, expected.rows)
        np.testing.assert_array_equal(got.scores, expected.scores)
        assert got.ids == expected.ids
        assert got.candidates == expected.candidates


def test_ties_across_units_resolve_to_lower_row(ray_cluster, moons_artifacts, pools):
    """A large budget on the latents pool: the duplicated rows (identical scores, in different
    units) come out in the same order as the single-process op, lower row first."""
    from tavaal.distributed.ray_pool import ScorerSpec, ray_select_from_pool

    expected = _single(moons_artifacts, pools["latents"], "tavaal", 9000, batch_size=128)
    got = ray_select_from_pool(ScorerSpec(str(moons_artifacts)), str(pools["latents"]), "tavaal", 9000,
                               batch_size=128, num_actors=2, rows_per_unit=1024)
    np.testing.assert_array_equal(got.rows, expected.rows)
    pos = {int(r): i for i, r in enumerate(got.rows)}
    for src, dst in [(50, 1030), (50, 7000), (2047, 2048), (2047, 6143)]:
        assert got.scores[pos[src]] == got.scores[pos[dst]]
        assert pos[src] < pos[dst]


def test_subset_identical(ray_cluster, moons_artifacts, pools):
    from tavaal.distributed.ray_pool import ScorerSpec, ray_select_from_pool

    labeled = np.arange(0, 9000, 11)
    expected = _single(moons_artifacts, pools["inputs"], "tavaal", 40, labeled=labeled, subset=3000, seed=5,
                       batch_size=64)
    got = ray_select_from_pool(ScorerSpec(str(moons_artifacts)), str(pools["inputs"]), "tavaal", 40,
                               labeled=labeled, subset=3000, seed=5, batch_size=64, num_actors=2, rows_per_unit=500)
    np.testing.assert_array_equal(got.rows, expected.rows)
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert got.scored == 3000


def test_actor_crash_is_rescored(ray_cluster, moons_artifacts, pools, tmp_path):
    from tavaal.distributed.ray_pool import ScorerSpec, ray_select_from_pool

    expected = _single(moons_artifacts, pools["latents"], "tavaal", 50, batch_size=128)
    marker = str(tmp_path / "crashed")
    got = ray_select_from_pool(ScorerSpec(str(moons_artifacts)), str(pools["latents"]), "tavaal", 50,
                               batch_size=128, num_actors=2, rows_per_unit=1024, _crash_once=(marker, 3))
    assert os.path.exists(marker)
    assert got.ray.restarts >= 1 and 3 in got.ray.resubmitted
    np.testing.assert_array_equal(got.rows, expected.rows)
    np.testing.assert_array_equal(got.scores, expected.scores)


def test_actor_killed_mid_run(ray_cluster, moons_artifacts, pools):
    import ray

    from tavaal.distributed.ray_pool import ScorerSpec, ray_select_from_pool

    expected = _single(moons_artifacts, pools["inputs"], "tavaal", 30, batch_size=128)
    killed = []

    def progress(done, total, rp):
        if done == 2 and not killed:
            ray.kill(rp.actors[0], no_restart=False)  # Ray restarts it; its in-flight units are re-scored
            killed.append(done)

    got = ray_select_from_pool(ScorerSpec(str(moons_artifacts)), str(pools["inputs"]), "tavaal", 30,
                               batch_size=128, num_actors=2, rows_per_unit=640, progress=progress)
    assert killed and got.ray.restarts >= 1
    np.testing.assert_array_equal(got.rows, expected.rows)
    np.testing.assert_array_equal(got.scores, expected.scores)


def test_validation_before_actors(ray_cluster, moons_artifacts, pools):
    from tavaal.distributed.ray_pool import ScorerSpec, ray_select_from_pool
    from tavaal.scoring import SelectionError

    spec = ScorerSpec(str(moons_artifacts))
    with pytest.raises(SelectionError, match="budget"):
        ray_select_from_pool(spec, str(pools["inputs"]), "tavaal", 10**6)
    with pytest.raises(SelectionError, match="vaal"):
        ray_select_from_pool(spec, str(pools["inputs"]), "vaal", 5)
    with pytest.raises(SelectionError, match="latents pool"):
        ray_select_from_pool(spec, str(pools["latents"]), "lloss", 5)


def test_parse_ray_spec():
    from tavaal.distributed import parse_ray_spec

    assert parse_ray_spec("local:3").num_cpus == 3 and parse_ray_spec("local:3").mode == "local"
    assert parse_ray_spec("auto").mode == "auto"
    assert parse_ray_spec("ray://head:10001").address == "ray://head:10001"
    assert parse_ray_spec("10.0.0.1:6379").mode == "address"
    assert parse_ray_spec("localhost:6379").address == "localhost:6379"  # a host name, not local:N
    for bad in ["local:0", "local:x", "", "nonsense"]:
        with pytest.raises(ValueError):
            parse_ray_spec(bad)


def _cli(argv, capsys):
    from tavaal.score import main

    code = main([str(a) for a in argv] + ["--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_ray_same_output(ray_cluster, moons_artifacts, pools, tmp_path, capsys):
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("\n".join(str(i) for i in range(0, 9000, 17)))
    common = [moons_artifacts, "--pool", pools["latents"], "--budget", 25, "--labeled", labeled, "--batch-size", 128]
    code, _, err = _cli(common + ["--out", tmp_path / "single.csv"], capsys)
    assert code == 0, err
    code, out, err = _cli(common + ["--out", tmp_path / "ray.csv", "--ray", "local:2", "--ray-actors", 2,
                                    "--ray-rows-per-unit", 1000], capsys)
    assert code == 0, err
    single = json.loads((tmp_path / "single.json").read_text())
    dist = json.loads((tmp_path / "ray.json").read_text())
    assert dist["selected"] == single["selected"]
    assert dist["summary"]["ray"]["units"] >= 8
    assert not list(tmp_path.glob(".ray.tmp-*"))


def test_cli_ray_coreset_features_pool(ray_cluster, moons_artifacts, tmp_path, capsys):
    from tavaal.scoring import write_sharded_pool

    f = json.loads((moons_artifacts / "manifest.json").read_text())["feature_dim"]
    feats = torch.randn(3000, f, generator=torch.Generator().manual_seed(2))
    write_sharded_pool(tmp_path / "feats", feats, "features", dtype="float16", shard_rows=700)
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("\n".join(str(i) for i in range(0, 3000, 100)))
    for lab in ([], ["--labeled", labeled]):
        common = [moons_artifacts, "--pool", tmp_path / "feats", "--budget", 15, "--method", "coreset"] + lab
        code, _, err = _cli(common + ["--out", tmp_path / "single.csv"], capsys)
        assert code == 0, err
        code, _, err = _cli(common + ["--out", tmp_path / "ray.csv", "--ray", "local:2", "--ray-actors", 2], capsys)
        assert code == 0, err
        single = json.loads((tmp_path / "single.json").read_text())["selected"]
        dist = json.loads((tmp_path / "ray.json").read_text())["selected"]
        assert [r["id"] for r in dist] == [r["id"] for r in single]
        np.testing.assert_allclose([r["score"] for r in dist], [r["score"] for r in single], rtol=1e-5)


def test_cli_ray_failure_writes_nothing(ray_cluster, moons_artifacts, pools, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAVAAL_RAY_SCHEDULE_TIMEOUT", "2")
    out = tmp_path / "never.csv"
    with pytest.raises(SystemExit) as exc:
        _cli([moons_artifacts, "--pool", pools["latents"], "--budget", 5, "--out", out, "--ray", "local:2",
              "--ray-gpus-per-actor", 1], capsys)
    assert exc.value.code == 1
    assert "nothing was written" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".json").exists()
    code, _, err = _cli([moons_artifacts, "--pool", pools["latents"], "--budget", 5, "--ray", "local:0"], capsys)
    assert code == 2 and "local:N" in err
