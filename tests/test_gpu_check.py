"""scripts/gpu_check.py (``make gpu-check``) runs once on a borrowed GPU machine: its logic is
specified here, without a GPU -- steps that overrun are killed (never hang), a failing step
does not stop the next, the report says what was measured, what failed and which goals were
met, and the dry run exercises every step on the CPU."""
import importlib.util
import json
import pathlib
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("gpu_check", None)


def test_an_overrunning_step_is_killed_with_its_children(gc, tmp_path):
    code = "import subprocess, time; subprocess.Popen(['sleep', '300']); print('started', flush=True); time.sleep(300)"
    t = time.monotonic()
    step = gc.run_step(gc.Step("hang"), [sys.executable, "-c", code], timeout=6, env={"PATH": "/usr/bin:/bin"},
                       workdir=tmp_path)
    assert time.monotonic() - t < 60
    assert step.status == "timeout" and "killed after 6 s" in step.note
    assert "started" in pathlib.Path(step.log).read_text()


def test_failures_and_missing_programs_are_recorded_not_raised(gc, tmp_path):
    s = gc.run_step(gc.Step("fails"), [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 30, {},
                    tmp_path)
    assert s.status == "failed" and s.note == "exit status 3"
    s = gc.run_step(gc.Step("absent"), [str(tmp_path / "no-such-program")], 30, {}, tmp_path)
    assert s.status == "failed" and "could not start" in s.note
    s = gc.run_step(gc.Step("late"), [sys.executable, "-c", "pass"], 2, {}, tmp_path)
    assert s.status == "skipped" and "budget" in s.note
    assert gc.capture([str(tmp_path / "nothing")]).startswith("(")


def test_junit_counts(gc, tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.gpu.test_a" name="ok"/>'
        '<testcase classname="tests.gpu.test_a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.gpu.test_b" name="err"><error message="y"/></testcase>'
        '<testcase classname="tests.gpu.test_b" name="skip"><skipped message="z"/></testcase>'
        '</testsuite></testsuites>')
    c = gc.junit_counts(xml)
    assert (c["passed"], c["failed"], c["errors"], c["skipped"]) == (1, 1, 1, 1)
    assert c["failures"] == ["tests.gpu.test_a::bad", "tests.gpu.test_b::err"]
    assert gc.junit_counts(tmp_path / "missing.xml") == {}


def test_sanitizer_summary(gc, tmp_path):
    log = tmp_path / "m.log"
    log.write_text("ok   topb\n========= ERROR SUMMARY: 2 errors\n")
    assert gc.sanitizer_summary(str(log)) == "ERROR SUMMARY: 2 errors"
    assert gc.sanitizer_summary(str(tmp_path / "none.log")) == ""


def _bench(name, ours, base, goal_met=None, **extra):
    return {"name": name, "metric": "seconds", "ours": ours, "baseline": base, "baseline_name": "the baseline",
            "unit": "s", "speedup_vs_baseline": base / ours, "goal": None, "goal_met": goal_met, **extra}


def test_goals_are_judged_from_the_records(gc):
    benches = {
        "kcenter": {"records": [_bench("kcenter fp32 1000000x512 b=1000", 0.8, 3.0, True, ms_per_pick=0.8),
                                _bench("kcenter bf16 1000000x512 b=1000", 0.5, 2.0)]},
        "pool_scoring": {"records": [_bench("pool scoring fp32 n=50000", 2.0, 12.0, False),
                                     _bench("pool scoring bf16 n=50000", 1.0, 12.0, True)]},
    }
    goals = gc.judge_goals(benches)
    assert goals[0]["met"] is True and goals[0]["measured"].startswith("0.800 s")
    assert goals[1]["met"] is True and goals[1]["measured"].startswith("12.0x (pool scoring bf16")
    goals = gc.judge_goals({})
    assert [g["measured"] for g in goals] == ["not measured", "not measured"]
    assert all(g["met"] is None for g in goals)


def test_report_shows_steps_ratios_failures_and_goals(gc, tmp_path):
    log = tmp_path / "bench.log"
    log.write_text("Traceback ...\nRuntimeError: CUDA error in phase 'picks'\n")
    steps = [gc.Step("environment", "ok"), gc.Step("build", "ok", 100.0, "backend cpp+cuda"),
             gc.Step("sanitize-memcheck", "failed", 30.0, "exit status 99", data={"summary": "ERROR SUMMARY: 1 error"}),
             gc.Step("gpu-tests", "ok", 90.0, "", data={"passed": 40, "failed": 1, "errors": 0, "skipped": 2,
                                                       "failures": ["tests.gpu.test_x::test_y"]}),
             gc.Step("bench-kcenter", "timeout", 150.0, "killed after 150 s", log=str(log))]
    benches = {"kcenter": {"records": [_bench("kcenter fp32 1000000x512 b=1000", 1.5, 3.0, False, ms_per_pick=1.5)],
                           "errors": [{"where": "bf16", "traceback": "..."}]}}
    info = {"date": "2026-01-01-0000", "gpu": "name, memory.total\nNVIDIA H200, 143771 MiB", "torch": "2.13.0",
            "torch_cuda": "12.8", "elapsed": 400.0, "budget": 470}
    path = tmp_path / "gpu-x.md"
    gc.write_report(path, info, steps, benches, dry_run=False)
    text = path.read_text()
    assert "NVIDIA H200" in text and "DRY RUN" not in text
    assert "| k-center 1M x 512 fp32, b = 1000: <= 1 s on an H200 | 1.500 s (1.500 ms/pick) | **NO** |" in text
    assert "| pool scoring (CIFAR-sized): >= 10x the reference loop | not measured | not judged |" in text
    assert "| bench-kcenter | timeout | 150.0 | killed after 150 s |" in text
    assert "| kcenter fp32 1000000x512 b=1000 | 1.500 s | 3.000 s | the baseline | 2.00x |" in text
    assert "kcenter: error in bf16" in text
    assert "| topb | not measured |" in text
    assert "40 passed, 1 failed" in text and "FAILED tests.gpu.test_x::test_y" in text
    assert "sanitize-memcheck: failed; ERROR SUMMARY: 1 error" in text
    assert "CUDA error in phase 'picks'" in text  # the failed step's log tail
    raw = json.loads(path.with_suffix(".json").read_text())
    assert raw["goals"][0]["met"] is False and raw["steps"][4]["status"] == "timeout"


@pytest.mark.slow
def test_dry_run_exercises_every_step_and_writes_the_report(tmp_path):
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--out",
                          str(tmp_path / "results"), "--work", str(tmp_path / "work"), "--budget", "900"],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout + out.stderr
    reports = list((tmp_path / "results").glob("gpu-*-dryrun.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "DRY RUN" in text
    for step in ("build", "sanitize-memcheck", "sanitize-racecheck", "gpu-tests", "bench-kcenter", "bench-topb",
                 "bench-score_ops", "bench-pool_scoring"):
        assert f"| {step} | ok |" in text, step
    raw = json.loads(reports[0].with_suffix(".json").read_text())
    assert {"kcenter", "topb", "score_ops", "pool_scoring"} <= set(raw["benchmarks"])
    assert all(b["records"] and not b["errors"] for b in raw["benchmarks"].values())
    assert "0 failure(s)" in (tmp_path / "work" / "sanitize-memcheck.log").read_text()
