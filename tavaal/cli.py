"""The ``tavaal`` console command: the loop commands (:mod:`tavaal.loop.commands`), ``advise``,
``simulate``, ``export``, ``score`` and ``demo`` (see :data:`USAGE`)."""
from __future__ import annotations

import importlib
import sys
from typing import List, Optional

LOOP_COMMANDS = ("init", "train", "select", "unselect", "label", "status")
MODULES = {"simulate": "tavaal.train", "export": "tavaal.export", "score": "tavaal.score", "demo": "tavaal.demo",
           "advise": "tavaal.advise"}
USAGE = """usage: tavaal COMMAND [options]        (tavaal COMMAND --help for the options of one command)

active learning on your data (a work directory):
  init     WORKDIR --pool POOL --labels LABELS   create it from your pool and the labels you have
  train    WORKDIR                               one cycle: train the models on the labels so far
  select   WORKDIR --budget B                    pick the next batch -> WORKDIR/to_label.csv
                                                 (--dry-run: show it only; --audit K: K random samples too)
  unselect WORKDIR [--batch K | --all]           return a batch's pending samples to the pool
  label    WORKDIR NEW_LABELS                    merge the labels the annotators returned
  status   WORKDIR                               where the loop stands, and the next command
  advise   WORKDIR [--methods ...]               which method would have paid off on your labels so far

simulation, deployment:
  simulate --dataset NAME ...   active-learning cycles on a benchmark data set with an oracle
                                (= python -m tavaal.train; `tavaal train --dataset ...` also works)
  export   DIR --out ART        TorchScript + ONNX artifacts of a run or a work directory
  score    ART --pool POOL ...  score a pool with exported artifacts
  demo                          the bundled demo"""


def _is_simulation(argv: List[str]) -> bool:
    """``tavaal train`` with options only (``--dataset ...``, ``--preset ...``, ``--resume``) is the
    simulation of ``python -m tavaal.train``; ``tavaal train WORKDIR`` (or ``--help``) is the loop."""
    return bool(argv) and argv[0].startswith("-") and argv not in (["-h"], ["--help"])


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train" and _is_simulation(rest):
        command = "simulate"
    if command in LOOP_COMMANDS:
        from .loop.commands import main as loop_main

        return loop_main(command, rest)
    if command not in MODULES:
        print(f"tavaal: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(MODULES[command])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
