"""A compiled ``tavaal._C`` older than its sources is never loaded: an edited checkout (or a
second git worktree of an editable install) gets a JIT build of its current sources instead,
with the reason said -- stale kernels must not run unnoticed."""
import os
import shutil
from pathlib import Path

from tavaal.ops import build

ROOT = Path(__file__).resolve().parents[1]


def _tree(tmp_path):
    src = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc", src)
    ext = tmp_path / "_C.so"
    ext.write_bytes(b"\0")
    return src, ext


def test_a_module_older_than_a_source_is_stale(tmp_path):
    src, ext = _tree(tmp_path)
    t = os.path.getmtime(ext)
    for rel in build.shipped_files(src):
        os.utime(src / rel, (t - 100, t - 100))
    assert build.extension_is_stale(ext, src) is None
    edited = src / "cpu" / "kmeanspp_cpu.cpp"
    os.utime(edited, (t + 100, t + 100))
    why = build.extension_is_stale(ext, src)
    assert why is not None and str(edited) in why and "make install" in why
    assert build.extension_is_stale(tmp_path / "missing.so", src) is None


def test_load_skips_a_stale_module_and_builds_the_sources(monkeypatch):
    monkeypatch.delenv("TAVAAL_JIT", raising=False)
    monkeypatch.delenv("TAVAAL_NO_EXT", raising=False)
    monkeypatch.setattr(build, "_stale_c_module", lambda: "tavaal._C is older than its source x.cpp")
    calls = []

    def jit_build(verbose=False):
        calls.append(True)
        raise build.BuildError("no compiler here")

    monkeypatch.setattr(build, "jit_build", jit_build)
    loaded, error, origin = build.load()
    assert calls and not loaded and origin is None
    assert "older than its source x.cpp" in error and "no compiler here" in error
