"""The Python-free C++ scorer (export/): build it with the top-level CMakeLists.txt against
libtorch + the csrc ops,
and run it on a tiny pool; compare its picks with the Python scorer's.

The build goes to build/test-cpp-scorer (reused by later runs: incremental). A fresh build
takes ~1-2 minutes on 2 cores, hence ``slow``; it still runs in CI (``make test``).
"""
from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tavaal.scoring import Scorer, open_source, select_from_pool

from score_fixtures import artifacts, pool_npy, scratch

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "test-cpp-scorer"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scorer_exe():
    if shutil.which("cmake") is None:
        pytest.skip("cmake not found")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    # the top-level CMakeLists.txt builds csrc/ (tavaal_ops) and add_subdirectory(export)
    configure = ["cmake", "-S", str(REPO), "-B", str(BUILD), *generator,
                 f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}", "-DCMAKE_BUILD_TYPE=Release"]
    res = subprocess.run(configure, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = subprocess.run(["cmake", "--build", str(BUILD), "-j", "2"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-3000:]
    exe = BUILD / "export" / "tavaal_scorer"
    assert exe.exists()
    return exe


def _read(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [int(r["id"]) for r in rows], [float(r["score"]) for r in rows]


@pytest.mark.parametrize("method, art", [("tavaal", ("digits", "tavaal", "dynamo")), ("lloss", ("moons", "lloss"))])
def test_cpp_scorer_matches_python(scorer_exe, method, art):
    art_dir = artifacts(*art)
    pool = pool_npy(art[0])
    out = scratch(f"cpp-{method}") / "sel.csv"
    res = subprocess.run([str(scorer_exe), str(art_dir), str(pool), "--budget", "12", "--method", method,
                          "--batch-size", "100", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "samples/s" in res.stderr
    ids, scores = _read(out)
    py = select_from_pool(Scorer.from_artifacts(art_dir, backend="torchscript"), open_source(pool), method, 12)
    assert ids == py.rows.tolist()
    np.testing.assert_allclose(scores, py.scores, atol=1e-5)


def test_cpp_scorer_uint8_pool_and_errors(scorer_exe):
    art_dir = artifacts("digits", "tavaal", "dynamo")
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(300, 1, 8, 8), dtype=np.uint8)
    d = scratch("cpp-u8")
    np.save(d / "raw.npy", raw)
    res = subprocess.run([str(scorer_exe), str(art_dir), str(d / "raw.npy"), "--budget", "7"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    ids = [int(line.split(",")[1]) for line in res.stdout.strip().splitlines()[1:]]
    py = select_from_pool(Scorer.from_artifacts(art_dir, backend="torchscript"), open_source(d / "raw.npy"), "tavaal", 7)
    assert ids == py.rows.tolist()
    np.save(d / "bad.npy", raw[:, :, :4])
    res = subprocess.run([str(scorer_exe), str(art_dir), str(d / "bad.npy"), "--budget", "7"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "shape" in res.stderr
    res = subprocess.run([str(scorer_exe), str(art_dir), str(d / "raw.npy"), "--budget", "301"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "budget" in res.stderr
