"""The ``tavaal`` console command: ``tavaal train|export|score|demo ...``."""
from __future__ import annotations

import importlib
import sys
from typing import List, Optional

COMMANDS = {"train": "tavaal.train", "export": "tavaal.export", "score": "tavaal.score", "demo": "tavaal.demo"}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: tavaal {train,export,score,demo} [options]   (tavaal COMMAND --help for options)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
