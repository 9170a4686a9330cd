"""tavaal: Task-Aware Variational Adversarial Active Learning (Kim et al., CVPR 2021) and baselines."""
import os as _os

# OpenMP threads that spin while waiting make torch tens of times slower whenever the cores are
# shared (measured here: a WAE iteration 30x slower on 2 busy cores). Passive waiting costs
# nothing measurable on an idle machine. Only effective if torch is not imported yet; set
# OMP_WAIT_POLICY yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
