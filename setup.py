"""Builds tavaal: the package, its C++/CUDA sources, and (when torch is importable) ``tavaal._C``.

Metadata lives in pyproject.toml. Every install path gives the compiled ops:

* torch importable at build time (``make install``, ``pip install --no-build-isolation .``):
  ``tavaal._C`` is compiled now against that torch -- CUDA kernels included when
  ``torch.version.cuda`` is set (``TORCH_CUDA_ARCH_LIST`` honoured; default: the visible GPUs,
  else ``8.0;9.0+PTX``) and ``TAVAAL_NO_CUDA`` is unset;
* plain ``pip install .`` (build isolation hides torch): no compilation now; the wheel ships the
  sources (``tavaal/_csrc``) and ``tavaal.ops`` compiles them on first use, once, into a user
  cache (see ``tavaal/ops/build.py``). Say so loudly in the build log;
* ``TAVAAL_NO_EXT=1``: nothing is compiled now (the sources are still shipped).

The flags, source lists and architecture defaults come from ``tavaal/ops/build.py`` (loaded by
path: it needs only the standard library), so the install-time and the JIT builds agree.
"""
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _build_config():
    spec = importlib.util.spec_from_file_location("_tavaal_build_config", ROOT / "tavaal" / "ops" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cfg = _build_config()


class BuildPyWithSources(build_py):
    """Also copies csrc/ into the package as tavaal/_csrc (the JIT build's sources)."""

    def run(self):
        super().run()
        src = ROOT / "csrc"
        dst = Path(self.build_lib) / "tavaal" / cfg.PACKAGE_SOURCES
        if dst.exists():
            shutil.rmtree(dst)
        for rel in cfg.shipped_files(src):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dst / rel)


def _note(msg):
    # pip hides a successful build's output unless -v; a warning line still reaches its log
    print(f"tavaal setup.py: {msg}", file=sys.stderr)


def extensions():
    cmdclass = {"build_py": BuildPyWithSources}
    if os.environ.get("TAVAAL_NO_EXT", "0") not in ("", "0"):
        _note("TAVAAL_NO_EXT is set: not compiling tavaal._C")
        return [], cmdclass
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        _note(
            "torch is not importable in this build environment (pip's build isolation): tavaal._C "
            "is not compiled now; the installed package compiles its ops on first use (once, cached "
            "in ~/.cache/tavaal/ext). To compile now instead: pip install --no-build-isolation ."
        )
        return [], cmdclass

    cpp, cu = cfg.source_files(ROOT / "csrc")
    cpp = [str(Path(p).relative_to(ROOT)) for p in cpp]
    cu = [str(Path(p).relative_to(ROOT)) for p in cu]
    with_cuda = cfg.want_cuda(torch.version.cuda, bool(cu))
    if with_cuda:
        archs = cfg.cuda_arch_list(torch.cuda.is_available())
        if archs is not None:
            os.environ["TORCH_CUDA_ARCH_LIST"] = archs  # read by BuildExtension
    define_macros = [("TAVAAL_PYTHON_MODULE", "1")] + ([("TAVAAL_WITH_CUDA", "1")] if with_cuda else [])
    kwargs = dict(
        name="tavaal._C",
        sources=cpp + (cu if with_cuda else []),
        include_dirs=[str(ROOT / "csrc")],
        define_macros=define_macros,
        extra_compile_args={"cxx": cfg.cxx_flags(), "nvcc": cfg.nvcc_flags()},
        extra_link_args=cfg.link_flags(with_cuda),
    )
    ext = CUDAExtension(**kwargs) if with_cuda else CppExtension(**kwargs)
    cmdclass["build_ext"] = BuildExtension.with_options(use_ninja=True)
    return [ext], cmdclass


ext_modules, cmdclass = extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
