"""tavaal: Task-Aware Variational Adversarial Active Learning (Kim et al., CVPR 2021) and baselines."""

__version__ = "0.1.0"
