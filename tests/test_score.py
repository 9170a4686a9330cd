"""python -m tavaal.score: pools, methods, the selection an independent oracle computes from the
run's eager models, --subset, --save-scores, corrupt images and every bad input (exit code 2
before work)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from selection_oracles import (discriminator_scores, entropy, greedy_kcenter, highest, lowest, predicted_loss,
                               probabilities)
from tavaal.checkpoint import load_cycle_models
from tavaal.data import Pool
from tavaal.data.candidates import draw_candidates
from tavaal.rundir import RunDirectory
from tavaal.score import main as score_main
from tavaal.scoring import Scorer, SelectionError, open_source, select_from_pool
from tavaal.training import predict

from score_fixtures import (artifacts, digits_bundle, digits_run, labeled_rows, moons_bundle, moons_run, pool_npy,
                                scratch)


def _run(run):
    return moons_run() if run == "moons" else digits_run()


def oracle_select(run, method, budget, candidates, labeled, seed=0, trained=None):
    """What ``method`` must pick among ``candidates``, computed independently (plain torch /
    numpy, not tavaal.scoring) from the eager models of the run's ``trained`` checkpoint on the
    un-augmented training set."""
    models = load_cycle_models(RunDirectory(_run(run)).latest_checkpoint(trained or method, 0))
    dataset = (digits_bundle() if run == "digits" else moons_bundle()).train
    if method in ("tavaal", "vaal"):
        return lowest(candidates, discriminator_scores(dataset, candidates, models.task, models.adversarial), budget)
    if method == "lloss":
        return highest(candidates, predicted_loss(dataset, candidates, models.task), budget)
    if method == "entropy":
        return highest(candidates, entropy(probabilities(dataset, candidates, models.task)), budget)
    if method == "coreset":
        feats = predict(dataset, np.concatenate([candidates, labeled]), backbone=models.task.backbone.eval(),
                        outputs=("feature",))["feature"]
        return np.asarray(candidates)[greedy_kcenter(feats[:len(candidates)], feats[len(candidates):], budget)]
    if method == "random":
        return np.asarray(candidates)[np.random.default_rng(seed).choice(len(candidates), budget, replace=False)]
    raise AssertionError(f"no oracle for {method}")


def _cli(argv, capsys):
    code = score_main([str(a) for a in argv] + ["--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _selected(csv_path):
    data = json.loads(csv_path.with_suffix(".json").read_text())
    return [r["id"] for r in data["selected"]], data


# ----------------------------------------------------------------- identical selection
@pytest.mark.parametrize("backend", ["onnx", "torchscript", "eager"])
def test_same_selection_as_the_oracle_digits(backend):
    labeled = labeled_rows("digits")
    n = len(digits_bundle().train)
    expected = oracle_select("digits", "tavaal", 25, Pool(n, labeled).unlabeled, labeled)
    scorer = Scorer.from_artifacts(artifacts("digits", "tavaal", "dynamo"), backend=backend)
    sel = select_from_pool(scorer, open_source(pool_npy("digits")), "tavaal", 25, labeled=labeled, batch_size=100)
    np.testing.assert_array_equal(sel.rows, expected)
    assert sel.ids == expected.tolist()
    assert sel.candidates == n - labeled.size == sel.scored
    assert np.all(np.diff(sel.scores) >= 0)


def test_same_selection_with_subset():
    labeled = labeled_rows("digits")
    n = len(digits_bundle().train)
    unlabeled = np.setdiff1d(np.arange(n), labeled)  # the subset method, written out: 300 of the unlabeled rows
    cands = np.sort(unlabeled[np.random.default_rng(7).choice(unlabeled.size, 300, replace=False)])
    np.testing.assert_array_equal(draw_candidates(n, np.sort(labeled), 300, np.random.default_rng(7)), cands)
    expected = oracle_select("digits", "tavaal", 20, cands, labeled)
    scorer = Scorer.from_artifacts(artifacts("digits", "tavaal", "dynamo"))
    sel = select_from_pool(scorer, open_source(pool_npy("digits")), "tavaal", 20, labeled=labeled, subset=300, seed=7)
    np.testing.assert_array_equal(sel.rows, expected)
    assert sel.scored == 300


@pytest.mark.parametrize("method", ["vaal", "lloss", "coreset", "tavaal"])
def test_same_selection_as_the_oracle_moons(method):
    labeled = labeled_rows("moons", method)
    n = len(moons_bundle().train)
    expected = oracle_select("moons", method, 12, Pool(n, labeled).unlabeled, labeled)
    scorer = Scorer.from_artifacts(artifacts("moons", method))
    sel = select_from_pool(scorer, open_source(pool_npy("moons")), method, 12, labeled=labeled, batch_size=64)
    np.testing.assert_array_equal(sel.rows, expected)


def test_entropy_from_the_exported_classifier_matches_the_oracle(capsys):
    labeled = labeled_rows("moons")
    n = len(moons_bundle().train)
    expected = oracle_select("moons", "entropy", 12, Pool(n, labeled).unlabeled, labeled, trained="tavaal")
    sel = select_from_pool(Scorer.from_artifacts(artifacts("moons", "tavaal")), open_source(pool_npy("moons")),
                           "entropy", 12, labeled=labeled, batch_size=64)
    np.testing.assert_array_equal(sel.rows, expected)
    out = scratch("cli-entropy") / "sel.csv"
    code, _, err = _cli([artifacts("moons", "tavaal"), "--pool", pool_npy("moons"), "--budget", 12, "--method",
                         "entropy", "--labeled", _ids_file(labeled), "--out", out], capsys)
    assert code == 0, err
    assert _selected(out)[0] == expected.tolist()


def _ids_file(rows):
    path = scratch("ids") / f"labeled_{len(rows)}.txt"
    path.write_text("\n".join(str(int(r)) for r in rows) + "\n")
    return path


def test_live_models_scorer_runs_the_exported_graphs():
    art = artifacts("digits", "tavaal", "dynamo")
    models = load_cycle_models(art / "models.pt")
    live = Scorer.from_models(models.task, models.adversarial, input_shape=models.spec["input_shape"],
                              mean=models.spec["mean"], std=models.spec["std"])
    onnx = Scorer.from_artifacts(art, backend="onnx")
    x = torch.from_numpy(np.load(pool_npy("digits"))[:37])
    for graph in ("scorer", "classifier", "features"):
        a, b = live.run_graph(graph, x), onnx.run_graph(graph, x)
        for k in b:
            assert (a[k] - b[k]).abs().max().item() < 1e-4, (graph, k)
    assert {"tavaal", "lloss", "coreset", "entropy", "mcdropout", "random"} <= set(live.methods)
    assert "mcdropout" not in onnx.methods
    raw = np.random.default_rng(0).integers(0, 256, size=(5, 1, 8, 8), dtype=np.uint8)
    torch.testing.assert_close(live.prepare(raw), onnx.prepare(raw))  # uint8 rows are normalised alike


def test_random_is_the_seeded_uniform_draw():
    labeled = labeled_rows("moons")
    n = len(moons_bundle().train)
    expected = oracle_select("moons", "random", 9, Pool(n, labeled).unlabeled, labeled, seed=3, trained="tavaal")
    sel = select_from_pool(None, open_source(pool_npy("moons")), "random", 9, labeled=labeled, seed=3)
    np.testing.assert_array_equal(sel.rows, expected)


# ------------------------------------------------------------------------- CLI + pools
def test_cli_npy_pool_outputs(capsys):
    out = scratch("cli-npy") / "sel.csv"
    code, stdout, err = _cli([artifacts("digits", "tavaal", "dynamo"), "--pool", pool_npy("digits"), "--budget", 15,
                              "--out", out, "--with-latents", "--batch-size", 128], capsys)
    assert code == 0, err
    assert "samples/s" in stdout and "load" in stdout and "inference" in stdout and "selection" in stdout
    assert "pool 1438" in stdout
    ids, data = _selected(out)
    assert len(ids) == 15 and all(isinstance(i, int) for i in ids)
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ["rank", "id", "score", "loss", "r"] and header[-1] == "mu_15"
    s = data["summary"]
    assert s["pool_size"] == 1438 and s["scored"] == 1438 and s["backend"] == "onnx"
    assert set(s["timings_s"]) == {"load", "inference", "selection", "total"}
    assert len(data["selected"][0]["mu"]) == 16 and data["skipped"] == []


def _write_images(root, with_corrupt=True):
    from PIL import Image

    bundle = digits_bundle()
    x, y = bundle.train.get_batch(np.arange(120))
    raw = np.clip(np.rint((x.numpy() * bundle.std[0] + bundle.mean[0]) * 255), 0, 255).astype(np.uint8)
    paths = []
    for i in range(len(raw)):
        d = root / f"class_{int(y[i])}" / ("deep" if i % 3 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"img_{i:04d}.png"
        Image.fromarray(raw[i, 0], mode="L").save(p)
        paths.append(str(p))
    if with_corrupt:
        (root / "class_0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
        (root / "notes.txt").write_text("not an image, ignored")
    return raw, paths


@pytest.mark.parametrize("workers", [0, 2])
def test_image_folder_with_corrupt_file(capsys, workers):
    root = scratch(f"images-{workers}") / "pool"
    raw, paths = _write_images(root)
    out = scratch(f"images-{workers}") / "sel.csv"
    code, stdout, err = _cli([artifacts("digits", "tavaal", "dynamo"), "--pool", root, "--budget", 10, "--out", out,
                              "--workers", workers, "--batch-size", 32], capsys)
    assert code == 0, err
    assert "skipped 1 unreadable" in stdout
    ids, data = _selected(out)
    assert data["summary"]["pool_size"] == 121 and data["summary"]["scored"] == 120
    assert [s["id"] for s in data["skipped"]] == ["class_0/broken.png"], "ids are paths relative to the pool root"
    assert data["skipped"][0]["error"]
    rel = [Path(p).relative_to(root).as_posix() for p in paths]
    assert all(i in rel for i in ids)
    # the same images as a uint8 array pool give the same picks
    npy = scratch(f"images-{workers}") / "raw.npy"
    order = np.argsort(paths)
    np.save(npy, raw[order])
    out2 = scratch(f"images-{workers}") / "sel2.csv"
    assert _cli([artifacts("digits", "tavaal", "dynamo"), "--pool", npy, "--budget", 10, "--out", out2], capsys)[0] == 0
    ids2, _ = _selected(out2)
    assert [np.asarray(rel)[order][i] for i in ids2] == ids


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_pool_matches_npy(capsys, compressed):
    x = np.load(pool_npy("digits"))
    path = scratch("npz") / f"pool_{compressed}.npz"
    (np.savez_compressed if compressed else np.savez)(path, X=x, y=np.zeros(len(x)))
    pool = open_source(path)
    assert len(pool) == len(x) and pool.sample_shape == (1, 8, 8)
    assert (pool._compressed is not None) == compressed
    scorer = Scorer.from_artifacts(artifacts("digits", "tavaal", "dynamo"))
    a = select_from_pool(scorer, pool, "tavaal", 10, batch_size=200)
    b = select_from_pool(scorer, open_source(pool_npy("digits")), "tavaal", 10)
    np.testing.assert_array_equal(a.rows, b.rows)
    sub = select_from_pool(scorer, pool, "tavaal", 10, subset=500, seed=1)  # random access on a compressed member
    sub2 = select_from_pool(scorer, open_source(pool_npy("digits")), "tavaal", 10, subset=500, seed=1)
    np.testing.assert_array_equal(sub.rows, sub2.rows)


def test_dataset_pool_matches_npy(capsys):
    out = scratch("dataset") / "sel.csv"
    code, stdout, err = _cli([artifacts("digits", "tavaal", "dynamo"), "--pool", "dataset:digits", "--budget", 10,
                              "--out", out], capsys)
    assert code == 0, err
    out2 = scratch("dataset") / "sel2.csv"
    assert _cli([artifacts("digits", "tavaal", "dynamo"), "--pool", pool_npy("digits"), "--budget", 10, "--out", out2],
                capsys)[0] == 0
    assert _selected(out)[0] == _selected(out2)[0]


@pytest.mark.parametrize("method", ["tavaal", "vaal", "lloss", "coreset", "random"])
def test_cli_each_method(capsys, method):
    art = artifacts("moons", "tavaal" if method in ("random",) else method)
    labeled = labeled_rows("moons", method if method != "random" else "tavaal")
    ids_file = scratch(f"m-{method}") / "labeled.txt"
    ids_file.write_text("\n".join(map(str, labeled)) + "\n")
    out = scratch(f"m-{method}") / "sel.csv"
    code, stdout, err = _cli([art, "--pool", pool_npy("moons"), "--budget", 8, "--method", method, "--labeled",
                              ids_file, "--out", out, "--seed", 5], capsys)
    assert code == 0, err
    ids, data = _selected(out)
    assert len(set(ids)) == 8 and not set(ids) & set(labeled.tolist())
    assert data["summary"]["candidates"] == 550 - labeled.size
    scores = [r["score"] for r in data["selected"]]
    if method in ("tavaal", "vaal"):
        assert scores == sorted(scores)
    elif method == "lloss":
        assert scores == sorted(scores, reverse=True)
    elif method == "random":  # seeded
        assert _cli([art, "--pool", pool_npy("moons"), "--budget", 8, "--method", method, "--labeled", ids_file,
                     "--out", out, "--seed", 5], capsys)[0] == 0
        assert _selected(out)[0] == ids


def test_cli_subset_and_save_scores(capsys):
    art = artifacts("digits", "tavaal", "dynamo")
    labeled = labeled_rows("digits")
    ids_file = scratch("subset") / "labeled.json"
    ids_file.write_text(json.dumps(labeled.tolist()))
    out, scores_path = scratch("subset") / "sel.csv", scratch("subset") / "scores.npy"
    code, stdout, err = _cli([art, "--pool", pool_npy("digits"), "--budget", 12, "--subset", 400, "--seed", 11,
                              "--labeled", ids_file, "--out", out, "--save-scores", scores_path], capsys)
    assert code == 0, err
    ids, data = _selected(out)
    n = 1438
    cands = draw_candidates(n, np.sort(labeled), 400, np.random.default_rng(11))
    assert data["summary"]["candidates"] == 400 and set(ids) <= set(cands.tolist())
    scores = np.load(scores_path, mmap_mode="r")
    assert scores.shape == (n,)
    finite = np.flatnonzero(np.isfinite(scores))
    np.testing.assert_array_equal(finite, cands)
    order = cands[np.argsort(scores[cands], kind="stable")][:12]
    assert order.tolist() == ids
    np.testing.assert_allclose([r["score"] for r in data["selected"]], scores[ids], rtol=0, atol=1e-6)


def test_bf16_agrees_with_fp32():
    art = artifacts("digits", "tavaal", "dynamo")
    pool = open_source(pool_npy("digits"))
    a = select_from_pool(Scorer.from_artifacts(art, backend="torchscript"), pool, "tavaal", 50)
    b = select_from_pool(Scorer.from_artifacts(art, backend="torchscript", precision="bf16"), pool, "tavaal", 50)
    assert len(set(a.rows.tolist()) & set(b.rows.tolist())) >= 40
    with pytest.raises(ValueError, match="bf16 is not available with the onnx backend"):
        Scorer.from_artifacts(art, backend="onnx", precision="bf16")


# -------------------------------------------------------------------------- bad inputs
def test_bad_inputs_exit_2(capsys):
    art = artifacts("moons", "tavaal")
    d = scratch("bad")
    empty = d / "empty.npy"
    np.save(empty, np.zeros((0, 2), np.float32))
    code, _, err = _cli([art, "--pool", empty, "--budget", 3, "--out", d / "o.csv"], capsys)
    assert code == 2 and "empty" in err and err.count("\n") == 1
    code, _, err = _cli([art, "--pool", pool_npy("moons"), "--budget", 551, "--out", d / "o.csv"], capsys)
    assert code == 2 and "550 candidate" in err and "budget" in err
    wrong = d / "wrong.npy"
    np.save(wrong, np.zeros((20, 3), np.float32))
    code, _, err = _cli([art, "--pool", wrong, "--budget", 3, "--out", d / "o.csv"], capsys)
    assert code == 2 and "shape [3]" in err and "[2]" in err
    code, _, err = _cli([art, "--pool", d / "missing.npy", "--budget", 3, "--out", d / "o.csv"], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = _cli([artifacts("moons", "lloss"), "--pool", pool_npy("moons"), "--budget", 3, "--method", "tavaal",
                         "--out", d / "o.csv"], capsys)
    assert code == 2 and "support" in err and "lloss" in err
    # tampered and incompatible artifacts
    bad_art = d / "art"
    shutil.copytree(art, bad_art, dirs_exist_ok=True)
    with open(bad_art / "scorer.onnx", "ab") as f:
        f.write(b"junk")
    code, _, err = _cli([bad_art, "--pool", pool_npy("moons"), "--budget", 3, "--out", d / "o.csv"], capsys)
    assert code == 2 and "sha256 mismatch" in err and "scorer.onnx" in err
    m = json.loads((bad_art / "manifest.json").read_text())
    m["format_version"] = 2
    (bad_art / "manifest.json").write_text(json.dumps(m))
    code, _, err = _cli([bad_art, "--pool", pool_npy("moons"), "--budget", 3, "--out", d / "o.csv"], capsys)
    assert code == 2 and "format version 2 is not supported" in err
    assert not (d / "o.csv").exists()


def test_image_shape_mismatch_and_bad_labeled(capsys):
    d = scratch("bad2")
    code, _, err = _cli([artifacts("digits", "tavaal", "dynamo"), "--pool", pool_npy("moons"), "--budget", 3,
                         "--out", d / "o.csv"], capsys)
    assert code == 2 and "[1, 8, 8]" in err
    ids = d / "labeled.txt"
    ids.write_text("0\n99999\n")
    code, _, err = _cli([artifacts("moons", "tavaal"), "--pool", pool_npy("moons"), "--budget", 3, "--labeled", ids,
                         "--out", d / "o.csv"], capsys)
    assert code == 2 and "not in the pool" in err and "99999" in err


def test_select_from_pool_errors_before_work():
    scorer = Scorer.from_artifacts(artifacts("moons", "tavaal"))
    pool = open_source(pool_npy("moons"))
    with pytest.raises(SelectionError, match="unknown method"):
        select_from_pool(scorer, pool, "no-such-method", 3)
    with pytest.raises(SelectionError, match="mcdropout needs the eager backend"):
        select_from_pool(scorer, pool, "mcdropout", 3)
    with pytest.raises(SelectionError, match="budget"):
        select_from_pool(scorer, pool, "tavaal", 0)
    with pytest.raises(SelectionError, match="candidate"):
        select_from_pool(scorer, pool, "tavaal", 30, subset=20)
    x = torch.from_numpy(np.load(pool_npy("moons"))[:4])
    out = scorer.score_batch(x)
    assert set(out) == {"loss", "r", "mu", "score"} and out["mu"].shape == (4, 8)
    torch.testing.assert_close(scorer.discriminate(out["r"], out["mu"]), out["score"])


def test_mcdropout_runs_on_the_eager_backend_seeded_by_seed():
    scorer = Scorer.from_artifacts(artifacts("moons", "tavaal"), backend="eager")
    state = torch.random.get_rng_state()
    a = select_from_pool(scorer, open_source(pool_npy("moons")), "mcdropout", 8, seed=2, mc_samples=3)
    b = select_from_pool(scorer, open_source(pool_npy("moons")), "mcdropout", 8, seed=2, mc_samples=3)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's torch random state is left alone"
