"""One-command GPU check of the tavaal ops (``make gpu-check``): build, sanitize, test, benchmark,
report -- in under 8 minutes on one H200, on a machine that may be lent only once.

Steps (each a subprocess with its own timeout, killed with its process group when it runs
over; a failing step never stops the next; the report is rewritten after every step, so a
run cut short still leaves what it measured):

1. environment: nvidia-smi, torch / CUDA versions, nvcc, compute-sanitizer, CPU;
2. build: the CUDA extension against this machine's CUDA torch (``python -m tavaal.ops.build``:
   a JIT build into the work directory's cache, architectures of the visible GPU);
3. every GPU test: ``pytest -m gpu tests`` (tests/gpu/ and the ``gpu`` tests elsewhere);
4. the GPU benchmarks (benchmarks/gpu/bench_*.py): k-center 1M x 512, top-b 1e8, fused
   scoring 1e7 latents, pool scoring CIFAR-sized -- each against its baseline in the same run;
5. compute-sanitizer memcheck and racecheck on tiny cases of every op
   (scripts/gpu_sanitize_cases.py); without compute-sanitizer the cases run plainly, and the
   report says so;
6. the report: ``benchmarks/results/gpu-<date>.md`` (+ ``.json`` with every number): the
   machine, each step's status and time, the numbers as ratios to their baselines, and the
   issue-9 goals (k-center 1M x 512 fp32 b = 1000 <= 1 s; pool scoring >= 10x the reference
   loop) marked met / not met / not measured.

``--dry-run`` runs the same steps without a GPU (build check, the tiny cases and benchmarks on
the CPU at a tiny scale, the GPU tests collected and skipped, compute-sanitizer skipped when
absent) and writes the report as well: the script's own logic is tested on CPU machines.
``--budget`` (seconds, default 470) bounds the whole run: steps get at most what is left.
Only the standard library is needed to run this file (torch is queried in subprocesses).
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
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ["kcenter", "topb", "score_ops", "pool_scoring"]
SANITIZER_CAP = {"memcheck": 120.0, "racecheck": 90.0}  # seconds; each GPU benchmark gets 100, the tests 200
GOALS = [
    # (key, text, benchmark, record-name prefix, how to judge)
    ("kcenter", "k-center 1M x 512 fp32, b = 1000: <= 1 s on an H200", "kcenter", "kcenter fp32 ", "seconds<=1"),
    ("pool", "pool scoring (CIFAR-sized): >= 10x the reference loop", "pool_scoring", "pool scoring ", "speedup>=10"),
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
def run_step(step: Step, cmd: List[str], timeout: float, env: Dict[str, str], workdir: Path,
             ok_codes=(0,)) -> Step:
    """Run cmd with a hard timeout (process group killed); output goes to a log file."""
    log = workdir / f"{step.name}.log"
    step.log = str(log)
    if timeout < 5:
        step.status, step.note = "skipped", "time budget exhausted"
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
    """stdout of a quick command, or a note why there is none (never raises)."""
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        return f"({cmd[0]} not found)"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({' '.join(cmd)} failed: {exc})"


def tail(path: str, n: int = 40) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def junit_counts(path: Path) -> dict:
    """passed / failed / errors / skipped and the failed test ids from a pytest junit XML."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
    for tc in root.iter("testcase"):
        tid = f"{tc.get('classname', '')}::{tc.get('name', '')}"
        if tc.find("failure") is not None:
            counts["failed"] += 1
            counts["failures"].append(tid)
        elif tc.find("error") is not None:
            counts["errors"] += 1
            counts["failures"].append(tid)
        elif tc.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def sanitizer_summary(log: str) -> str:
    """compute-sanitizer's closing line ("ERROR SUMMARY: n errors" / "RACECHECK SUMMARY ...")."""
    lines = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines() if "SUMMARY" in ln] if log and \
        Path(log).exists() else []
    return lines[-1].lstrip("= ").strip() if lines else ""


# --------------------------------------------------------------------------- report
def judge_goals(benches: Dict[str, dict]) -> List[dict]:
    out = []
    for key, text, bench, prefix, rule in GOALS:
        recs = [r for r in benches.get(bench, {}).get("records", []) if r.get("name", "").startswith(prefix)]
        if not recs:
            out.append({"goal": text, "measured": "not measured", "met": None})
            continue
        if rule == "seconds<=1":
            r = recs[0]
            measured = f"{r['ours']:.3f} s ({r.get('ms_per_pick', float('nan')):.3f} ms/pick)"
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
    L = [f"# GPU check of the tavaal ops -- {info['date']}", ""]
    if dry_run:
        L += ["**DRY RUN** (no GPU: CPU stand-ins at a tiny scale; the numbers are meaningless, only the "
              "script's plumbing is exercised).", ""]
    L += ["## Machine", "", "```", info.get("gpu", "(no GPU)"), "```", "",
          f"* torch {info.get('torch', '?')}, CUDA {info.get('torch_cuda', '?')}; nvcc: {info.get('nvcc', '?')}",
          f"* compute-sanitizer: {info.get('sanitizer', '?')}",
          f"* host: {info.get('cpu', '?')}; load average {info.get('load', '?')}",
          f"* command: `{info.get('command', '')}`; budget {info.get('budget', '?')} s, "
          f"elapsed {info.get('elapsed', 0):.0f} s", ""]
    L += ["## Goals (issue 9)", "", "| goal | measured | met |", "|---|---|---|"]
    for g in judge_goals(benches):
        met = "not judged" if g["met"] is None else ("**yes**" if g["met"] else "**NO**")
        L.append(f"| {g['goal']} | {g['measured']} | {met} |")
    L += ["", "## Steps", "", "| step | status | seconds | note |", "|---|---|---|---|"]
    for s in steps:
        L.append(f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.note} |")
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
def environment(py: str) -> dict:
    probe = ("import torch, json; print(json.dumps({'torch': torch.__version__, 'torch_cuda': torch.version.cuda, "
             "'cuda_available': torch.cuda.is_available()}))")
    info = {}
    try:
        info.update(json.loads(capture([py, "-c", probe], timeout=120).splitlines()[-1]))
    except (ValueError, IndexError):
        info["torch"] = "(torch not importable)"
    info["gpu"] = capture(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm,"
                           "clocks.max.mem,power.limit", "--format=csv"])
    info["nvcc"] = capture(["nvcc", "--version"]).splitlines()[-1] if shutil.which("nvcc") else "(not found)"
    info["sanitizer"] = shutil.which("compute-sanitizer") or _cuda_home_tool("compute-sanitizer") or "(not found)"
    lscpu = capture(["lscpu"])
    model = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")]
    info["cpu"] = f"{model[0] if model else '?'}, {os.cpu_count()} cores"
    info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def sanitizer_filter(tool: str) -> List[str]:
    """Only the tavaal kernels are instrumented (fast; torch's own kernels are not ours to
    check): the option is --kernel-name in current compute-sanitizer, --kernel-regex before."""
    help_text = capture([tool, "--help"], timeout=60)
    for opt in ("--kernel-name", "--kernel-regex"):
        if opt + " " in help_text or opt + "\n" in help_text or opt + "=" in help_text:
            return [opt, "kns=tavaal"]
    return []


def _cuda_home_tool(name: str) -> Optional[str]:
    for base in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"):
        p = Path(base) / "bin" / name
        if base and p.exists():
            return str(p)
    return None


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="no GPU: exercise every step on the CPU, tiny sizes")
    ap.add_argument("--budget", type=float, default=470.0, help="seconds for the whole run (default 470)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="report directory")
    ap.add_argument("--python", default=sys.executable, help="the Python with the (CUDA) torch to check")
    ap.add_argument("--work", type=Path, default=None,
                    help="logs and intermediate JSON (default build/gpu-check-<date>; the build cache goes to a "
                         "temporary directory unless TAVAAL_EXT_CACHE is set)")
    ap.add_argument("--skip", default="", help="comma-separated steps to skip (build,sanitize,tests,bench)")
    args = ap.parse_args(argv)
    start = time.monotonic()
    deadline = start + args.budget
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    date = _dt.datetime.now().strftime("%Y-%m-%d-%H%M")
    report = args.out / f"gpu-{date}{'-dryrun' if args.dry_run else ''}.md"
    work = args.work or ROOT / "build" / f"gpu-check-{date}"
    work.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="tavaal-gpu-check-")
    py = args.python
    dev = "cpu" if args.dry_run else "cuda"

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TAVAAL_EXT_CACHE", str(Path(scratch.name) / "ext-cache"))
    env.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    if not args.dry_run:
        env["TAVAAL_REQUIRE_EXT"] = "1"  # a broken build must fail the steps, not fall back silently

    info = environment(py)
    info.update(date=date, budget=args.budget, command=" ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])))
    steps: List[Step] = []
    benches: Dict[str, dict] = {}

    def left(cap: float) -> float:
        return max(0.0, min(cap, deadline - time.monotonic() - 15))  # 15 s kept for the report

    def flush():
        info["elapsed"] = time.monotonic() - start
        write_report(report, info, steps, benches, args.dry_run)

    env_step = Step("environment", status="ok", note=info.get("gpu", "").splitlines()[-1][:80] if info.get("gpu") else "")
    if not args.dry_run and not info.get("cuda_available"):
        env_step.status, env_step.note = "failed", f"torch {info.get('torch')} sees no GPU (CUDA {info.get('torch_cuda')})"
    steps.append(env_step)
    flush()

    # 2. build
    if "build" in skip:
        steps.append(Step("build", status="skipped", note="--skip"))
    else:
        s = run_step(Step("build"), [py, "-m", "tavaal.ops.build"], left(300), env, work)
        out = Path(s.log).read_text(errors="replace") if s.log and Path(s.log).exists() else ""
        backend = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("backend:")]
        s.data["backend"] = backend[-1] if backend else None
        if s.status == "ok" and not args.dry_run and s.data["backend"] != "cpp+cuda":
            s.status, s.note = "failed", f"backend is {s.data['backend']}, not cpp+cuda"
        elif s.status == "ok":
            s.note = f"backend {s.data['backend']}"
        steps.append(s)
    flush()

    # 3. GPU tests
    st = Step("gpu-tests")
    if "tests" in skip:
        st.status, st.note = "skipped", "--skip"
    else:
        xml = work / "gpu-tests.xml"
        st = run_step(st, [py, "-m", "pytest", "-q", "-m", "gpu", "tests", "-p", "no:cacheprovider",
                           "--continue-on-collection-errors", f"--junitxml={xml}"], left(200), env, work,
                      ok_codes=(0, 5))
        st.data = junit_counts(xml)
        if st.data:
            st.note = (f"{st.data['passed']} passed, {st.data['failed']} failed, {st.data['errors']} errors, "
                       f"{st.data['skipped']} skipped") + (f"; {st.note}" if st.note else "")
    steps.append(st)
    flush()

    # 4. benchmarks
    for name in BENCHMARKS:
        st = Step(f"bench-{name}")
        if "bench" in skip:
            st.status, st.note = "skipped", "--skip"
        else:
            out = work / f"bench-{name}.json"
            cmd = [py, str(ROOT / "benchmarks" / "gpu" / f"bench_{name}.py"), "--out", str(out), "--device", dev]
            if args.dry_run:
                cmd += ["--scale", "0.001"]
            st = run_step(st, cmd, left(100), env, work)
            try:  # whatever it wrote, even when it failed or was killed
                benches[name] = json.loads(out.read_text())
                if benches[name].get("errors"):
                    st.note = (st.note + "; " if st.note else "") + f"{len(benches[name]['errors'])} error(s) in the JSON"
                    if st.status == "ok":
                        st.status = "failed"
            except (OSError, ValueError):
                pass
        steps.append(st)
        flush()

    # 5. compute-sanitizer (last: it produces no numbers; the budget goes to tests and benchmarks first)
    tool = shutil.which("compute-sanitizer") or _cuda_home_tool("compute-sanitizer")
    cases = [py, str(ROOT / "scripts" / "gpu_sanitize_cases.py"), "--device", dev]
    for name in ("memcheck", "racecheck"):
        st = Step(f"sanitize-{name}")
        if "sanitize" in skip:
            st.status, st.note = "skipped", "--skip"
        elif tool is None or args.dry_run:
            # without the tool (or a GPU) the cases still run plainly: the workload itself is checked
            st = run_step(st, cases, left(SANITIZER_CAP[name]), env, work)
            st.note = ("compute-sanitizer not found: cases run without it" if tool is None else
                       "dry run: cases run without compute-sanitizer") + (f"; {st.note}" if st.note else "")
        else:
            cmd = [tool, "--tool", name, "--error-exitcode", "99", "--print-limit", "20",
                   *sanitizer_filter(tool), *cases]
            st = run_step(st, cmd, left(SANITIZER_CAP[name]), env, work)
            st.data["summary"] = sanitizer_summary(st.log)
        steps.append(st)
        flush()

    flush()
    scratch.cleanup()
    print(f"report: {report}  (logs: {work})")
    for s in steps:
        print(f"  {s.name:22s} {s.status:8s} {s.seconds:6.1f} s  {s.note}")
    return 0 if all(s.status in ("ok", "skipped") for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
