"""scripts/gpu_check.py (``python3 scripts/gpu_check.py --out DIR``) runs once on a short lease
of a bare GPU machine: its logic is specified here, without a GPU -- the steps' caps fit the
lease, steps that overrun are killed (never hang) and keep what they wrote, a failing step does
not stop the next, every step leaves its log and result file under DIR as it ends, the report
says what was measured, what failed and which goals were met, and the dry run exercises every
step on the CPU."""
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


def test_the_caps_fit_one_short_lease_in_order_of_value(gc):
    assert sum(gc.CAPS.values()) <= 7 * 60
    names = list(gc.CAPS)
    assert names[:2] == ["environment", "build"] and names[-1] == "sanitize-racecheck"
    assert names.index("sanitize-memcheck") < names.index("gpu-tests") < names.index("bench-kcenter")


def test_stream_counts(gc, tmp_path):
    stream = tmp_path / "t.jsonl"
    stream.write_text(
        '{"nodeid": "tests/gpu/test_a.py::ok", "outcome": "passed"}\n'
        '{"nodeid": "tests/gpu/test_a.py::bad", "outcome": "failed"}\n'
        '{"nodeid": "tests/gpu/test_b.py::err", "outcome": "error"}\n'
        '{"nodeid": "tests/gpu/test_b.py::skip", "outcome": "skipped"}\n'
        '{"nodeid": "tests/gpu/test_b.py::torn", "outc')  # a line cut by the kill
    c = gc.stream_counts(stream)
    assert (c["passed"], c["failed"], c["errors"], c["skipped"]) == (1, 1, 1, 1)
    assert c["failures"] == ["tests/gpu/test_a.py::bad", "tests/gpu/test_b.py::err"]
    assert gc.stream_counts(tmp_path / "missing.jsonl") == {}


def test_a_test_run_cut_at_its_cap_keeps_its_counts(gc, tmp_path):
    (tmp_path / "test_slow.py").write_text(
        "import time\n"
        "def test_fast():\n    assert True\n"
        "def test_fails():\n    assert False\n"
        "def test_hangs():\n    time.sleep(300)\n")
    stream = tmp_path / "stream.jsonl"
    env = dict(PATH="/usr/bin:/bin", PYTHONPATH=str(ROOT / "scripts"), TAVAAL_TEST_STREAM=str(stream))
    step = gc.run_step(gc.Step("gpu-tests"), [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                              "pytest_stream", "--rootdir", str(tmp_path), str(tmp_path / "test_slow.py")],
                       timeout=20, env=env, workdir=tmp_path / "steps")
    assert step.status == "timeout"
    c = gc.stream_counts(stream)
    assert (c["passed"], c["failed"]) == (1, 1), stream.read_text() if stream.exists() else pathlib.Path(step.log).read_text()


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
        "kcenter": {"records": [_bench("kcenter fp32 1000000x512 b=1000", 0.8, 3.0, True, ms_per_pick=0.8,
                                       hbm_floor_ms_per_pick=0.43),
                                _bench("kcenter bf16 1000000x512 b=1000", 0.5, 2.0)]},
        "pool_scoring": {"records": [_bench("pool scoring fp32 n=50000", 2.0, 12.0, False),
                                     _bench("pool scoring bf16 n=50000", 1.0, 12.0, True)]},
    }
    goals = gc.judge_goals(benches)
    assert goals[0]["met"] is True and goals[0]["measured"] == "0.800 s (0.800 ms/pick), HBM floor 0.430 ms/pick"
    assert goals[1]["met"] is True and goals[1]["measured"].startswith("12.0x (pool scoring bf16")
    assert goals[2]["met"] is None and goals[2]["measured"] == "not in this check"
    goals = gc.judge_goals({})
    assert [g["measured"] for g in goals] == ["not measured", "not measured", "not in this check"]
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
    info = {"date": "2026-01-01", "gpu_name": "NVIDIA H200", "capability": "9.0", "sms": 132, "torch": "2.11.0",
            "torch_cuda": "12.8", "elapsed": 400.0, "budget": 420, "missing_packages": ["torchvision"],
            "tools": {"nvcc": "/usr/local/cuda/bin/nvcc", "make": None}}
    path = tmp_path / "gpu-x.md"
    gc.write_report(path, info, steps, benches, dry_run=False)
    text = path.read_text()
    assert "NVIDIA H200 (sm 9.0, 132 SMs" in text and "DRY RUN" not in text
    assert "optional packages missing: torchvision" in text and "make MISSING" in text
    assert "| k-center 1M x 512 fp32, b = 1000: <= 1 s on an H200 | 1.500 s (1.500 ms/pick) | **NO** |" in text
    assert "| pool scoring (CIFAR-sized): >= 10x the reference loop | not measured | not judged |" in text
    assert "| bench-kcenter | timeout | 150.0 | 40 | killed after 150 s |" in text
    assert "| kcenter fp32 1000000x512 b=1000 | 1.500 s | 3.000 s | the baseline | 2.00x |" in text
    assert "kcenter: error in bf16" in text
    assert "| topb | not measured |" in text
    assert "40 passed, 1 failed" in text and "FAILED tests.gpu.test_x::test_y" in text
    assert "sanitize-memcheck: failed; ERROR SUMMARY: 1 error" in text
    assert "CUDA error in phase 'picks'" in text  # the failed step's log tail
    raw = json.loads(path.with_suffix(".json").read_text())
    assert raw["goals"][0]["met"] is False and raw["steps"][4]["status"] == "timeout"


def test_every_step_leaves_its_result_file_and_the_report_lists_it(gc, tmp_path):
    """Only the environment runs (a second or two); the rest are skipped, yet each step has its
    result file and a line in the report, which is where --out says."""
    rest = [name for name in gc.CAPS if name != "environment"]
    assert gc.main(["--out", str(tmp_path / "out"), "--dry-run", "--skip", ",".join(rest)]) == 0
    for name in gc.CAPS:
        rec = json.loads((tmp_path / "out" / "steps" / f"{name}.json").read_text())
        assert rec["status"] == ("ok" if name == "environment" else "skipped"), name
    reports = list((tmp_path / "out").glob("gpu-*-dryrun.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "| environment | ok |" in text and "| sanitize-racecheck | skipped |" in text
    with pytest.raises(SystemExit):
        gc.main(["--out", str(tmp_path / "x"), "--skip", "no-such-step"])


@pytest.mark.slow
def test_dry_run_exercises_every_step_and_writes_the_report(tmp_path):
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--out",
                          str(tmp_path / "results"), "--budget", "900"],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout + out.stderr
    reports = list((tmp_path / "results").glob("gpu-*-dryrun.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "DRY RUN" in text
    for step in ("environment", "build", "sanitize-cases", "sanitize-memcheck", "sanitize-racecheck", "gpu-tests",
                 "bench-kcenter", "bench-topb", "bench-score_ops", "bench-pool_scoring"):
        assert f"| {step} | ok |" in text, step
        assert (tmp_path / "results" / "steps" / f"{step}.json").exists(), step
    raw = json.loads(reports[0].with_suffix(".json").read_text())
    assert {"kcenter", "topb", "score_ops", "pool_scoring"} <= set(raw["benchmarks"])
    assert all(b["records"] and not b["errors"] for b in raw["benchmarks"].values())
    assert "0 failure(s)" in (tmp_path / "results" / "steps" / "sanitize-memcheck.log").read_text()
