"""``python -m tavaal.demo`` (``make demo``): the paper's toy comparison and a digits run on CPU.

1. moons (paper §4.1, Fig. 1): random, Learning Loss, VAAL and TA-VAAL, several trials.
2. digits: TA-VAAL against random on scikit-learn's 8x8 digits with a narrow ResNet-18.
Prints the per-cycle tables and where the plots are.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional

from . import train


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tavaal.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_runs", help="where the two run directories go")
    parser.add_argument("--quick", action="store_true", help="fewer trials and epochs (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="resume existing demo runs instead of replacing them")
    args = parser.parse_args(argv)
    out = Path(args.out)
    runs = {
        "moons": ["--preset", "moons", "--methods", "random,lloss,vaal,tavaal", "--out", str(out / "moons")],
        "digits": ["--preset", "digits", "--methods", "random,tavaal", "--out", str(out / "digits")],
    }
    if args.quick:
        runs["moons"] += ["--trials", "1", "--epochs", "30", "--set", "wae_epochs=20"]
        runs["digits"] += ["--cycles", "2", "--epochs", "4", "--set", "wae_iterations=20"]
    started = time.perf_counter()
    for name, argv_run in runs.items():
        if not args.keep and (out / name).exists():
            shutil.rmtree(out / name)
        print(f"\n=== demo: {name} ===", flush=True)
        code = train.main(argv_run + (["--resume"] if args.keep else []) + ["--no-progress"])
        if code != 0:
            return code
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s. Plots:")
    for png in sorted(out.glob("*/*.png")):
        print(f"  {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
