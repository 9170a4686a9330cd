"""The one method registry: every caller (configuration, simulation, labeling loop,
``tavaal.score``, export, plots, benchmarks) looks methods up here and nowhere else.

Third parties add a method with :func:`register_method` (from any module, e.g. one imported
before a run), or from an installed package through an entry point of the group
``tavaal.methods`` whose target is a :class:`~tavaal.methods.Method` (or a callable returning
one); entry points are loaded the first time the registry is read (one that fails to load is
skipped with a warning naming it).
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .base import GRAPHS, Method, ScoreRule

__all__ = ["register_method", "unregister_method", "get_method", "method_names", "registered_methods", "selection_names",
           "supported_methods", "check_dense", "ENTRY_POINT_GROUP", "DEFAULT_METHOD"]

ENTRY_POINT_GROUP = "tavaal.methods"
DEFAULT_METHOD = "tavaal"
"""The method of a run or a command that names none."""

log = logging.getLogger(__name__)

_REGISTRY: Dict[str, Method] = {}
_plugins_loaded = False


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry and return it.

    Raises TypeError for a non-:class:`Method`, ValueError when the name is taken (unless
    ``replace``) or ``selects_as`` names a method that is not registered or selects as another."""
    if not isinstance(method, Method):
        raise TypeError(f"register_method takes a tavaal.methods.Method, got {type(method).__name__}")
    if method.name in _REGISTRY and not replace:
        raise ValueError(f"a selection method named {method.name!r} is already registered (pass replace=True)")
    if method.selects_as is not None:
        target = _REGISTRY.get(method.selects_as)
        if target is None or target.selects_as is not None:
            raise ValueError(f"method {method.name!r} selects as {method.selects_as!r}, which is not a registered "
                             "method with its own selection")
    _REGISTRY[method.name] = method
    return method


def unregister_method(name: str) -> Method:
    """Remove the registered method ``name`` (e.g. one a plugin or a test added) and return it;
    ValueError when it is unknown or another registered method selects as it."""
    get_method(name)  # ValueError naming the known ones
    users = [m.name for m in _REGISTRY.values() if m.selects_as == name]
    if users:
        raise ValueError(f"method {name!r} cannot be removed: {', '.join(users)} select(s) as it")
    return _REGISTRY.pop(name)


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = point.load()
            method = target() if callable(target) and not isinstance(target, Method) else target
            if not isinstance(method, Method):
                raise TypeError(f"it gives a {type(method).__name__}, not a tavaal.methods.Method")
            if method.name not in _REGISTRY:  # a module that registered itself on import is not added twice
                register_method(method)
        except Exception as exc:  # a broken plugin must not take the built-in methods down with it
            log.warning("ignoring the %s entry point %s = %s: %s: %s", ENTRY_POINT_GROUP, point.name, point.value,
                        type(exc).__name__, exc)


def registered_methods() -> Tuple[Method, ...]:
    """Every registered method, in registration order (the built-ins first)."""
    _load_plugins()
    return tuple(_REGISTRY.values())


def get_method(name: str) -> Method:
    """The registered method ``name``; ValueError listing the known ones otherwise."""
    _load_plugins()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(method_names())}") from None


def method_names() -> Tuple[str, ...]:
    """Names of every registered method (what ``--method`` accepts for training)."""
    return tuple(m.name for m in registered_methods())


def selection_names() -> Tuple[str, ...]:
    """Names of the methods with a selection of their own (what a scorer can run; a method
    with ``selects_as`` runs the selection of the method it names)."""
    return tuple(m.name for m in registered_methods() if m.selects_as is None)


def supported_methods(graphs: Iterable[str], rank_conditioned: Optional[bool], *, stochastic: bool = False) -> List[str]:
    """The selections a set of graph names supports: their graph is there, fused rules match
    the discriminator (``rank_conditioned``: True TA-VAAL's, False VAAL's, None no
    discriminator), stochastic ones need live eager models (``stochastic``).

    Ordered from the most specific models to none: the methods of the ``scorer`` graph, then
    ``ranker``, ``features``, ``classifier`` (registration order within a graph), then those
    that need no model -- so the first one is what models trained for it are best used for."""
    graphs = set(graphs)

    def usable(rule) -> bool:
        if isinstance(rule, ScoreRule) and rule.fused and rule.rank_conditioned != rank_conditioned:
            return False
        return rule.graph in graphs and (stochastic or not getattr(rule, "stochastic", False))

    own = [m for m in registered_methods() if m.selects_as is None]
    with_models = sorted((m for m in own if m.rule is not None and usable(m.rule)),
                         key=lambda m: GRAPHS.index(m.rule.graph))  # stable: registration order within a graph
    return [m.name for m in with_models] + [m.name for m in own if m.rule is None]


def check_dense(names: Sequence[str]) -> None:
    """ValueError (before any training) naming the methods of ``names`` that cannot select for
    segmentation (per-pixel) task learners, and those that can; ValueError for unknown names."""
    unsupported = [name for name in names if not get_method(name).dense]
    if unsupported:
        dense = [m.name for m in registered_methods() if m.dense]
        raise ValueError(f"method(s) {', '.join(unsupported)} do not support segmentation data; use "
                         f"{', '.join(dense[:-1])} or {dense[-1]}")
