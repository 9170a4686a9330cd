"""Every ordinary install gives the compiled ops (tavaal.ops.build, setup.py).

* the build configuration: what is compiled and shipped, the cache key, GPU architectures;
* a failed just-in-time build names the missing tool (and TAVAAL_REQUIRE_EXT=1 raises);
* slow: a clean copy of the project installed with plain ``pip install .`` (build isolation,
  so no tavaal._C) into a fresh virtualenv reports ``backend() == "cpp"``: the ops are
  compiled on first use, cached, and loaded from the cache by the next process.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import torch

from tavaal.ops import build

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAVAAL_")}
    env.update(extra)
    return env


# ----------------------------------------------------------------------- configuration
def test_sources_are_found_in_the_checkout_and_every_compiled_file_is_shipped():
    root = build.source_dir()
    assert root == ROOT / "csrc"
    cpp, cu = build.source_files(root)
    names = {pathlib.Path(p).relative_to(root).as_posix() for p in cpp + cu}
    assert {"tavaal.cpp", "cpu/topb_cpu.cpp", "cpu/kcenter_cpu.cpp", "cpu/score_cpu.cpp",
            "cuda/ops_cuda.cpp", "cuda/topb_kernel.cu", "cuda/kcenter_kernel.cu"} <= names
    shipped = {p.as_posix() for p in build.shipped_files(root)}
    assert names <= shipped
    # every header any source includes ships too
    assert {"kcenter_common.h", "select.h", "cpu/distance.h", "cuda/kernels.h"} <= shipped
    assert not any(p.startswith("test/") for p in shipped), "the C++ smoke test is not part of the ops"


def test_source_hash_follows_the_contents(tmp_path):
    src = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc", src)
    h0 = build.source_hash(src)
    assert h0 == build.source_hash(ROOT / "csrc")
    (src / "cpu" / "distance.h").write_text((src / "cpu" / "distance.h").read_text() + "\n// changed\n")
    assert build.source_hash(src) != h0


def test_cache_key_separates_torch_cuda_sources_and_archs(monkeypatch, tmp_path):
    k = build.build_key("2.13.0+cpu", None, "a" * 64, None)
    assert "torch2.13.0_cpu" in k and "-cpu-" in k and "srcaaaaaaaaaaaaaaaa" in k
    assert build.build_key("2.13.0+cu128", "12.8", "a" * 64, "9.0") != build.build_key("2.13.0+cu128", "12.8", "a" * 64, "8.0")
    assert build.build_key("2.13.0", None, "b" * 64, None) != build.build_key("2.13.0", None, "a" * 64, None)
    assert build.build_key("2.12.0", None, "a" * 64, None) != build.build_key("2.13.0", None, "a" * 64, None)
    monkeypatch.setenv("TAVAAL_EXT_CACHE", str(tmp_path / "c"))
    assert build.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TAVAAL_EXT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_dir() == tmp_path / "xdg" / "tavaal" / "ext"


def test_cuda_architectures(monkeypatch):
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    assert build.cuda_arch_list(gpu_visible=False) == build.DEFAULT_CUDA_ARCHS == "8.0;9.0+PTX"
    assert build.cuda_arch_list(gpu_visible=True) is None  # torch's default: the visible GPUs
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0a")
    assert build.cuda_arch_list(gpu_visible=False) == "9.0a"
    assert build.cuda_arch_list(gpu_visible=True) == "9.0a"


def test_cuda_kernels_are_built_only_for_cuda_torch(monkeypatch):
    monkeypatch.delenv("TAVAAL_NO_CUDA", raising=False)
    assert build.want_cuda(None, True) is False
    assert build.want_cuda("12.8", True) is True
    assert build.want_cuda("12.8", False) is False
    monkeypatch.setenv("TAVAAL_NO_CUDA", "1")
    assert build.want_cuda("12.8", True) is False


def test_flags_are_shared_with_setup_py(monkeypatch):
    monkeypatch.setenv("TAVAAL_NATIVE", "0")
    assert "-march=native" not in build.cxx_flags()
    monkeypatch.setenv("TAVAAL_NATIVE", "1")
    assert {"-O3", "-std=c++20", "-march=native"} <= set(build.cxx_flags())
    assert "cfg.cxx_flags()" in (ROOT / "setup.py").read_text()


# ------------------------------------------------------------------- a failed JIT build
FAILED_JIT = r"""
import sys, warnings
sys.modules["tavaal._C"] = None   # as after a plain `pip install .`: no install-time extension
import torch, tavaal.ops as ops
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    try:
        v, i = ops.topb(torch.tensor([2.0, 1.0, 3.0]), 2)
        print("RESULT", i.tolist())
    except RuntimeError as e:
        print("RAISED", e)
for x in w:
    print("WARNING", x.message)
print("BACKEND", ops.backend())
"""


@pytest.mark.parametrize("require", [False, True])
def test_missing_compiler_is_named(tmp_path, require):
    env = _env(CXX=str(tmp_path / "no-such-c++"), TAVAAL_EXT_CACHE=str(tmp_path / "cache"))
    if require:
        env["TAVAAL_REQUIRE_EXT"] = "1"
    out = subprocess.run([sys.executable, "-c", FAILED_JIT], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "no C++ compiler" in out.stdout and "no-such-c++" in out.stdout, out.stdout
    assert "apt-get install g++" in out.stdout and "TAVAAL_NO_EXT=1" in out.stdout
    if require:
        assert "RAISED the compiled tavaal ops are required" in out.stdout
    else:
        assert "RESULT [1, 0]" in out.stdout  # the reference answers, after one warning
        assert sum(ln.startswith("WARNING") for ln in out.stdout.splitlines()) == 1
    assert "BACKEND reference" in out.stdout


# ------------------------------------------------------------- plain `pip install .` (slow)
def _clean_copy(dst: pathlib.Path) -> None:
    """The files a clone of the working tree would have (tracked + untracked, not ignored)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


USE_OPS = textwrap.dedent(
    r"""
    import sys, torch
    import tavaal, tavaal.ops as ops
    assert "tavaal._C" not in sys.modules
    print("FROM", tavaal.__file__)
    print("BACKEND", ops.backend())
    print("ORIGIN", ops.extension_origin())
    v, i = ops.topb(torch.tensor([3.0, 1.0, 2.0, 1.0]), 3)
    idx, radii = ops.kcenter_greedy(torch.tensor([[0.0], [1.0], [5.0], [2.0], [10.0]]), 3, first=0)
    print("RESULT", i.tolist(), idx.tolist())
    """
)


@pytest.mark.slow
def test_plain_pip_install_gives_the_compiled_ops(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to list the project's files")
    src = tmp_path / "src"
    _clean_copy(src)
    assert not list(src.glob("tavaal/*.so")), "a clean copy has no compiled extension"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # torch & co. come from this test's environment (no download); pip must not touch it
    site_new = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    pathlib.Path(site_new, "_tavaal_test_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _env(TAVAAL_EXT_CACHE=str(tmp_path / "cache"), PIP_NO_INPUT="1")
    pip = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--ignore-installed", str(src)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    installed = pathlib.Path(site_new) / "tavaal"
    assert not list(installed.glob("_C*.so")), "build isolation: nothing compiled at install time"
    assert (installed / "_csrc" / "tavaal.cpp").is_file() and (installed / "_csrc" / "cuda" / "kernels.h").is_file()

    runs, stamps = [], []
    for _ in range(2):  # first: compiles; second: loads the cached library
        out = subprocess.run([str(py), "-c", USE_OPS], capture_output=True, text=True, env=env, timeout=1800,
                             cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr[-5000:]
        runs.append(dict(ln.split(" ", 1) for ln in out.stdout.splitlines() if " " in ln))
        stamps.append(pathlib.Path(runs[-1]["ORIGIN"]).stat().st_mtime_ns)
    for r in runs:
        assert r["FROM"].startswith(site_new), r
        assert r["BACKEND"] == ("cpp+cuda" if torch.version.cuda else "cpp")
        assert r["RESULT"] == "[1, 3, 2] [0, 4, 2]"
        assert r["ORIGIN"].startswith(str(tmp_path / "cache"))
    assert runs[0]["ORIGIN"] == runs[1]["ORIGIN"]
    assert stamps[0] == stamps[1], "the second process must load the cached build, not rebuild it"
