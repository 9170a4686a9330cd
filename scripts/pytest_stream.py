"""pytest plugin of scripts/gpu_check.py: one JSON line per test outcome, appended the moment
the test finishes, to the file named by ``TAVAAL_TEST_STREAM`` -- so a test run killed at its
time cap still leaves its counts (a JUnit XML is written only at the end).

Lines: ``{"nodeid": ..., "outcome": "passed" | "failed" | "error" | "skipped"}``; a failure
in setup or teardown, and a module that fails to import, count as ``error``. Loaded with
``python -m pytest -p pytest_stream`` (scripts/ on PYTHONPATH); without the variable it does
nothing.
"""
import json
import os


def _write(nodeid: str, outcome: str) -> None:
    path = os.environ.get("TAVAAL_TEST_STREAM")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"nodeid": nodeid, "outcome": outcome}) + "\n")


def pytest_runtest_logreport(report):
    if report.when == "call":
        _write(report.nodeid, report.outcome)
    elif report.outcome == "failed":
        _write(report.nodeid, "error")
    elif report.outcome == "skipped" and report.when == "setup":
        _write(report.nodeid, "skipped")


def pytest_collectreport(report):
    if report.failed:
        _write(report.nodeid, "error")
