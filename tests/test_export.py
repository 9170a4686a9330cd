"""python -m tavaal.export: artifacts, manifest, verification, sha256, per-method contents."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tavaal.artifacts import ArtifactError, load_manifest, read_manifest, sha256_file, verify_files
from tavaal.export import main as export_main
from tavaal.scoring import Scorer

from score_fixtures import artifacts, digits_run, moons_run, pool_npy, scratch


def test_export_round_trip_digits_dynamo():
    art = artifacts("digits", "tavaal", "dynamo")
    m = load_manifest(art)  # version + sha256 of every file
    assert m["format"] == "tavaal-artifacts" and m["format_version"] == 1
    assert m["input"]["shape"] == [1, 8, 8] and m["input"]["dtype"] == "float32"
    assert len(m["input"]["mean"]) == 1 and len(m["input"]["std"]) == 1
    assert m["latent_dim"] == 16 and m["feature_dim"] == 64
    assert m["rank"]["mode"] == "normalized" and m["rank"]["r"].startswith("sigmoid(")
    assert m["onnx"] == {"opset": 18, "exporter": "dynamo"}
    assert m["source"]["method"] == "tavaal" and m["source"]["trial"] == 0 and m["source"]["cycle"] == 0
    assert m["source"]["run_dir"] == str(digits_run().resolve())
    assert set(m["versions"]) >= {"torch", "onnx", "onnxruntime", "numpy", "tavaal"}
    assert m["methods"][:3] == ["tavaal", "lloss", "coreset"] and "entropy" in m["methods"]
    assert m["methods"][-1] == "random" and m["num_classes"] == 10
    for name in ("ranker", "encoder", "discriminator", "scorer", "features", "classifier"):
        files = m["models"][name]["files"]
        assert set(files) == {"torchscript", "onnx"}
        for f in files.values():
            assert m["files"][f]["sha256"] == sha256_file(art / f)
    assert m["models"]["scorer"]["outputs"] == ["loss", "r", "mu", "score"]
    assert m["verification"]["passed"]
    for per in m["verification"]["max_abs_error"].values():
        assert per["torchscript"] < 1e-4 and per["onnx"] < 1e-4


def test_backends_agree_on_pool_batch():
    art = artifacts("digits", "tavaal", "dynamo")
    x = torch.from_numpy(np.load(pool_npy("digits"))[:37])
    outs = {b: Scorer.from_artifacts(art, backend=b).score_batch(x) for b in ("eager", "torchscript", "onnx")}
    for b in ("torchscript", "onnx"):
        for k in ("loss", "r", "mu", "score"):
            err = (outs[b][k] - outs["eager"][k]).abs().max().item()
            assert err < 1e-4, (b, k, err)
    feats = {b: Scorer.from_artifacts(art, backend=b).features_batch(x) for b in ("eager", "onnx")}
    assert (feats["eager"] - feats["onnx"]).abs().max().item() < 1e-4


@pytest.mark.parametrize("method, graphs, methods", [
    ("tavaal", {"ranker", "encoder", "discriminator", "scorer", "features", "normalize"}, ["tavaal", "lloss", "coreset"]),
    ("vaal", {"encoder", "discriminator", "scorer", "features", "normalize"}, ["vaal", "coreset"]),
    ("lloss", {"ranker", "features", "normalize"}, ["lloss", "coreset"]),
    ("coreset", {"features", "normalize"}, ["coreset"]),
])
def test_export_what_each_method_has(method, graphs, methods):
    m = read_manifest(artifacts("moons", method))
    assert set(m["models"]) == graphs | {"classifier"}, "every export has the classifier graph"
    assert m["methods"][:len(methods)] == methods and m["methods"][-1] == "random"
    assert "entropy" in m["methods"] and "mcdropout" not in m["methods"], "mcdropout needs live (eager) models"
    assert m["source"]["method"] == method
    if method == "vaal":
        assert m["models"]["discriminator"]["inputs"] == ["mu"]
        assert m["models"]["scorer"]["outputs"] == ["mu", "score"]
        assert m["discriminator"]["rank_conditioned"] is False


def test_export_cli_is_quiet_and_refuses_overwrite():
    out = scratch("cli-export") / "art"
    cmd = [sys.executable, "-m", "tavaal.export", str(moons_run()), "--out", str(out), "--method", "lloss",
           "--onnx-exporter", "legacy"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "exported lloss trial 0 cycle 0" in res.stdout
    assert "max abs error" in res.stdout
    assert "Deprecat" not in res.stderr and "TracerWarning" not in res.stderr and "Warning" not in res.stderr
    assert (out / "manifest.json").exists()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "--force" in res.stderr


def test_export_fails_above_tolerance(capsys):
    out = scratch("tol") / "art"
    code = export_main([str(moons_run()), "--out", str(out), "--onnx-exporter", "legacy", "--tolerance", "-1", "-q"])
    assert code == 1
    assert "verification failed" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()


def test_export_missing_method_or_run(capsys):
    assert export_main([str(moons_run()), "--out", str(scratch("m") / "a"), "--method", "mcdropout"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "tavaal" in err
    assert export_main([str(scratch("not-a-run")), "--out", str(scratch("m") / "b")]) == 2
    assert "not a tavaal run directory" in capsys.readouterr().err


def test_manifest_version_and_tamper_checks():
    src = artifacts("moons", "lloss")
    art = scratch("tamper") / "art"
    shutil.copytree(src, art, dirs_exist_ok=True)
    verify_files(art, read_manifest(art))
    with open(art / "ranker.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_manifest(art)
    m = json.loads((art / "manifest.json").read_text())
    m["format_version"] = 99
    (art / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="version 99 is not supported"):
        read_manifest(art)
    with pytest.raises(ArtifactError, match="does not exist"):
        read_manifest(art / "nope")
