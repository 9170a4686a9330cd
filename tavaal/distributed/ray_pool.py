"""Pool scoring on Ray: actors score work units, the driver merges the exact global top-b.

Each actor builds one :class:`tavaal.scoring.Scorer` from the artifacts (loaded once, then
reused for every unit it is given) and opens the pool itself; a *work unit* is a contiguous
range of pool rows, which the actor runs through :func:`tavaal.scoring.select_from_pool`
(``start``/``stop``, or explicit ``indices`` for ``--subset``) with the budget capped at the
unit's candidate count. It returns the unit's complete local selection: its top-b
``(value, row)`` pairs ordered by (value, row). The driver merges them with
:func:`tavaal.scoring.merge_selections` (sort by (value, row), keep b).

Why the merge is exact: let T be the single-process top-b under the total order (value,
row). Every element of T that lies in unit u is among u's own top-b under the same order
(anything ahead of it in u is also ahead of it globally, and fewer than b are), so the union
of the local lists contains T, and the top-b of the union is T -- ties across units resolve
to the lower global row exactly as ``tavaal.ops.topb`` does.

Bit-identical scores: a unit always starts at a candidate position that is a multiple of
``batch_size``, so every batch an actor scores holds the same rows as the single-process
run's batch (GEMM results can depend on the batch's row count in the last ulp).

Faults: actors are created with ``max_restarts``; when one dies its in-flight units are
re-submitted (to the restarted actor, or to a fresh one once the restart budget is spent).
A unit counts only when its complete result arrives; :func:`ray_select_from_pool` returns
only when every unit is done (or raises) -- nothing partial is ever returned or written.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.candidates import draw_candidates, unlabeled_rows
from ..methods import ScoreRule, get_method, selection_names
from ..scoring import (Scorer, SelectionError, check_pool_kind, checked_budget, checked_rows, merge_selections,
                       open_source, select_from_pool)
from .cluster import cluster_cpus, kill_actors, require_ray

log = logging.getLogger(__name__)

__all__ = ["ScorerSpec", "WorkUnit", "plan_units", "RayPoolScorer", "ray_select_from_pool", "wait_scheduled"]



def _schedule_timeout() -> float:
    return float(os.environ.get("TAVAAL_RAY_SCHEDULE_TIMEOUT", "300"))


def wait_scheduled(refs: list, n: int, cpus: float, gpus: float, timeout: Optional[float] = None) -> list:
    """``ray.get(refs)`` of the actors' first calls, with a clear error when the cluster cannot
    place them (instead of waiting forever)."""
    import ray

    timeout = _schedule_timeout() if timeout is None else timeout
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    if len(ready) < len(refs):
        res = ray.cluster_resources()
        raise RuntimeError(
            f"only {len(ready)} of {n} Ray actors started within {timeout:.0f}s: each asks for {cpus} CPU"
            f"{f' and {gpus} GPU' if gpus else ''}, the cluster has {res.get('CPU', 0):g} CPU / {res.get('GPU', 0):g} GPU "
            "in total. Use fewer actors (--ray-actors), smaller --ray-cpus-per-actor, or a bigger cluster")
    return ray.get(refs)


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
    units: List[WorkUnit] = []
    if indices is not None:
        idx = np.asarray(indices, dtype=np.int64)
        for k, a in enumerate(range(0, idx.size, per)):
            part = idx[a:a + per]
            units.append(WorkUnit(k, int(part[0]), int(part[-1]) + 1, int(part.size), part))
        return units
    n_cand = n - labeled.size
    for k, a in enumerate(range(0, n_cand, per)):
        b = min(n_cand, a + per)
        start = int(unlabeled_rows(np.asarray([a]), labeled)[0])
        stop = int(unlabeled_rows(np.asarray([b - 1]), labeled)[0]) + 1
        units.append(WorkUnit(k, start, stop, b - a))
    return units


# --------------------------------------------------------------------------------- the actor
class PoolScoringWorker:
    """Ray actor body: the artifacts loaded once, the pool opened once, units scored on demand."""

    def __init__(self, spec: ScorerSpec, pool_path: str, pool_kwargs: dict, method: str, threads: int = 1,
                 crash_once: Optional[tuple] = None):
        torch.set_num_threads(max(1, int(threads)))
        self.scorer = spec.build(threads=max(1, int(threads)), method=method)
        self.pool = open_source(pool_path, **pool_kwargs)
        self.method = method
        self._crash_once = crash_once
        self.units_done = 0

    def ping(self) -> int:
        return os.getpid()

    def score_unit(self, unit: WorkUnit, budget: int, labeled: np.ndarray, batch_size: int, with_latents: bool,
                   prefetch_depth: int = 2):
        if self._crash_once is not None:  # test hook: die (once) when given this unit
            marker, at_unit = self._crash_once
            if unit.index == at_unit and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
        b = min(int(budget), unit.candidates)
        self.pool.skipped.clear()
        sel = select_from_pool(self.scorer, self.pool, self.method, b, labeled=labeled if labeled.size else None,
                               indices=unit.indices, start=unit.start, stop=unit.stop, batch_size=batch_size,
                               prefetch_depth=prefetch_depth, with_latents=with_latents)
        self.units_done += 1
        return unit.index, sel


@dataclass
class RayRunInfo:
    units: int
    actors: int
    restarts: int = 0
    resubmitted: List[int] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0


class RayPoolScorer:
    """A set of scoring actors over one pool; :meth:`select` runs a selection on them.

    Args:
        spec: how to build the Scorer on each actor.
        pool_path: the pool (any :func:`tavaal.scoring.open_source` path; on a multi-node cluster
            it must be readable from every node, e.g. a shared filesystem).
        method: ``tavaal``, ``vaal`` or ``lloss`` (score-based methods merge exactly).
        num_actors: default: the cluster's CPUs / ``cpus_per_actor``.
        cpus_per_actor, gpus_per_actor: Ray resources per actor (the Scorer runs with
            ``int(cpus_per_actor)`` threads; with GPUs it runs on ``cuda``).
        max_restarts: Ray restarts of a dead actor before the driver replaces it.
    """

    def __init__(self, spec: ScorerSpec, pool_path: str, method: str, *, num_actors: Optional[int] = None,
                 cpus_per_actor: float = 1, gpus_per_actor: float = 0, max_restarts: int = 3,
                 pool_kwargs: Optional[dict] = None, _crash_once: Optional[tuple] = None):
        ray = require_ray()
        if not ray.is_initialized():
            raise RuntimeError("Ray is not initialised: use tavaal.distributed.ray_session(...) or ray.init()")
        if not _mergeable(method):
            raise ValueError(f"the Ray pool scorer merges score-based selections ({', '.join(_mergeable_names())}), "
                             f"not {method!r}")
        t0 = time.perf_counter()
        if gpus_per_actor and spec.device == "cpu":
            spec = ScorerSpec(spec.artifacts, spec.backend, spec.precision, "cuda", spec.verify)
        self.spec, self.pool_path, self.method = spec, str(pool_path), method
        self.pool_kwargs = dict(pool_kwargs or {})
        if num_actors is None:
            num_actors = max(1, int(cluster_cpus() // max(cpus_per_actor, 1e-9)))
        self._opts = dict(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor, max_restarts=int(max_restarts),
                          max_task_retries=0)  # the driver re-submits, so it knows and counts
        self._threads = max(1, int(cpus_per_actor))
        self._remote = ray.remote(PoolScoringWorker)
        self._crash = _crash_once
        self.actors = [self._spawn() for _ in range(int(num_actors))]
        try:
            wait_scheduled([a.ping.remote() for a in self.actors], len(self.actors), cpus_per_actor, gpus_per_actor)
        except BaseException:
            self.shutdown()  # no pending actors left behind in the cluster
            raise
        self.setup_seconds = time.perf_counter() - t0
        self.restarts = 0

    def _spawn(self):
        return self._remote.options(**self._opts).remote(self.spec, self.pool_path, self.pool_kwargs, self.method,
                                                         self._threads, self._crash)

    def _healthy(self, k: int) -> bool:
        import ray

        try:
            ray.get(self.actors[k].ping.remote(), timeout=_schedule_timeout())
            return True
        except Exception:  # noqa: BLE001 - dead for good, or not placeable
            return False

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
        info = RayRunInfo(units=total, actors=len(self.actors))

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
                index, sel = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                # the actor died with this unit in flight: re-submit it (results of this
                # attempt, if any, are discarded -- only complete results are merged)
                self.restarts += 1
                info.resubmitted.append(u.index)
                log.warning("scoring actor %d died on unit %d (%s); re-submitting", k, u.index,
                            type(exc).__name__)
                todo.appendleft(u)
                if not self._healthy(k):
                    log.warning("scoring actor %d is gone for good; starting a fresh one", k)
                    try:
                        ray.kill(self.actors[k], no_restart=True)
                    except Exception:  # noqa: BLE001
                        pass
                    self.actors[k] = self._spawn()
                    load[k] = 0
                    # units still queued on the old handle fail and are re-submitted as they come
                submit()
                continue
            if sel.candidates != u.candidates or sel.scored + len(sel.skipped) < u.candidates:
                raise RuntimeError(f"unit {u.index}: incomplete result ({sel.scored} of {u.candidates} scored)")
            done[index] = sel
            if progress is not None:
                progress(len(done), total, self)
            submit()
        if len(done) != total:
            raise RuntimeError(f"only {len(done)} of {total} units completed")
        info.restarts = self.restarts
        info.seconds = time.perf_counter() - t0
        info.setup_seconds = self.setup_seconds
        return [done[i] for i in sorted(done)], info

    def shutdown(self) -> None:
        kill_actors(self.actors)
        self.actors = []

    def __enter__(self) -> "RayPoolScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


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
    scorer = ScorerSpec(spec.artifacts, spec.backend, spec.precision, "cpu", spec.verify).build()
    try:
        scorer.check_method(method)
    except ValueError as exc:
        raise SelectionError(str(exc)) from None
    if not _mergeable(method):
        raise SelectionError(f"--ray scores {', '.join(_mergeable_names())} selections; {method!r} runs without --ray "
                             "(coreset on Ray: tavaal.distributed.RayKCenter on a features pool)")
    pool = open_source(pool_path, **(pool_kwargs or {}))
    n = len(pool)
    if n == 0:
        raise SelectionError(f"the pool {pool.path} is empty: nothing to select from")
    check_pool_kind(scorer, pool, get_method(method))
    lab = checked_rows(labeled, n)
    indices = draw_candidates(n, lab, int(subset), np.random.default_rng(seed)) if subset else None
    n_cand = indices.size if indices is not None else n - lab.size
    budget = checked_budget(budget, n_cand, f"candidate samples (of {n}, {lab.size} labeled)")
    worker_spec = ScorerSpec(spec.artifacts, spec.backend, spec.precision, spec.device, verify=False)
    with RayPoolScorer(worker_spec, str(pool_path), method, num_actors=num_actors, cpus_per_actor=cpus_per_actor,
                       gpus_per_actor=gpus_per_actor, max_restarts=max_restarts, pool_kwargs=pool_kwargs,
                       _crash_once=_crash_once) as rp:
        if rows_per_unit is None:
            rows_per_unit = min(1 << 20, max(16 * batch_size, -(-n_cand // (4 * len(rp.actors)))))
        units = plan_units(n, lab, batch_size, rows_per_unit, indices)
        parts, info = rp.select(budget, units, lab, batch_size=batch_size, with_latents=with_latents,
                                progress=progress)
    for p in parts:  # arrays from Ray's object store are read-only views: own them
        p.rows, p.scores = np.array(p.rows), np.array(p.scores)
        p.latents = {k: np.array(v) for k, v in p.latents.items()}
    sel = merge_selections(parts, budget, pool)
    sel.pool_size = n
    sel.candidates = n_cand
    sel.timings = dict(sel.timings)
    sel.timings["total"] = time.perf_counter() - t0
    sel.timings["ray_setup"] = info.setup_seconds
    sel.ray = info  # type: ignore[attr-defined]
    return sel


def _mergeable(method: str) -> bool:
    """Score-based, deterministic methods: their per-shard top-b merge exactly."""
    try:
        rule = get_method(method).rule
    except ValueError:
        return False
    return isinstance(rule, ScoreRule) and not rule.stochastic


def _mergeable_names():
    return [n for n in selection_names() if _mergeable(n)]
