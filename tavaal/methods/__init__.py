"""Selection methods: one module per method, one registry.

A method module (e.g. :mod:`tavaal.methods.margin`) declares a :class:`Method`: what a cycle
trains for it, how it scores and selects, what selection needs, its display name and colour.
Everything else -- configuration validation, the simulation, the labeling loop,
``tavaal.score``, export, plots, benchmarks -- reads the registry:

>>> from tavaal.methods import get_method, method_names
>>> get_method("margin").rule.graph
'classifier'

Add a method by writing one module that builds a :class:`Method` and calling
:func:`register_method` with it (or naming it in a ``tavaal.methods`` entry point).
"""
from . import badge, coreset, entropy, leastconf, lloss, lloss2, margin, mcdropout, random_sampling, tavaal, vaal
from .base import EmbeddingRule, Method, Outputs, ScoreRule, Training, per_image
from .registry import (DEFAULT_METHOD, ENTRY_POINT_GROUP, check_dense, get_method, method_names, register_method,
                       registered_methods, selection_names, supported_methods, unregister_method)

for _module in (random_sampling, entropy, margin, leastconf, badge, coreset, mcdropout, lloss, lloss2, vaal, tavaal):
    register_method(_module.METHOD)

__all__ = ["Method", "ScoreRule", "EmbeddingRule", "Training", "Outputs", "per_image", "register_method",
           "unregister_method",
           "get_method", "method_names", "registered_methods", "selection_names", "supported_methods", "check_dense",
           "ENTRY_POINT_GROUP", "DEFAULT_METHOD"]
