"""The top-level CMakeLists.txt builds the ops as a C++ library against libtorch.

The library is exercised in separate processes only (it must never share a process with
tavaal._C, which registers the same ops): a C++ executable calls the ops through the
dispatcher and through TorchScript compiled from C++, and a Python process loads the library
with torch.ops.load_library, scripts a module calling the three ops, and saves it; the C++
executable then loads and runs that module.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

PY_SCRIPT = textwrap.dedent(
    r"""
    import sys, torch
    lib, out = sys.argv[1], sys.argv[2]
    assert "tavaal._C" not in sys.modules
    torch.ops.load_library(lib)

    class Select(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.tavaal.topb(x, 5, False, None, False)[1]

    @torch.jit.script
    def coreset(x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.ops.tavaal.kcenter_greedy(x, k, None, 1, "euclidean")[0]

    @torch.jit.script
    def score(mu: torch.Tensor, ws: list[torch.Tensor], bs: list[torch.Tensor], k: int) -> torch.Tensor:
        return torch.ops.tavaal.score_topb(mu, torch.empty(0), ws, bs, k, False, "fp32", 0, False)[1]

    m = torch.jit.script(Select())
    x = torch.arange(20, dtype=torch.float32) % 7
    assert m(x).tolist() == [0, 7, 14, 1, 8], m(x)
    pts = torch.tensor([[0.0], [1.0], [5.0], [2.0], [10.0]])
    assert coreset(pts, 3).tolist() == [1, 4, 2], coreset(pts, 3)
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    assert score(mu, [torch.tensor([[1.0, -1.0]])], [torch.zeros(1)], 2).tolist() == [2, 0]
    torch.jit.save(m, out)
    print("PY-OK")
    """
)


@pytest.mark.slow
def test_cmake_library_builds_and_runs_from_cpp_and_torchscript(tmp_path):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    build = tmp_path / "build"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = [cmake, "-S", str(ROOT), "-B", str(build), *gen,
           f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
           "-DTAVAAL_BUILD_TESTS=ON", "-DTAVAAL_BUILD_EXPORT=OFF", "-DTAVAAL_WITH_CUDA=OFF"]
    out = subprocess.run(cfg, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([cmake, "--build", str(build), "-j", str(os.cpu_count() or 2)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    lib = build / "libtavaal_ops.so"
    exe = build / "tavaal_ops_smoke"
    assert lib.exists() and exe.exists()

    module = tmp_path / "select.pt"
    env = {k: v for k, v in os.environ.items() if k != "TAVAAL_FORCE_REFERENCE"}
    script = tmp_path / "script_ops.py"  # TorchScript needs the source in a file
    script.write_text(PY_SCRIPT)
    py = subprocess.run([sys.executable, str(script), str(lib), str(module)],
                        capture_output=True, text=True, timeout=300, env=env)
    assert py.returncode == 0 and "PY-OK" in py.stdout, py.stdout + py.stderr

    torch_lib = pathlib.Path(torch.__file__).parent / "lib"
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(torch_lib), env.get("LD_LIBRARY_PATH", "")])
    cpp = subprocess.run([str(exe), str(module)], capture_output=True, text=True, timeout=300, env=env)
    assert cpp.returncode == 0, cpp.stdout + cpp.stderr
    assert "OK" in cpp.stdout.splitlines()
    assert "module: 0 7 14 1 8" in cpp.stdout


@pytest.mark.slow
@pytest.mark.nvcc
@pytest.mark.parametrize("archs", [None, "86", "80;90a"])
def test_cmake_sets_the_cuda_architectures(tmp_path, archs):
    """CUDA kernels are compiled for 80 and 90 by default (machine code: no PTX JIT on
    A100/H100/H200; plus PTX of 90 for newer GPUs), or for what -DCMAKE_CUDA_ARCHITECTURES says. Configure only: CPU torch cannot link the CUDA
    registration file, but the generated nvcc commands show the architectures."""
    cmake = shutil.which("cmake")
    if cmake is None or shutil.which("ninja") is None:
        pytest.skip("cmake and ninja are needed")
    cfg = [cmake, "-S", str(ROOT), "-B", str(tmp_path), "-G", "Ninja",
           f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}", f"-DCMAKE_CUDA_COMPILER={shutil.which('nvcc')}",
           "-DTAVAAL_WITH_CUDA=ON", "-DTAVAAL_BUILD_EXPORT=OFF"]
    if archs:
        cfg.append(f"-DCMAKE_CUDA_ARCHITECTURES={archs}")
    out = subprocess.run(cfg, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    want = archs or "80-real;90-real;90-virtual"
    assert f"tavaal_ops: CUDA kernels ON, architectures {want}" in out.stdout
    ninja = (tmp_path / "build.ninja").read_text()
    for a in want.split(";"):
        assert f"arch=compute_{a.split('-')[0]}," in ninja, a
    if archs is None:  # PTX of 90 embedded for GPUs newer than the machine code
        assert "code=[compute_90]" in ninja or "code=compute_90" in ninja, "no PTX of sm_90"
