#!/usr/bin/env python3
"""Line counts of a Python tree, as issue 14 measures them.

    python3 scripts/line_count.py tavaal [--exclude tavaal/labelstudio --exclude tavaal/advise.py ...]

Prints total lines (what ``wc -l`` counts) split into blank lines, comment lines, docstring
lines (module, class and function docstrings) and code lines (the rest), for every ``*.py`` file
below the tree that is not below an ``--exclude`` path.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path


def count(path: Path) -> dict:
    """{"total", "blank", "comment", "docstring", "code"} line counts of one Python file."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    docstring = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstring += first.end_lineno - first.lineno + 1
    blank = sum(1 for line in lines if not line.strip())
    comment = sum(1 for line in lines if line.strip().startswith("#"))
    return {"total": len(lines), "blank": blank, "comment": comment, "docstring": docstring,
            "code": len(lines) - blank - comment - docstring}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tree", type=Path)
    p.add_argument("--exclude", type=Path, action="append", default=[], help="a file or folder left out")
    args = p.parse_args()
    excluded = [e.resolve() for e in args.exclude]
    totals = dict.fromkeys(("total", "blank", "comment", "docstring", "code"), 0)
    files = 0
    for path in sorted(args.tree.rglob("*.py")):
        if any(path.resolve().is_relative_to(e) for e in excluded):
            continue
        files += 1
        for key, value in count(path).items():
            totals[key] += value
    print(f"{files} files: " + ", ".join(f"{key} {value}" for key, value in totals.items()))


if __name__ == "__main__":
    main()
