"""The device check of the tavaal ops, for one short lease of a bare GPU machine:
``python3 scripts/gpu_check.py --out DIR`` (``make gpu-check`` calls it with --out).

Steps, in order of value, each a subprocess with its own cap (killed with its process group
when it runs over; a failing step never stops the next); the caps add up to the default
``--budget`` of 420 s (7 minutes on one H200), and no step gets more than what is left:

==================  ===  ==================================================================
environment          20  versions (Python, torch, CUDA, nvcc), the GPU, tools, optional
                         packages (missing ones are reported, never failed)
build               115  JIT build of the ops from this checkout for the visible GPU only
                         (``TAVAAL_JIT=1``, ``TORCH_CUDA_ARCH_LIST`` = its capability)
sanitize-cases       20  the tiny cases of every op (scripts/gpu_sanitize_cases.py), plainly
sanitize-memcheck    45  the same cases under ``compute-sanitizer --tool memcheck``
gpu-tests            65  ``pytest -m gpu`` on tests/gpu and the CUDA parity tests of
                         tests/test_ops_*.py only (nothing that imports optional packages)
bench-kcenter        40  k-center 1M x 512, b = 1000: ms per pick against the HBM floor
bench-topb           20  top-b over 1e8 scores
bench-score_ops      30  fused scoring of 1e7 latents
bench-pool_scoring   30  pool scoring, CIFAR-sized, against the reference loop
sanitize-racecheck   35  the cases under ``compute-sanitizer --tool racecheck``
==================  ===  ==================================================================

Everything lands under DIR as it happens: ``DIR/steps/<step>.log`` (the step's output) and
``DIR/steps/<step>.json`` (its status, time, note and data) when each step ends, the tests'
outcomes line by line (``DIR/steps/gpu-tests.jsonl``, scripts/pytest_stream.py), each
benchmark's records as they are measured (``DIR/steps/bench-<name>.data.json``), and the
report ``DIR/gpu-<date>.md`` (+ ``.json``) rewritten after every step -- a lease cut short
keeps whatever finished.

Needs only what the bare machine has: this file uses the standard library alone; the steps
need torch, nvcc, ninja, pytest, hypothesis, numpy (the benchmarks: Pillow, scikit-learn);
``make`` and the internet are not used. ``--dry-run`` runs the same steps with CPU stand-ins
(``--device cpu`` at a tiny scale, the sanitizer steps run the cases without the tool, the GPU
tests are collected and skipped; caps and budget x 4): the suite tests the script's plumbing
that way.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
# step -> cap in seconds, in the order the steps run
CAPS = {
    "environment": 20.0,
    "build": 115.0,
    "sanitize-cases": 20.0,
    "sanitize-memcheck": 45.0,
    "gpu-tests": 65.0,
    "bench-kcenter": 40.0,
    "bench-topb": 20.0,
    "bench-score_ops": 30.0,
    "bench-pool_scoring": 30.0,
    "sanitize-racecheck": 35.0,
}
DRY_RUN_CAP_FACTOR = 4.0  # the dry run's CPU stand-ins, on a CPU machine shared with other work
BENCHMARKS = ["kcenter", "topb", "score_ops", "pool_scoring"]
# the GPU tests: tests/gpu and the CUDA parity tests next to the CPU specifications, the most
# telling first (the fused scoring's bf16 path, k-means++ parity); pytest collects a file once
TEST_PATHS = ["tests/gpu/test_gpu_score.py", "tests/test_ops_kmeanspp.py", "tests/gpu", "tests/test_ops_topb.py",
              "tests/test_ops_kcenter.py", "tests/test_ops_score.py"]
OPTIONAL_PACKAGES = ["numpy", "pytest", "hypothesis", "sklearn", "PIL", "onnx", "onnxruntime", "torchvision"]
TOOLS = ["nvcc", "ninja", "cmake", "compute-sanitizer", "nvidia-smi", "make"]
GOALS = [
    # (text, benchmark, record-name prefix, how to judge)
    ("k-center 1M x 512 fp32, b = 1000: <= 1 s on an H200", "kcenter", "kcenter fp32 ", "seconds<=1"),
    ("pool scoring (CIFAR-sized): >= 10x the reference loop", "pool_scoring", "pool scoring ", "speedup>=10"),
    ("a training cycle: >= 2x the fp32 loop", None, None, "not in this check"),
]


@dataclass
class Step:
    name: str
    status: str = "not run"  # ok | failed | timeout | skipped | not run
    seconds: float = 0.0
    note: str = ""
    log: str = ""  # path of the step's log file
    data: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- running
def save_step(step: Step, steps_dir: Path) -> None:
    """The step's result file, ``steps_dir/<name>.json``."""
    steps_dir.mkdir(parents=True, exist_ok=True)
    (steps_dir / f"{step.name}.json").write_text(json.dumps(asdict(step), indent=1, default=str))


def run_step(step: Step, cmd: List[str], timeout: float, env: Dict[str, str], workdir: Path,
             ok_codes=(0,)) -> Step:
    """Run cmd with a hard timeout (its process group killed); output to ``workdir/<name>.log``
    as it comes. Never raises: a program that cannot start, a non-zero exit and a timeout
    are recorded in ``step.status`` / ``step.note``."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{step.name}.log"
    step.log = str(log)
    if timeout < 5:
        step.status, step.note = "skipped", "time budget exhausted"
        log.write_text("(skipped: time budget exhausted)\n")
        return step
    t0 = time.monotonic()
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                    start_new_session=True)
        except OSError as exc:
            step.status, step.note = "failed", f"could not start: {exc}"
            return step
        try:
            rc = proc.wait(timeout=timeout)
            step.status = "ok" if rc in ok_codes else "failed"
            if rc not in ok_codes:
                step.note = f"exit status {rc}"
        except subprocess.TimeoutExpired:
            _kill(proc)
            step.status, step.note = "timeout", f"killed after {timeout:.0f} s"
    step.seconds = time.monotonic() - t0
    return step


def _kill(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def capture(cmd: List[str], timeout: float = 30) -> str:
    """stdout of a quick command, or a note in parentheses saying why there is none (never raises)."""
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        return f"({cmd[0]} not found)"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        what = "timed out" if isinstance(exc, subprocess.TimeoutExpired) else f"failed: {exc}"
        return f"({Path(cmd[0]).name} {what})"


def tail(path: str, n: int = 40) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def stream_counts(path: Path) -> dict:
    """passed / failed / errors / skipped and the failed test ids from the JSON lines of
    scripts/pytest_stream.py ({} when the file is missing); a torn last line is ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
    key = {"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped"}
    for ln in lines:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        k = key.get(rec.get("outcome"))
        if k is None:
            continue
        counts[k] += 1
        if k in ("failed", "errors"):
            counts["failures"].append(rec.get("nodeid", "?"))
    return counts


def sanitizer_summary(log: str) -> str:
    """compute-sanitizer's closing line ("ERROR SUMMARY: n errors" / "RACECHECK SUMMARY ...")."""
    try:
        lines = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines() if "SUMMARY" in ln]
    except OSError:
        return ""
    return lines[-1].lstrip("= ").strip() if lines else ""


def sanitizer_filter(tool: str) -> List[str]:
    """Only the tavaal kernels are instrumented (fast; torch's own kernels are not ours to
    check): the option is --kernel-name in current compute-sanitizer, --kernel-regex before."""
    help_text = capture([tool, "--help"], timeout=60)
    for opt in ("--kernel-name", "--kernel-regex"):
        if opt + " " in help_text or opt + "\n" in help_text or opt + "=" in help_text:
            return [opt, "kns=tavaal"]
    return []


def find_tool(name: str) -> Optional[str]:
    """``name`` on PATH, else in $CUDA_HOME/bin or /usr/local/cuda/bin."""
    found = shutil.which(name)
    if found:
        return found
    for base in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"):
        p = Path(base) / "bin" / name
        if base and p.exists():
            return str(p)
    return None


# --------------------------------------------------------------------------- environment
PROBE = r"""
import importlib.util, json, platform, sys
info = {"python": platform.python_version()}
try:
    import torch
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu_name=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                    gpu_memory_gib=round(p.total_memory / 2**30, 1), gpus=torch.cuda.device_count())
except Exception as exc:
    info["torch"] = f"(torch not importable: {type(exc).__name__}: {exc})"
    info["cuda_available"] = False
info["missing_packages"] = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]
print(json.dumps(info))
"""


def environment(py: str, timeout: float) -> dict:
    """Versions, the GPU, tools and optional packages (never raises)."""
    info: dict = {}
    out = capture([py, "-c", PROBE, *OPTIONAL_PACKAGES], timeout=timeout)
    try:
        info.update(json.loads(out.splitlines()[-1]))
    except (ValueError, IndexError):
        info["probe_error"] = f"the torch probe failed: {out[-300:]}"
        info["cuda_available"] = False
    info["nvidia_smi"] = capture(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm,"
                                  "clocks.max.mem,power.limit", "--format=csv"])
    info["tools"] = {t: find_tool(t) for t in TOOLS}
    nvcc = info["tools"].get("nvcc")
    info["nvcc"] = capture([nvcc, "--version"]).splitlines()[-1] if nvcc else "(not found)"
    try:
        model = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
    except OSError:
        model = []
    info["cpu"] = f"{model[0] if model else '?'}, {os.cpu_count()} cores"
    info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


# --------------------------------------------------------------------------- report
def judge_goals(benches: Dict[str, dict]) -> List[dict]:
    out = []
    for text, bench, prefix, rule in GOALS:
        if bench is None:
            out.append({"goal": text, "measured": rule, "met": None})
            continue
        recs = [r for r in benches.get(bench, {}).get("records", []) if r.get("name", "").startswith(prefix)]
        if not recs:
            out.append({"goal": text, "measured": "not measured", "met": None})
            continue
        if rule == "seconds<=1":
            r = recs[0]
            measured = f"{r['ours']:.3f} s ({r.get('ms_per_pick', float('nan')):.3f} ms/pick)"
            if r.get("hbm_floor_ms_per_pick") is not None:
                measured += f", HBM floor {r['hbm_floor_ms_per_pick']:.3f} ms/pick"
            met = r.get("goal_met")
        else:
            best = max(recs, key=lambda r: r.get("speedup_vs_baseline") or 0)
            sp = best.get("speedup_vs_baseline")
            measured = f"{sp:.1f}x ({best['name']})" if sp is not None else "no ratio"
            met = best.get("goal_met")
        out.append({"goal": text, "measured": measured, "met": met})
    return out


def _fmt(v, unit="s") -> str:
    if v is None:
        return "-"
    if unit == "bytes":
        return f"{v / 2**20:.1f} MiB"
    if isinstance(v, float):
        return f"{v * 1e3:.2f} ms" if unit == "s" and v < 1 else f"{v:.3f} {unit}"
    return str(v)


def write_report(path: Path, info: dict, steps: List[Step], benches: Dict[str, dict], dry_run: bool) -> None:
    """The markdown report (and the raw JSON next to it); rewritten after every step."""
    L = [f"# GPU check of the tavaal ops -- {info.get('date', '?')}", ""]
    if dry_run:
        L += ["**DRY RUN** (no GPU: CPU stand-ins at a tiny scale; the numbers are meaningless, only the "
              "script's plumbing is exercised).", ""]
    gpu = info.get("gpu_name")
    gpu_line = (f"{gpu} (sm {info.get('capability')}, {info.get('sms')} SMs, {info.get('gpu_memory_gib')} GiB)"
                if gpu else "(no GPU visible to torch)")
    tools = info.get("tools", {})
    L += ["## Machine", "", f"* GPU: {gpu_line}", "", "```", info.get("nvidia_smi", ""), "```", "",
          f"* Python {info.get('python', '?')}; torch {info.get('torch', '?')}, CUDA {info.get('torch_cuda', '?')}; "
          f"nvcc: {info.get('nvcc', '?')}",
          "* tools: " + ", ".join(f"{t} {'yes' if p else 'MISSING'}" for t, p in tools.items()),
          "* optional packages missing: " + (", ".join(info.get("missing_packages", [])) or "none"),
          *([f"* **{info['probe_error']}**"] if info.get("probe_error") else []),
          f"* host: {info.get('cpu', '?')}; load average {info.get('load', '?')}",
          f"* command: `{info.get('command', '')}`; budget {info.get('budget', '?')} s, "
          f"elapsed {info.get('elapsed', 0):.0f} s", ""]
    L += ["## Goals (issue 17)", "", "| goal | measured | met |", "|---|---|---|"]
    for g in judge_goals(benches):
        met = "not judged" if g["met"] is None else ("**yes**" if g["met"] else "**NO**")
        L.append(f"| {g['goal']} | {g['measured']} | {met} |")
    caps = info.get("caps") or CAPS
    L += ["", "## Steps", "", "| step | status | seconds | cap | note |", "|---|---|---|---|---|"]
    for s in steps:
        L.append(f"| {s.name} | {s.status} | {s.seconds:.1f} | {caps.get(s.name, 0):.0f} | {s.note} |")
    L += ["", "## Benchmarks (same run, side by side; speed-up = baseline time / ours)", "",
          "| benchmark | ours | baseline | baseline is | speed-up | details |", "|---|---|---|---|---|---|"]
    skip = {"name", "metric", "ours", "baseline", "baseline_name", "unit", "speedup_vs_baseline", "goal", "goal_met"}
    for name in BENCHMARKS:
        data = benches.get(name)
        if not data:
            L.append(f"| {name} | not measured | | | | |")
            continue
        for r in data.get("records", []):
            sp = r.get("speedup_vs_baseline")
            det = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                            if k not in skip and v is not None)
            L.append(f"| {r['name']} | {_fmt(r['ours'], r.get('unit', 's'))} | {_fmt(r.get('baseline'), r.get('unit', 's'))}"
                     f" | {r.get('baseline_name', '')} | {'-' if sp is None else f'{sp:.2f}x'} | {det} |")
        for e in data.get("errors", []):
            L.append(f"| {name}: error in {e['where']} | | | | | see the JSON |")
    L += [""]
    tests = next((s for s in steps if s.name == "gpu-tests"), None)
    if tests is not None and tests.data:
        c = tests.data
        L += ["## GPU tests", "", f"{c.get('passed', 0)} passed, {c.get('failed', 0)} failed, "
              f"{c.get('errors', 0)} errors, {c.get('skipped', 0)} skipped", ""]
        L += [f"* FAILED {t}" for t in c.get("failures", [])] + [""]
    san = [s for s in steps if s.name.startswith("sanitize")]
    if san:
        L += ["## compute-sanitizer", ""] + [f"* {s.name}: {s.status}; {s.data.get('summary') or s.note}" for s in san]
        L += [""]
    bad = [s for s in steps if s.status in ("failed", "timeout") and s.log]
    if bad:
        L += ["## Log tails of the failed steps", ""]
        for s in bad:
            L += [f"### {s.name}", "", "```", tail(s.log), "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(L) + "\n")
    raw = {"info": info, "steps": [asdict(s) for s in steps], "benchmarks": benches, "goals": judge_goals(benches)}
    path.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))


# --------------------------------------------------------------------------- main
def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory for the report, the logs and the results")
    ap.add_argument("--dry-run", action="store_true", help="no GPU: the same steps with CPU stand-ins, tiny sizes")
    ap.add_argument("--budget", type=float, default=None,
                    help=f"seconds for the whole run (default {sum(CAPS.values()):.0f}: the caps' sum; x "
                         f"{DRY_RUN_CAP_FACTOR:.0f} with --dry-run)")
    ap.add_argument("--python", default=sys.executable, help="the Python with the (CUDA) torch to check")
    ap.add_argument("--skip", default="", help="comma-separated steps to skip (names as in the table above)")
    args = ap.parse_args(argv)
    factor = DRY_RUN_CAP_FACTOR if args.dry_run else 1.0
    caps = {name: cap * factor for name, cap in CAPS.items()}
    budget = args.budget if args.budget is not None else sum(caps.values())
    start = time.monotonic()
    deadline = start + budget
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(CAPS)
    if unknown:
        ap.error(f"unknown step(s) in --skip: {', '.join(sorted(unknown))} (steps: {', '.join(CAPS)})")
    out: Path = args.out
    steps_dir = out / "steps"
    steps_dir.mkdir(parents=True, exist_ok=True)
    date = _dt.datetime.now().strftime("%Y-%m-%d")
    report = out / f"gpu-{date}{'-dryrun' if args.dry_run else ''}.md"
    scratch = tempfile.TemporaryDirectory(prefix="tavaal-gpu-check-")
    py = args.python
    dev = "cpu" if args.dry_run else "cuda"

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "scripts"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TAVAAL_EXT_CACHE", str(Path(scratch.name) / "ext-cache"))  # the build stays out of DIR
    env.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    if not args.dry_run:
        env["TAVAAL_JIT"] = "1"  # this checkout's sources, never a stale tavaal._C
        env["TAVAAL_REQUIRE_EXT"] = "1"  # a broken build fails the steps instead of falling back

    info: dict = {"date": date, "budget": budget, "caps": caps,
                  "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))}
    steps: List[Step] = []
    benches: Dict[str, dict] = {}

    def left(name: str) -> float:
        return max(0.0, min(caps[name], deadline - time.monotonic() - 5))  # 5 s kept for the report

    def done(step: Step) -> None:
        steps.append(step)
        save_step(step, steps_dir)
        info["elapsed"] = time.monotonic() - start
        write_report(report, info, steps, benches, args.dry_run)

    # 1. environment
    t0 = time.monotonic()
    info.update(environment(py, left("environment")))
    st = Step("environment", status="ok", seconds=time.monotonic() - t0, data=dict(info))
    missing = info.get("missing_packages") or []
    st.note = (info.get("gpu_name") or "no GPU") + (f"; optional packages missing: {', '.join(missing)}" if missing else "")
    if info.get("probe_error"):
        st.status, st.note = "failed", info["probe_error"]
    elif not args.dry_run and not info.get("cuda_available"):
        st.status = "failed"
        st.note = f"torch {info.get('torch')} sees no GPU (CUDA {info.get('torch_cuda')})"
    if info.get("capability") and not args.dry_run:
        env.setdefault("TORCH_CUDA_ARCH_LIST", info["capability"])  # that GPU only
    done(st)

    # 2. build
    st = Step("build")
    if "build" in skip:
        st.status, st.note = "skipped", "--skip"
    else:
        st = run_step(st, [py, "-m", "tavaal.ops.build"], left("build"), env, steps_dir)
        text = Path(st.log).read_text(errors="replace") if st.log and Path(st.log).exists() else ""
        backend = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("backend:")]
        st.data["backend"] = backend[-1] if backend else None
        st.data["arch_list"] = env.get("TORCH_CUDA_ARCH_LIST")
        if st.status == "ok" and not args.dry_run and st.data["backend"] != "cpp+cuda":
            st.status, st.note = "failed", f"backend is {st.data['backend']}, not cpp+cuda"
        elif st.status == "ok":
            st.note = f"backend {st.data['backend']}"
    done(st)

    # 3-4. the sanitizer cases, plainly, then under memcheck
    tool = None if args.dry_run else find_tool("compute-sanitizer")
    cases = [py, str(ROOT / "scripts" / "gpu_sanitize_cases.py"), "--device", dev]

    def sanitize(name: str, sanitizer: Optional[str]) -> Step:
        st = Step(name)
        if name in skip:
            st.status, st.note = "skipped", "--skip"
        elif sanitizer is None:
            st = run_step(st, cases, left(name), env, steps_dir)
            if name != "sanitize-cases":  # the cases still run: the workload itself is checked
                why = "dry run" if args.dry_run else "compute-sanitizer not found"
                st.note = f"{why}: cases run without it" + (f"; {st.note}" if st.note else "")
        else:
            cmd = [tool, "--tool", sanitizer, "--error-exitcode", "99", "--print-limit", "20",
                   *sanitizer_filter(tool), *cases]
            st = run_step(st, cmd, left(name), env, steps_dir)
            st.data["summary"] = sanitizer_summary(st.log)
        return st

    done(sanitize("sanitize-cases", None))
    done(sanitize("sanitize-memcheck", tool and "memcheck"))

    # 5. the GPU tests, counted as they finish
    st = Step("gpu-tests")
    if "gpu-tests" in skip:
        st.status, st.note = "skipped", "--skip"
    else:
        stream = steps_dir / "gpu-tests.jsonl"
        stream.unlink(missing_ok=True)
        test_env = dict(env, TAVAAL_TEST_STREAM=str(stream))
        st = run_step(st, [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-p", "pytest_stream",
                           *TEST_PATHS], left("gpu-tests"), test_env, steps_dir)
        st.data = stream_counts(stream)
        if st.data:
            st.note = (f"{st.data['passed']} passed, {st.data['failed']} failed, {st.data['errors']} errors, "
                       f"{st.data['skipped']} skipped") + (f"; {st.note}" if st.note else "")
    done(st)

    # 6. the GPU benchmarks
    for bench in BENCHMARKS:
        name = f"bench-{bench}"
        st = Step(name)
        if name in skip:
            st.status, st.note = "skipped", "--skip"
        else:
            data = steps_dir / f"{name}.data.json"
            cmd = [py, str(ROOT / "benchmarks" / "gpu" / f"bench_{bench}.py"), "--out", str(data), "--device", dev]
            if args.dry_run:
                cmd += ["--scale", "0.001"]
            st = run_step(st, cmd, left(name), env, steps_dir)
            try:  # whatever it wrote, even when it failed or was killed
                benches[bench] = json.loads(data.read_text())
                if benches[bench].get("errors"):
                    st.note = (st.note + "; " if st.note else "") + f"{len(benches[bench]['errors'])} error(s) in the JSON"
                    if st.status == "ok":
                        st.status = "failed"
            except (OSError, ValueError):
                pass
        done(st)

    # 7. racecheck, last
    done(sanitize("sanitize-racecheck", tool and "racecheck"))

    scratch.cleanup()
    print(f"report: {report}  (logs and results: {steps_dir})")
    for s in steps:
        print(f"  {s.name:20s} {s.status:8s} {s.seconds:6.1f} s  {s.note}")
    return 0 if all(s.status in ("ok", "skipped") for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
