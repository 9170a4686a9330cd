# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates/refreshes a virtualenv in .venv, installs torch (pinned; override with
# TORCH_SPEC=...), the package in editable mode with its C++ extension, and runs.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,onnx,ray,labelstudio
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tavaal-installed
# Spinning OpenMP threads are very slow on shared cores (see tavaal/__init__.py).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: venv install demo test test-all test-slow bench validate gpu-check gpu-check-dry clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel ninja

$(STAMP): $(PY) pyproject.toml setup.py tavaal/ops/build.py $(wildcard csrc/*.cpp csrc/*.h csrc/cpu/*.cpp csrc/cpu/*.h csrc/cuda/*)
	$(PIP) install -q "$(TORCH_SPEC)" numpy
	$(PIP) install -q --no-build-isolation -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m tavaal.demo --out demo_runs

# Does it beat random? digits, all registered methods, 5 trials, paired intervals; resumable.
validate: install
	OMP_NUM_THREADS=1 $(PY) -m benchmarks.validate --out benchmarks/results

# The suite CI runs: everything but the tests marked slow (GPU-only tests skip without a GPU).
test: install
	$(PY) -m pytest -q -m "not slow" tests

# The slow tests alone (plain `pip install .` into a fresh venv, CMake/libtorch builds, the C++
# scorer, the demo, validate --quick, the GPU-check dry run), and everything together.
test-slow: install
	$(PY) -m pytest -q -m slow tests

test-all: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/results/latest.json

# GPU machines: the device check of the ops (scripts/gpu_check.py; <= 7 min on one H200): JIT
# build for the visible GPU, sanitizer cases, compute-sanitizer, the GPU tests, the GPU
# benchmarks -> benchmarks/results/gpu-<date>.md, logs and results in benchmarks/results/steps/.
# A bare GPU machine without make runs the same: python3 scripts/gpu_check.py --out DIR.
# GPU_PYTHON: the interpreter whose torch has CUDA (the .venv's is CPU-only here).
GPU_PYTHON ?= python3
gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py --python $(GPU_PYTHON) --out benchmarks/results

# the same steps without a GPU (CPU stand-ins, tiny sizes): checks the script itself
gpu-check-dry: install
	$(PY) scripts/gpu_check.py --dry-run --out build/gpu-check-dry

clean:
	rm -rf build *.egg-info tavaal/*.so demo_runs
