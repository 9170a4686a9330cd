"""Builds the optional C++/CUDA extension ``tavaal._C`` from ``csrc/``.

Metadata lives in pyproject.toml. Install with ``pip install --no-build-isolation -e .`` so the
extension is compiled against the torch that is already installed. The CUDA sources are compiled
only when the installed torch has CUDA (``torch.version.cuda``) and ``TAVAAL_NO_CUDA`` is unset;
otherwise a CPU-only extension is built. ``TAVAAL_NO_EXT=1`` skips the extension entirely
(``tavaal.ops`` then falls back to the pure-torch reference with one warning).
"""
import glob
import os
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def extensions():
    if os.environ.get("TAVAAL_NO_EXT"):
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        print("tavaal: torch is not installed; building without the C++ extension", file=sys.stderr)
        return [], {}

    cpp = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    if not cpp:
        return [], {}
    cu = sorted(glob.glob("csrc/cuda/*.cu") + glob.glob("csrc/cuda/*.cpp"))
    with_cuda = torch.version.cuda is not None and not os.environ.get("TAVAAL_NO_CUDA") and bool(cu)

    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    cxx_flags = ["-O3", "-std=c++20", "-DAT_PARALLEL_OPENMP=1", *openmp]
    if os.environ.get("TAVAAL_NATIVE", "1") == "1":
        cxx_flags.append("-march=native")
    define_macros = [("TAVAAL_PYTHON_MODULE", "1")] + ([("TAVAAL_WITH_CUDA", "1")] if with_cuda else [])
    kwargs = dict(
        name="tavaal._C",
        sources=cpp + (cu if with_cuda else []),
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=define_macros,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-std=c++17"]},
        extra_link_args=openmp,
    )
    ext = CUDAExtension(**kwargs) if with_cuda else CppExtension(**kwargs)
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
