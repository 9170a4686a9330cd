"""Pool scoring on Ray: actors score work units, the driver merges the exact global top-b.

Each actor builds one :class:`tavaal.scoring.Scorer` from the artifacts (loaded once) and opens
the pool itself; a *work unit* is a contiguous range of pool rows (or explicit ``indices`` for
``--subset``) starting at a multiple of ``batch_size``, which the actor runs through
:func:`tavaal.scoring.select_from_pool` with the budget capped at the unit's candidate count.
The driver merges the local top-b lists with :func:`tavaal.scoring.merge_selections`: the
same rows, scores and ids as the single process (why: docs/scale-out.md). An actor that dies
has its in-flight units re-submitted; :func:`ray_select_from_pool` returns only when every
unit is complete (or raises) -- nothing partial is ever returned or written.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..data.candidates import draw_candidates, unlabeled_rows
from ..methods import ScoreRule, get_method, selection_names
from ..scoring import (Scorer, SelectionError, check_pool_kind, checked_budget, checked_rows, merge_selections,
                       open_source, select_from_pool)
from .cluster import ActorGroup, Worker, connected_ray, default_actors, schedule_timeout

log = logging.getLogger(__name__)

__all__ = ["ScorerSpec", "WorkUnit", "plan_units", "RayPoolScorer", "ray_select_from_pool"]


@dataclass(frozen=True)
class ScorerSpec:
    """How an actor builds its :class:`~tavaal.scoring.Scorer` (picklable)."""

    artifacts: str
    backend: str = "onnx"
    precision: str = "fp32"
    device: str = "cpu"
    verify: bool = False  # the driver verifies the sha256 once

    def build(self, threads: Optional[int] = None, method: Optional[str] = None):
        return Scorer.from_artifacts(self.artifacts, backend=self.backend, precision=self.precision,
                                     device=self.device, threads=threads, verify=self.verify, method=method)


@dataclass(frozen=True)
class WorkUnit:
    """Rows ``[start, stop)`` of the pool (labeled rows excluded by the worker), or exactly
    ``indices`` (sorted) when candidates are an explicit subset; ``candidates`` counts them."""

    index: int
    start: int
    stop: int
    candidates: int
    indices: Optional[np.ndarray] = None


def plan_units(n: int, labeled: np.ndarray, batch_size: int, rows_per_unit: int,
               indices: Optional[np.ndarray] = None) -> List[WorkUnit]:
    """Cut the candidates (``indices``, else every row not in ``labeled``) into units of
    ``rows_per_unit`` candidates (rounded up to a multiple of ``batch_size``)."""
    per = max(batch_size, -(-int(rows_per_unit) // batch_size) * batch_size)
    if indices is not None:
        idx = np.asarray(indices, dtype=np.int64)
        parts = [idx[a:a + per] for a in range(0, idx.size, per)]
        return [WorkUnit(k, int(p[0]), int(p[-1]) + 1, int(p.size), p) for k, p in enumerate(parts)]
    starts = np.arange(0, n - labeled.size, per)  # candidate positions [start, stop) of each unit
    stops = np.minimum(starts + per, n - labeled.size)
    first, last = unlabeled_rows(starts, labeled), unlabeled_rows(stops - 1, labeled)
    return [WorkUnit(k, int(first[k]), int(last[k]) + 1, int(stops[k] - starts[k])) for k in range(starts.size)]


# --------------------------------------------------------------------------------- the actor
class PoolScoringWorker(Worker):
    """Ray actor body: the artifacts loaded once, the pool opened once, units scored on demand
    (``crash_once`` dies at the given unit index)."""

    def __init__(self, spec: ScorerSpec, pool_path: str, pool_kwargs: dict, method: str, threads: int = 1,
                 crash_once: Optional[tuple] = None):
        super().__init__(threads, crash_once)
        self.scorer = spec.build(threads=threads, method=method)
        self.pool = open_source(pool_path, **pool_kwargs)
        self.method = method

    def score_unit(self, unit: WorkUnit, budget: int, labeled: np.ndarray, batch_size: int, with_latents: bool):
        self._maybe_crash(unit.index)
        self.pool.skipped.clear()
        return select_from_pool(self.scorer, self.pool, self.method, min(int(budget), unit.candidates),
                                labeled=labeled, indices=unit.indices, start=unit.start, stop=unit.stop,
                                batch_size=batch_size, with_latents=with_latents)


@dataclass
class RayRunInfo:
    """What a run on the actors did (``selection.ray``; the ``ray`` entry of the CLI's JSON)."""

    units: int
    actors: int
    restarts: int
    resubmitted: List[int]
    seconds: float
    setup_seconds: float


class RayPoolScorer(ActorGroup):
    """A set of scoring actors over one pool; :meth:`select` runs a selection on them.

    Args:
        spec: how to build the Scorer on each actor.
        pool_path: the pool (any :func:`tavaal.scoring.open_source` path; on a multi-node cluster
            it must be readable from every node, e.g. a shared filesystem).
        method: ``tavaal``, ``vaal`` or ``lloss`` (score-based methods merge exactly; checked by
            :func:`ray_select_from_pool`).
        num_actors: default: the cluster's CPUs / ``cpus_per_actor``.
        cpus_per_actor, gpus_per_actor: Ray resources per actor (the Scorer runs with
            ``int(cpus_per_actor)`` threads; with GPUs it runs on ``cuda``).
        max_restarts: Ray restarts of a dead actor before the driver replaces it.
    """

    def __init__(self, spec: ScorerSpec, pool_path: str, method: str, *, num_actors: Optional[int] = None,
                 cpus_per_actor: float = 1, gpus_per_actor: float = 0, max_restarts: int = 3,
                 pool_kwargs: Optional[dict] = None, _crash_once: Optional[tuple] = None):
        connected_ray()
        t0 = time.perf_counter()
        if gpus_per_actor and spec.device == "cpu":
            spec = replace(spec, device="cuda")
        self.spec, self.pool_path, self.method = spec, str(pool_path), method
        self.pool_kwargs = dict(pool_kwargs or {})
        self._crash = _crash_once
        count = default_actors(cpus_per_actor) if num_actors is None else int(num_actors)
        self._start(PoolScoringWorker, count, cpus_per_actor, gpus_per_actor, max_restarts)
        self.setup_seconds = time.perf_counter() - t0
        self.restarts = 0

    def _spawn(self, k: int):
        return self._remote.remote(self.spec, self.pool_path, self.pool_kwargs, self.method, self._threads,
                                   self._crash)

    def select(self, budget: int, units: Sequence[WorkUnit], labeled: np.ndarray, *, batch_size: int = 256,
               with_latents: bool = False, in_flight: int = 2,
               progress: Optional[Callable[[int, int, "RayPoolScorer"], None]] = None):
        """Score every unit and merge: returns ``(selection parts in unit order, RayRunInfo)``."""
        import ray

        t0 = time.perf_counter()
        labeled_ref = ray.put(np.asarray(labeled, dtype=np.int64))
        todo = deque(u for u in units if u.candidates > 0)
        total = len(todo)
        done: Dict[int, object] = {}
        running: Dict[object, tuple] = {}  # ref -> (unit, actor index)
        load = [0] * len(self.actors)
        resubmitted: List[int] = []

        def submit():
            while todo:
                k = min(range(len(self.actors)), key=lambda j: load[j])
                if load[k] >= in_flight:
                    return
                u = todo.popleft()
                ref = self.actors[k].score_unit.remote(u, budget, labeled_ref, batch_size, with_latents)
                running[ref] = (u, k)
                load[k] += 1

        submit()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            ref = ready[0]
            u, k = running.pop(ref)
            load[k] = max(0, load[k] - 1)
            try:
                sel = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                # the actor died with this unit in flight: re-submit it (results of this
                # attempt, if any, are discarded -- only complete results are merged)
                self.restarts += 1
                resubmitted.append(u.index)
                log.warning("scoring actor %d died on unit %d (%s); re-submitting", k, u.index,
                            type(exc).__name__)
                todo.appendleft(u)
                try:  # restarted by Ray?
                    ray.get(self.actors[k].ping.remote(), timeout=schedule_timeout())
                except Exception:  # noqa: BLE001 - dead for good, or not placeable
                    log.warning("scoring actor %d is gone for good; starting a fresh one", k)
                    self._replace(k)
                    load[k] = 0
                    # units still queued on the old handle fail and are re-submitted as they come
                submit()
                continue
            if sel.candidates != u.candidates or sel.scored + len(sel.skipped) < u.candidates:
                raise RuntimeError(f"unit {u.index}: incomplete result ({sel.scored} of {u.candidates} scored)")
            done[u.index] = sel
            if progress is not None:
                progress(len(done), total, self)
            submit()
        if len(done) != total:
            raise RuntimeError(f"only {len(done)} of {total} units completed")
        info = RayRunInfo(total, len(self.actors), self.restarts, resubmitted, time.perf_counter() - t0,
                          self.setup_seconds)
        return [done[i] for i in sorted(done)], info


def ray_select_from_pool(spec: ScorerSpec, pool_path: str, method: str, budget: int, *,
                         labeled: Optional[Sequence[int]] = None, subset: int = 0, seed: int = 0,
                         batch_size: int = 256, with_latents: bool = False, num_actors: Optional[int] = None,
                         cpus_per_actor: float = 1, gpus_per_actor: float = 0, rows_per_unit: Optional[int] = None,
                         max_restarts: int = 3, pool_kwargs: Optional[dict] = None,
                         progress: Optional[Callable] = None, _crash_once: Optional[tuple] = None):
    """The Ray version of :func:`tavaal.scoring.select_from_pool` for tavaal/vaal/lloss:
    the same :class:`~tavaal.scoring.Selection` (rows, ids, scores) as the single process.

    Validation (method, pool kind and shape, budget vs candidates) happens on the driver
    before any actor starts. ``selection.timings["total"]`` is the driver's wall time
    including actor start-up; ``selection.ray`` (an attribute added here) holds a
    :class:`RayRunInfo`.
    """
    t0 = time.perf_counter()
    scorer = replace(spec, device="cpu").build()
    try:
        scorer.check_method(method)
    except ValueError as exc:
        raise SelectionError(str(exc)) from None
    if not _mergeable(method):
        mergeable = ", ".join(name for name in selection_names() if _mergeable(name))
        raise SelectionError(f"--ray scores {mergeable} selections; {method!r} runs without --ray "
                             "(coreset on Ray: tavaal.distributed.RayKCenter on a features pool)")
    pool = open_source(pool_path, **(pool_kwargs or {}))
    n = len(pool)
    if n == 0:
        raise SelectionError(f"the pool {pool.path} is empty: nothing to select from")
    check_pool_kind(scorer, pool, get_method(method))
    lab = checked_rows(labeled, n)
    indices = draw_candidates(n, lab, int(subset), np.random.default_rng(seed))  # None: every unlabeled row
    n_cand = indices.size if indices is not None else n - lab.size
    budget = checked_budget(budget, n_cand, f"candidate samples (of {n}, {lab.size} labeled)")
    with RayPoolScorer(replace(spec, verify=False), str(pool_path), method, num_actors=num_actors,
                       cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, max_restarts=max_restarts,
                       pool_kwargs=pool_kwargs, _crash_once=_crash_once) as rp:
        if rows_per_unit is None:
            rows_per_unit = min(1 << 20, max(16 * batch_size, -(-n_cand // (4 * len(rp.actors)))))
        units = plan_units(n, lab, batch_size, rows_per_unit, indices)
        parts, info = rp.select(budget, units, lab, batch_size=batch_size, with_latents=with_latents,
                                progress=progress)
    for p in parts:  # arrays from Ray's object store are read-only views: own them
        p.rows, p.scores = np.array(p.rows), np.array(p.scores)
        p.latents = {k: np.array(v) for k, v in p.latents.items()}
    sel = merge_selections(parts, budget, pool)
    sel.timings.update(total=time.perf_counter() - t0, ray_setup=info.setup_seconds)
    sel.ray = info  # type: ignore[attr-defined]
    return sel


def _mergeable(method: str) -> bool:
    """Score-based, deterministic methods: their per-shard top-b merge exactly."""
    rule = get_method(method).rule
    return isinstance(rule, ScoreRule) and not rule.stochastic
