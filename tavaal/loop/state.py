"""The work directory on disk: layout, versioned formats, atomic writes, one writer at a time.

Layout (``WORKDIR/``)::

    workdir.json        what init fixed: format/version, pool spec, classes, normalisation, holdout ids
    config.json         the resolved RunConfig (the training settings; also what tavaal.export reads)
    state.json          the commit point: labels, merges, batches, cycles (rewritten atomically, last)
    labels.csv          every label so far as id,label (derived from state.json after each commit)
    pool_ids.txt        the pool's ids at init, one per line (image folders; the pool-change rule)
    <method>/trial_0/checkpoint_cycle_<c>.pt   the models of train cycle c (tavaal.experiment's format)
    batches/batch_<k>/to_label.csv, label_studio_tasks.json   each selected batch
    to_label.csv, label_studio_tasks.json      copies of the newest batch (never replaced while the batch
                        they hold has pending samples; state.json's "to_label_batch" says which batch)
    unreadable.csv      image files that cannot be decoded (id, reason), excluded from the pool
    .lock               held (flock) while a command changes the directory

Every file is written to a temporary name in the same folder and renamed into place
(``os.replace``), so a reader sees the old or the new content, never half. ``state.json`` is
written last by every command: an interruption before it leaves the previous state in force
(files written before it are at most unreferenced leftovers that the next run overwrites).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator

from ..rundir import FILE_MODE, atomic_write_bytes, read_json, write_json
from .errors import LoopError

__all__ = ["WORKDIR_FORMAT", "STATE_FORMAT", "VERSION", "WorkdirFiles", "check_new_workdir", "create_workdir",
           "write_text", "write_json", "WORKDIR_JSON", "CONFIG_JSON", "STATE_JSON", "LABELS_CSV",
           "POOL_IDS_TXT", "TO_LABEL_CSV", "LABEL_STUDIO_TASKS_JSON", "MASKS_DIR", "BATCHES_DIR", "UNREADABLE_CSV",
           "SCORES_CSV", "ADVICE_DIR", "ADVICE_JSON", "LOCK_FILE"]

WORKDIR_FORMAT = "tavaal-workdir"
STATE_FORMAT = "tavaal-workdir-state"
VERSION = 1
SUPPORTED_VERSIONS = (1,)

# The names of the files of a work directory (the one place they are spelled).
WORKDIR_JSON = "workdir.json"
CONFIG_JSON = "config.json"
STATE_JSON = "state.json"
LABELS_CSV = "labels.csv"
POOL_IDS_TXT = "pool_ids.txt"
TO_LABEL_CSV = "to_label.csv"
"""The batch for the annotators (in each batch folder, and a copy of the newest at the top)."""
LABEL_STUDIO_TASKS_JSON = "label_studio_tasks.json"
"""The batch as a Label Studio import file (next to each ``to_label.csv``)."""
MASKS_DIR = "masks"
"""Folder holding the merged masks of a segmentation work directory (class-index PNGs)."""
BATCHES_DIR = "batches"
UNREADABLE_CSV = "unreadable.csv"
"""Image files of the pool that cannot be decoded (id, reason): excluded from the pool."""
SCORES_CSV = "scores.csv"
"""``select --save-scores``: the score of every scored sample (in the batch folder)."""
ADVICE_DIR = "advice"
"""What ``tavaal advise`` writes (advice.json, CSV, plot)."""
ADVICE_JSON = "advice.json"
"""The last advice (in ``ADVICE_DIR``); its ``summary`` is the line ``tavaal status`` shows."""
LOCK_FILE = ".lock"


def write_text(path: Path, text: str) -> None:
    """Atomic text write (see the module docstring)."""
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def check_new_workdir(root: Path) -> None:
    """Raise :class:`LoopError` unless ``root`` can become a new work directory (absent or empty)."""
    root = Path(root)
    if (root / WORKDIR_JSON).exists():
        raise LoopError(f"{root} is already a tavaal work directory: continue with tavaal train {root} "
                        "(or choose another directory)")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise LoopError(f"{root} exists and is not an empty directory: give a new or empty directory")


@contextlib.contextmanager
def create_workdir(root: Path) -> Iterator["WorkdirFiles"]:
    """Build a new work directory in a temporary sibling of ``root`` (yielded as its
    :class:`WorkdirFiles`) and rename it to ``root`` when the block ends, so the whole directory
    appears at once; an exception removes the temporary one and leaves ``root`` untouched.
    ``root`` must not exist or be an empty directory (:func:`check_new_workdir`)."""
    root = Path(root)
    parent = root.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=parent))
    try:
        yield WorkdirFiles(tmp)
        (tmp / LOCK_FILE).touch()
        os.chmod(tmp, FILE_MODE | ((FILE_MODE & 0o444) >> 2))  # mkdtemp made it 0700: the umask's mode
        if root.exists():
            root.rmdir()  # empty (check_new_workdir)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class WorkdirFiles:
    """Paths of one work directory and the reading/writing of its JSON files (``to_label_path`` /
    ``label_studio_path``: the top-level copies of the newest batch's files)."""

    def __init__(self, root: os.PathLike):
        self.root = Path(root)
        self.meta_path = self.root / WORKDIR_JSON
        self.state_path = self.root / STATE_JSON
        self.config_path = self.root / CONFIG_JSON
        self.pool_ids_path = self.root / POOL_IDS_TXT
        self.labels_path = self.root / LABELS_CSV
        self.to_label_path = self.root / TO_LABEL_CSV
        self.label_studio_path = self.root / LABEL_STUDIO_TASKS_JSON
        self.unreadable_path = self.root / UNREADABLE_CSV
        self.advice_dir = self.root / ADVICE_DIR
        self.advice_path = self.advice_dir / ADVICE_JSON

    def batch_dir(self, batch: int) -> Path:
        return self.root / BATCHES_DIR / f"batch_{batch:02d}"

    def checkpoint_path(self, method: str, cycle: int) -> Path:
        return self.root / method / "trial_0" / f"checkpoint_cycle_{cycle:02d}.pt"

    # reading
    def read_meta(self) -> Dict[str, Any]:
        if not self.meta_path.exists():
            hint = " (a tavaal run directory: use python -m tavaal.train --resume)" if self.config_path.exists() else ""
            raise LoopError(f"{self.root} is not a tavaal work directory (no workdir.json){hint}: "
                            f"create one with tavaal init {self.root} --pool POOL --labels LABELS")
        return self._read(self.meta_path, WORKDIR_FORMAT, "a work directory this tavaal reads")

    def read_state(self) -> Dict[str, Any]:
        return self._read(self.state_path, STATE_FORMAT, "supported")

    @staticmethod
    def _read(path: Path, fmt: str, what: str) -> Dict[str, Any]:
        """The JSON file ``path`` of format ``fmt``; LoopError naming the problem (``what`` it is not)."""
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise LoopError(f"{path} is missing: the work directory is incomplete") from None
        except ValueError as exc:
            raise LoopError(f"{path} is not valid JSON ({exc}): the work directory is damaged") from None
        if data.get("format") != fmt or data.get("version") not in SUPPORTED_VERSIONS:
            raise LoopError(f"{path}: format {data.get('format')!r} version {data.get('version')!r} is not {what} "
                            f"({fmt} {SUPPORTED_VERSIONS})")
        return data

    # writing
    def commit(self, state: Dict[str, Any]) -> None:
        """Write ``state.json`` atomically (the commit point of every command)."""
        write_json(self.state_path, {**state, "format": STATE_FORMAT, "version": VERSION})

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock on the work directory for one changing command; LoopError if another
        command (another process or thread) holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LoopError(f"{self.root} is in use by another tavaal command: wait for it to finish") from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
