"""Random sampling: a seeded uniform draw without replacement from the whole unlabeled pool
(the official code samples with replacement, bug B4; this does not). No model is read."""
from .base import Method

METHOD = Method("random", "Random", "uniform draw without replacement (seeded)", rule=None, uses_subset=False,
                color="tab:gray")
