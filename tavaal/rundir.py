"""The run directory: atomic writes and the layout of everything a run records.

Layout::

    RUN_DIR/config.json                         resolved RunConfig
    RUN_DIR/metrics.jsonl, metrics.csv          one record per (method, trial, cycle)
    RUN_DIR/<method>/trial_<t>/state.json       commit point of the trial (cycles done, labeled set, records)
    RUN_DIR/<method>/trial_<t>/labeled_cycle_<c>.json    labeled indices trained on in cycle c
    RUN_DIR/<method>/trial_<t>/selected_cycle_<c>.json   indices picked in cycle c, most informative first
    RUN_DIR/<method>/trial_<t>/checkpoint.pt    models of the newest cycle (checkpoint_cycle_<c>.pt with "all")
    RUN_DIR/shared/trial_<t>/task_cycle00_<learner>.pt   cycle-0 task models shared by the methods of a trial
    RUN_DIR/per_class_iou.csv                   segmentation runs: mIoU and per-class IoU per (method, trial, cycle)
    RUN_DIR/summary.csv                         per method and cycle: mean accuracy, paired difference to
                                                random with 95% interval; AUBC rows (tavaal.stats)
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import torch

METRIC_FIELDS = ["method", "trial", "cycle", "labeled", "accuracy", "selected", "selection_seconds",
                 "train_seconds", "adversarial_seconds", "seed", "learner", "shared_task"]


def _file_mode() -> int:
    """Permissions of a newly created file under the process umask (mkstemp alone gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def utc_now() -> str:
    """The current UTC time as ISO 8601 to the second (``2026-12-01T23:41:43+00:00``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON so that ``path`` holds either the old or the new content, never half."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def save_torch(path: Path, obj: Any) -> None:
    """Atomic ``torch.save``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class RunDirectory:
    """Paths and atomic writers of one run directory."""

    def __init__(self, root: os.PathLike):
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    def trial_dir(self, method: str, trial: int) -> Path:
        return self.root / method / f"trial_{trial}"

    def state_path(self, method: str, trial: int) -> Path:
        return self.trial_dir(method, trial) / "state.json"

    def checkpoint_path(self, method: str, trial: int, cycle: int, keep: str = "last") -> Path:
        name = "checkpoint.pt" if keep == "last" else f"checkpoint_cycle_{cycle:02d}.pt"
        return self.trial_dir(method, trial) / name

    def shared_task_path(self, trial: int, cycle: int, learner: str) -> Path:
        """Task models shared by every method of a trial with the same learner (cycle 0)."""
        return self.root / "shared" / f"trial_{trial}" / f"task_cycle{cycle:02d}_{learner}.pt"

    def latest_checkpoint(self, method: str, trial: int) -> Path:
        """The newest checkpoint of a trial; FileNotFoundError naming what is missing."""
        directory = self.trial_dir(method, trial)
        last = directory / "checkpoint.pt"
        if last.exists():
            return last
        cycles = sorted(directory.glob("checkpoint_cycle_*.pt"))
        if not cycles:
            raise FileNotFoundError(f"no checkpoint in {directory}: has method {method!r} trial {trial} "
                                    "completed a cycle?")
        return cycles[-1]

    def load_state(self, method: str, trial: int) -> Dict[str, Any] | None:
        path = self.state_path(method, trial)
        return read_json(path) if path.exists() else None

    def all_records(self, methods: Iterable[str], trials: int) -> List[Dict[str, Any]]:
        states = (self.load_state(method, trial) for method in methods for trial in range(trials))
        return [record for state in states if state is not None for record in state["records"]]

    def write_metrics(self, records: List[Dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl and metrics.csv from ``records`` (atomically, no duplicates)."""
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        atomic_write_bytes(self.root / "metrics.jsonl", lines.encode())
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        atomic_write_bytes(self.root / "metrics.csv", out.getvalue().encode())


def latest_checkpoint(root: os.PathLike, method: str = "tavaal", trial: int = 0) -> Path:
    """The newest checkpoint under ``root``: for a labeling-loop work directory
    (``workdir.json``) the checkpoint of its newest committed train cycle (the last entry of
    ``state.json``'s ``cycles``), for a run directory the newest one of (``method``, ``trial``).

    Raises FileNotFoundError naming what is missing (no cycle trained yet, a missing file)."""
    root = Path(root)
    if not (root / "workdir.json").exists():
        return RunDirectory(root).latest_checkpoint(method, trial)
    cycles = read_json(root / "state.json")["cycles"]
    if not cycles:
        raise FileNotFoundError(f"{root} has no trained cycle yet: run tavaal train {root} first")
    checkpoint = root / cycles[-1]["checkpoint"]
    if not checkpoint.exists():
        raise FileNotFoundError(f"{checkpoint} (cycle {cycles[-1]['cycle']}) is missing")
    return checkpoint


def workdir_classes(root: os.PathLike) -> Optional[List[str]]:
    """The class names of a labeling-loop work directory in index order (output unit i of its
    task model is class ``i``); None for a run directory."""
    root = Path(root)
    if not (root / "workdir.json").exists():
        return None
    return list(read_json(root / "state.json")["classes"])
