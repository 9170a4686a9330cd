"""Shared set-up of the ops benchmarks (pytest-benchmark).

* collects ``benchmarks/bench_*.py`` (their functions are named ``test_*``);
* ``TAVAAL_BENCH_SCALE`` (default 1.0) scales the problem sizes (e.g. 0.1 for a quick run);
  the issue's targets are asserted only at full scale (``>= 1``) and unless
  ``TAVAAL_BENCH_ASSERT=0``;
* records the machine (platform, CPU model, cores, load average) in the JSON's machine_info
  and in every benchmark's extra_info;
* ``peak_rss_mb(code)`` runs code in a fresh Python process and returns its peak RSS (MB) and
  what the code printed (``resource.getrusage(...).ru_maxrss``).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

SCALE = float(os.environ.get("TAVAAL_BENCH_SCALE", "1.0"))
ASSERT_TARGETS = SCALE >= 1.0 and os.environ.get("TAVAAL_BENCH_ASSERT", "1") != "0"


def pytest_collect_file(parent, file_path):
    # files named on the command line are collected by pytest itself
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine() -> dict:
    flags = cpu_flags()
    import torch

    return {
        "platform": platform.platform(),
        "node": platform.node(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "loadavg_1_5_15": os.getloadavg(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["tavaal"] = machine()
    machine_info["tavaal"]["bench_scale"] = SCALE


@pytest.fixture
def record(benchmark):
    """record(key=value, ...) -> stored in benchmark.extra_info, with the machine and load."""

    def _record(**kv):
        benchmark.extra_info.setdefault("machine", machine())
        benchmark.extra_info["loadavg_after"] = os.getloadavg()
        benchmark.extra_info.update(kv)

    return _record


def scaled(n: int, minimum: int = 1) -> int:
    return max(minimum, int(round(n * SCALE)))


def peak_rss_mb(code: str, timeout: int = 1800) -> tuple[float, str]:
    """Run `code` in a fresh interpreter; (peak RSS in MB, its stdout)."""
    wrapper = textwrap.dedent(code) + textwrap.dedent(
        """
        import resource as _r, json as _j
        print("PEAK_RSS_MB", _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TAVAAL_FORCE_REFERENCE"}
    env["TAVAAL_QUIET_FALLBACK"] = "1"
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-4000:])
    peak = None
    for line in out.stdout.splitlines():
        if line.startswith("PEAK_RSS_MB"):
            peak = float(line.split()[1])
    return peak, out.stdout


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
