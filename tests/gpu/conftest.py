"""GPU tests (every module is marked ``gpu``: skipped without CUDA by tests/conftest.py).

Run them with ``make gpu-check`` (scripts/gpu_check.py) or ``python -m pytest -m gpu tests``.
The helpers of the CPU specifications (tests/*.py) are importable from here.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
