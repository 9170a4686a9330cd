# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates/refreshes a virtualenv in .venv, installs torch (pinned; override with
# TORCH_SPEC=...), the package in editable mode with its C++ extension, and runs.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,onnx,ray
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tavaal-installed
# Spinning OpenMP threads are very slow on shared cores (see tavaal/__init__.py).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: venv install demo test test-fast bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel ninja

$(STAMP): $(PY) pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*.h csrc/cpu/*.cpp csrc/cpu/*.h)
	$(PIP) install -q "$(TORCH_SPEC)" numpy
	$(PIP) install -q --no-build-isolation -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m tavaal.demo --out demo_runs

test: install
	$(PY) -m pytest -q tests

test-fast: install
	$(PY) -m pytest -q -m "not slow" tests

bench: install
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/results/latest.json

clean:
	rm -rf build *.egg-info tavaal/*.so demo_runs
