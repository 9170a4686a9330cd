"""Building and loading the compiled selection ops (``torch.ops.tavaal.*``).

On first use, :func:`load` tries in order:

1. ``TAVAAL_NO_EXT=1``: no compiled ops (``tavaal.ops`` uses the pure-torch reference, with
   one warning);
2. ``import tavaal._C``, compiled at install time by ``setup.py`` when torch was importable
   then (``make install``, ``pip install --no-build-isolation ...``) -- unless ``TAVAAL_JIT=1``
   or the module is older than one of its sources (:func:`extension_is_stale`: an edited
   checkout, a second git worktree of an editable install): then step 3, with one warning;
3. a just-in-time build (:func:`jit_build`, e.g. after a plain ``pip install .``) of the
   C++/CUDA sources the package ships (``tavaal/_csrc`` in a wheel, ``csrc/`` in a checkout):
   once, a few minutes, cached in :func:`cache_dir` under :func:`build_key`.

A failed build names the missing tool (C++ compiler, ninja, nvcc) and the fix. At most one of
``tavaal._C``, a JIT build or the CMake ``libtavaal_ops.so`` may be loaded into a process (the
ops would be registered twice). Environment (``TAVAAL_EXT_CACHE``, ``TAVAAL_JIT``,
``TAVAAL_NATIVE=0``, ``TAVAAL_NO_CUDA=1``, ``TORCH_CUDA_ARCH_LIST``): see docs/ops.md.
``python -m tavaal.ops.build`` builds (or finds) the ops now and prints where they come from.

``setup.py`` imports this file by path for the same flags and source lists, so it imports only
the standard library at import time (torch lazily).
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import platform
import re
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Tuple

log = logging.getLogger("tavaal.ops")

#: GPU architectures compiled when ``TORCH_CUDA_ARCH_LIST`` is unset and no GPU is visible:
#: A100 (8.0) and H100/H200 (9.0), plus PTX for newer GPUs. CMake's default is the same.
DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"
PACKAGE_SOURCES = "_csrc"  # the sources' folder inside the installed package (wheel)

_PKG_DIR = Path(__file__).resolve().parents[1]  # .../tavaal


# ------------------------------------------------------------------------------- sources
def source_dir() -> Optional[Path]:
    """The C++/CUDA sources: ``tavaal/_csrc`` (installed wheel) or ``<checkout>/csrc``."""
    for cand in (_PKG_DIR / PACKAGE_SOURCES, _PKG_DIR.parent / "csrc"):
        if (cand / "tavaal.cpp").is_file():
            return cand
    return None


def source_files(root: Path) -> Tuple[List[str], List[str]]:
    """(C++ sources, CUDA sources) of the ops under ``root``: every ``*.cpp`` in ``root`` and
    ``root/cpu``; every ``*.cu`` and ``*.cpp`` in ``root/cuda`` (new ops are picked up
    without editing the build)."""
    root = Path(root)
    cpp = sorted(glob.glob(str(root / "*.cpp")) + glob.glob(str(root / "cpu" / "*.cpp")))
    cu = sorted(glob.glob(str(root / "cuda" / "*.cu")) + glob.glob(str(root / "cuda" / "*.cpp")))
    return cpp, cu


def shipped_files(root: Path) -> List[Path]:
    """Every file the build reads (sources and headers), relative to ``root``."""
    root = Path(root)
    pats = ("*.h", "*.cpp", "cpu/*.h", "cpu/*.cpp", "cuda/*.h", "cuda/*.cuh", "cuda/*.cu", "cuda/*.cpp")
    return sorted({p.relative_to(root) for pat in pats for p in root.glob(pat)})


def source_hash(root: Path) -> str:
    """sha256 over the names and contents of :func:`shipped_files` (hex)."""
    h = hashlib.sha256()
    for rel in shipped_files(root):
        h.update(str(rel).encode() + b"\0")
        h.update((Path(root) / rel).read_bytes() + b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------------- flags
def _flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default) not in ("", "0", "false", "False", "no")


def cxx_flags() -> List[str]:
    """Host compiler flags (shared by setup.py and the JIT build)."""
    flags = ["-O3", "-std=c++20", "-DAT_PARALLEL_OPENMP=1"]
    if sys.platform.startswith("linux"):
        flags.append("-fopenmp")
    if _flag("TAVAAL_NATIVE", "1"):
        flags.append("-march=native")
    return flags


def link_flags(with_cuda: bool = False) -> List[str]:
    """Linker flags; with CUDA also the cuBLAS library the fused scoring calls
    (:func:`cublas_library`), kept even where the linker defaults to ``--as-needed``."""
    flags = ["-fopenmp"] if sys.platform.startswith("linux") else []
    lib = cublas_library() if with_cuda else None
    if lib is not None:
        flags += ["-Wl,--no-as-needed", lib]  # (and every library after it kept too: conservative)
    return flags


def cublas_library() -> Optional[str]:
    """Path of the cuBLAS shared library: the CUDA toolkit's (``$CUDA_HOME/lib64``,
    /usr/local/cuda) or the nvidia-cublas wheel's a CUDA torch installs; None when neither
    exists (the symbols then resolve through torch's own CUDA libraries at load time)."""
    import importlib.util

    dirs = [os.path.join(base, "lib64") for base in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda") if base]
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        spec = None
    for base in (spec.submodule_search_locations or []) if spec else []:
        dirs.append(os.path.join(base, "cublas", "lib"))
    for d in dirs:
        found = sorted(glob.glob(os.path.join(d, "libcublas.so*")))
        if found:
            return min(found, key=len)  # libcublas.so, else the shortest versioned name
    return None


def nvcc_flags() -> List[str]:
    return ["-O3", "-std=c++17", "-Xptxas=-warn-spills"]


def cuda_arch_list(gpu_visible: bool) -> Optional[str]:
    """The ``TORCH_CUDA_ARCH_LIST`` to build with: the user's; None (torch's default: the
    visible GPUs) when a GPU is visible; else :data:`DEFAULT_CUDA_ARCHS`."""
    return os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip() or (None if gpu_visible else DEFAULT_CUDA_ARCHS)


def want_cuda(torch_cuda_version: Optional[str], have_cu_sources: bool) -> bool:
    """CUDA kernels are built when torch has CUDA, sources exist and TAVAAL_NO_CUDA is unset."""
    return torch_cuda_version is not None and have_cu_sources and not _flag("TAVAAL_NO_CUDA")


# --------------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """Root of the JIT build cache (``TAVAAL_EXT_CACHE``, else the user cache dir)."""
    env = os.environ.get("TAVAAL_EXT_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tavaal" / "ext"


def _cpu_tag() -> str:
    """Machine + a short hash of the CPU feature flags (-march=native builds are CPU-specific)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = " ".join(sorted(line.split(":", 1)[1].split()))
                    break
    except OSError:
        flags = platform.processor()
    native = "native" if _flag("TAVAAL_NATIVE", "1") else "generic"
    return f"{platform.machine()}-{native}-{hashlib.sha256(flags.encode()).hexdigest()[:8]}"


def build_key(torch_version: str, cuda_version: Optional[str], src_hash: str, arch_list: Optional[str]) -> str:
    """Cache key: torch version, CUDA version (or cpu), Python, CPU, GPU archs, source hash."""
    cu = f"cu{cuda_version}" if cuda_version else "cpu"
    archs = hashlib.sha256((arch_list or "visible").encode()).hexdigest()[:6] if cuda_version else "none"
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    key = f"torch{torch_version}-{cu}-arch{archs}-{py}-{_cpu_tag()}-src{src_hash[:16]}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def extension_is_stale(extension: Path, root: Path) -> Optional[str]:
    """Why the compiled module ``extension`` (``tavaal._C``) must not be used with the sources
    under ``root``: one of :func:`shipped_files` was modified after the module was built (an
    edited checkout). None when the module is newer than every source, or when either is missing."""
    try:
        built = os.path.getmtime(extension)
        newest = max(((os.path.getmtime(Path(root) / rel), rel) for rel in shipped_files(root)), default=None)
    except OSError:
        return None
    if newest is None or newest[0] <= built:
        return None
    return (f"{extension} is older than its source {Path(root) / newest[1]}; rebuild it (`make install`, or "
            "`pip install --no-build-isolation -e .`)")


# --------------------------------------------------------------------------------- build
class BuildError(RuntimeError):
    """The ops could not be compiled; the message names the missing tool and the fix."""


def _require_tools(with_cuda: bool) -> None:
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise BuildError(f"no C++ compiler: `{cxx}` (the CXX variable, else c++) is not on PATH. Install one "
                         "(Debian/Ubuntu: `apt-get install g++`; Fedora: `dnf install gcc-c++`; conda: "
                         "`conda install -c conda-forge cxx-compiler`), or set TAVAAL_NO_EXT=1 to use the slow "
                         "pure-torch reference")
    if shutil.which("ninja") is None:
        try:  # the `ninja` PyPI package (a dependency of tavaal) ships the binary
            import ninja  # type: ignore

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            raise BuildError("ninja is not installed: `pip install ninja` (or set TAVAAL_NO_EXT=1)") from None


def jit_build(verbose: bool = False) -> Path:
    """Compile (or find in the cache) the ops library and load it into this process.

    Returns the path of the loaded shared library. Raises :class:`BuildError` with the missing
    tool named, or when the sources are not shipped.
    """
    import torch
    import torch.utils.cpp_extension as cpp_ext

    root = source_dir()
    if root is None:
        raise BuildError(f"the C++ sources of the ops are missing (looked in {_PKG_DIR / PACKAGE_SOURCES} and "
                         f"{_PKG_DIR.parent / 'csrc'}); reinstall tavaal from a source checkout or wheel")
    cpp, cu = source_files(root)
    with_cuda = want_cuda(torch.version.cuda, bool(cu))
    if with_cuda and cpp_ext.CUDA_HOME is None:
        log.warning("tavaal: torch has CUDA %s but nvcc (CUDA_HOME) was not found: building the ops for CPU "
                    "only (CUDA tensors then use the pure-torch reference). Install the CUDA toolkit "
                    "matching torch and set CUDA_HOME to get the CUDA kernels.", torch.version.cuda)
        with_cuda = False
    _require_tools(with_cuda)
    arch_list = cuda_arch_list(torch.cuda.is_available()) if with_cuda else None
    src_hash = source_hash(root)
    key = build_key(torch.__version__, torch.version.cuda if with_cuda else None, src_hash, arch_list)
    build_dir = cache_dir() / key
    build_dir.mkdir(parents=True, exist_ok=True)
    name = "tavaal_ops_" + src_hash[:12]
    lib = build_dir / f"{name}.so"
    if not lib.exists():
        log.warning("tavaal: compiling the C++%s selection ops for torch %s (once; a few minutes). Cache: %s",
                    "/CUDA" if with_cuda else "", torch.__version__, build_dir)
    old_arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if arch_list is not None:
        os.environ["TORCH_CUDA_ARCH_LIST"] = arch_list
    try:
        cpp_ext.load(name=name, sources=cpp + (cu if with_cuda else []),
                     extra_cflags=cxx_flags() + (["-DTAVAAL_WITH_CUDA=1"] if with_cuda else []),
                     extra_cuda_cflags=nvcc_flags(), extra_ldflags=link_flags(with_cuda),
                     extra_include_paths=[str(root)], build_directory=str(build_dir), with_cuda=with_cuda,
                     is_python_module=False, verbose=verbose)
    except Exception as exc:  # compiler errors, missing headers, ...
        raise BuildError(f"compiling the ops failed in {build_dir}: {type(exc).__name__}: {exc}") from exc
    finally:
        if arch_list is not None:
            if old_arch is None:
                os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
            else:
                os.environ["TORCH_CUDA_ARCH_LIST"] = old_arch
    return lib


def _stale_c_module() -> Optional[str]:
    """:func:`extension_is_stale` for the ``tavaal._C`` that ``import tavaal._C`` would load
    (found without importing it) against a source checkout's ``csrc/``. Installed packages are
    not compared: their ``_csrc`` copy and ``_C`` are written by the installer in any order."""
    import importlib.util

    root = _PKG_DIR.parent / "csrc"
    if source_dir() != root:
        return None
    try:
        spec = importlib.util.find_spec("tavaal._C")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return extension_is_stale(Path(spec.origin), root)


def load() -> Tuple[bool, Optional[str], Optional[str]]:
    """Make ``torch.ops.tavaal.*`` available once per process (see the module doc).

    Returns ``(loaded, error, origin)``: origin is ``"tavaal._C"`` or the JIT library's path;
    error says why nothing was loaded.
    """
    import torch

    if _flag("TAVAAL_NO_EXT"):
        return False, "TAVAAL_NO_EXT=1 is set (compiled ops disabled)", None
    try:
        if _flag("TAVAAL_JIT"):
            raise ImportError("TAVAAL_JIT=1 is set (tavaal._C not tried)")
        stale = _stale_c_module()
        if stale is not None:
            log.warning("tavaal: not loading tavaal._C: %s. Using a JIT build of the current sources.", stale)
            raise ImportError(stale)
        import tavaal._C  # noqa: F401  (registers torch.ops.tavaal.*)

        torch.ops.tavaal.topb  # noqa: B018  (raises if the schema is missing)
        return True, None, "tavaal._C"
    except Exception as exc:  # ImportError (not built), OSError (ABI mismatch), AttributeError
        aot_error = f"{type(exc).__name__}: {exc}"
    try:
        lib = jit_build()
        torch.ops.tavaal.topb  # noqa: B018
        return True, None, str(lib)
    except Exception as exc:
        return False, f"tavaal._C not importable ({aot_error}) and {exc}", None


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m tavaal.ops.build``: build or find the ops now; print the backend and origin."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tavaal.ops.build", description=main.__doc__)
    ap.add_argument("--print-cache-dir", action="store_true", help="print the JIT cache directory and exit")
    args = ap.parse_args(argv)
    if args.print_cache_dir:
        print(cache_dir())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    loaded, error, origin = load()
    backend = ("cpp+cuda" if torch.ops.tavaal.with_cuda() else "cpp") if loaded else "reference"
    print(f"backend: {backend}")  # (the names of tavaal.ops.backend())
    print(f"loaded from: {origin}")
    if not loaded:
        print(f"why: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
