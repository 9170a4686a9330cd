"""Distributed core-set on Ray: exact greedy k-center and the 2-round composable core-set.

Feature shards (contiguous ranges of global rows) are held by Ray actors, each wrapping a
:class:`~tavaal.distributed.kcenter_state.ShardKCenter`.

* :meth:`RayKCenter.greedy`: one synchronisation round per pick (the driver broadcasts the new
  center, the actors answer their local (max, argmax, row), ties to the lowest global id); the
  picks and radii of ``tavaal.ops.kcenter_greedy`` (bit-identical to its reference backend).
* :meth:`RayKCenter.composable`: greedy on every shard, then on the union of the local picks;
  two rounds whatever ``b``, covering radius <= 4 OPT (vs 2 OPT for the exact greedy).
* Faults: an actor that dies (restarted by Ray, or replaced once ``max_restarts`` is spent)
  gets every center added so far replayed; the result is identical to a run without failure.

The algorithms, the approximation proof and the costs: docs/scale-out.md.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from .. import ops
from ..ops.api import check_b, check_choice
from .cluster import ActorGroup, Worker, connected_ray, default_actors
from .kcenter_state import ShardKCenter, to_radius
from .shards import FeatureShard, load_feature_shard, plan_feature_shards

log = logging.getLogger(__name__)
Tensor = torch.Tensor

__all__ = ["RayKCenter", "KCenterRun", "merge_best"]


# --------------------------------------------------------------------------------- the actor
class KCenterWorker(Worker):
    """Ray actor body: one feature shard and its :class:`ShardKCenter` state (``crash_once``
    dies at the given round)."""

    def __init__(self, shard: FeatureShard, metric: str = "euclidean", group_size: int = 2048, threads: int = 1,
                 crash_once: Optional[Tuple[str, int]] = None):
        super().__init__(threads, crash_once)
        self.shard = shard
        self.metric = metric
        self.group_size = group_size
        self.reset()

    def reset(self) -> None:
        self.state = ShardKCenter(load_feature_shard(self.shard), self.shard.start, self.metric,
                                  group_size=self.group_size)

    def rows(self, ids: Tensor) -> Tensor:
        return self.state.rows(ids)

    def add_centers(self, centers: Tensor, ids: Tensor):
        self._maybe_crash(self.state.rounds)
        return self.state.add_centers(centers, ids)

    def covering_d2(self, centers: Tensor) -> float:
        return self.state.covering_d2(centers)

    def local_greedy(self, b: int, centers: Tensor, center_ids: Tensor) -> Tuple[Tensor, Tensor]:
        """Round 1 of the composable core-set: greedy on this shard, ``centers`` (working rows)
        as initial centers; returns (global ids, working rows) of up to ``b`` picks."""
        st = self.state
        x = st.x[st.pos]  # working rows in global-id order
        local = torch.as_tensor(center_ids, dtype=torch.long) - st.offset
        local = local[(local >= 0) & (local < st.n)]
        avail = st.n - int(torch.unique(local).numel())
        k = min(int(b), avail)
        if k <= 0:
            return torch.empty(0, dtype=torch.long), x[:0].clone()
        feats = torch.cat([x, torch.as_tensor(centers).to(x.dtype)]).contiguous()
        cmask = torch.zeros(feats.shape[0], dtype=torch.bool)
        cmask[local] = True
        cmask[st.n:] = True
        # on cosine the working rows are already normalised: Euclidean greedy there is the
        # same order as cosine greedy (1 - cos = ||u - v||^2 / 2)
        picks, _ = ops.kcenter_greedy(feats, k, centers=cmask, metric="euclidean")
        return picks + st.offset, x[picks].clone()

    def stats(self) -> dict:
        return self.state.stats()


def merge_best(results: Sequence[Tuple[float, int, Optional[Tensor]]]) -> Tuple[float, int, Optional[Tensor]]:
    """Global (max, argmax, row) from per-shard answers: largest value, ties to the lowest id;
    ``(-1, -1, None)`` when no shard has a non-center point left."""
    best = (-1.0, -1, None)
    for v, i, row in results:
        if i >= 0 and (best[1] < 0 or v > best[0] or (v == best[0] and i < best[1])):
            best = (v, i, row)
    return best


@dataclass
class KCenterRun:
    """Result of a distributed k-center run."""

    indices: Tensor
    radii: Tensor
    method: str
    rounds: int
    seconds: float
    covering_radius: Optional[float] = None
    stats: List[dict] = field(default_factory=list)
    restarts: int = 0


# --------------------------------------------------------------------------------- the driver
class RayKCenter(ActorGroup):
    """Feature shards held by Ray actors; run :meth:`greedy` / :meth:`composable` on them.

    Args:
        source: a (N, D) fp32/fp16/bf16 tensor (split into ``num_shards`` contiguous shards and
            shipped through the object store) or the path of a sharded pool of kind
            ``"features"`` (each actor reads its rows itself; on a multi-node cluster the path
            must be visible to every node).
        num_shards: number of actors (default: the cluster's CPUs / ``cpus_per_actor``).
        metric: ``"euclidean"`` or ``"cosine"``.
        cpus_per_actor / gpus_per_actor: Ray resources of each actor (the k-center state is
            CPU code; GPUs are only reserved).
        max_restarts: how often Ray restarts a dead actor before the driver replaces it.
    """

    def __init__(self, source, num_shards: Optional[int] = None, metric: str = "euclidean",
                 cpus_per_actor: float = 1, gpus_per_actor: float = 0, max_restarts: int = 3,
                 group_size: int = 2048, _crash_once: Optional[Tuple[int, str, int]] = None):
        connected_ray()
        check_choice("metric", metric, ("euclidean", "cosine"))
        if num_shards is None:
            num_shards = default_actors(cpus_per_actor)
        self.metric = metric
        self.shards: List[FeatureShard] = plan_feature_shards(source, int(num_shards))
        self.n = self.shards[-1].stop
        self._group_size = group_size
        self._crash = _crash_once
        self._start(KCenterWorker, len(self.shards), cpus_per_actor, gpus_per_actor, max_restarts)
        self._history: List[Tuple[object, object]] = []  # (centers, ids) refs added so far
        self.restarts = 0

    def _spawn(self, k: int):
        crash = self._crash[1:] if self._crash is not None and self._crash[0] == k else None
        return self._remote.remote(self.shards[k], self.metric, self._group_size, self._threads, crash)

    # ----------------------------------------------------------------------- fault handling
    def _call_all(self, method: str, *args) -> list:
        """Call ``method`` on every actor (see :meth:`_gather`)."""
        return self._gather([(k, method, args) for k in range(len(self.actors))])

    def _gather(self, calls) -> list:
        """Results of ``calls`` ((actor index, method, args), all submitted at once); a dead
        actor is recovered (restart + replay)."""
        import ray

        refs = [getattr(self.actors[k], method).remote(*args) for k, method, args in calls]
        out = []
        for (k, method, args), ref in zip(calls, refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError:
                out.append(self._recover(k, method, args))
        return out

    def _recover(self, k: int, method: str, args) -> object:
        import ray

        last = None
        for attempt in range(4):
            self.restarts += 1
            log.warning("k-center actor %d died (%s); replaying %d center batches (attempt %d)", k,
                        "restarted by Ray" if attempt == 0 else "replaced", len(self._history), attempt + 1)
            if attempt > 0:  # restart budget spent or the restart failed: a fresh actor
                self._replace(k)
            actor = self.actors[k]
            try:
                if self._history:
                    cs = [ray.get(c) for c, _ in self._history]
                    ids = [ray.get(i) for _, i in self._history]
                    ray.get(actor.add_centers.remote(torch.cat(cs), torch.cat(ids)))
                return ray.get(getattr(actor, method).remote(*args))
            except ray.exceptions.RayActorError as exc:
                last = exc
                time.sleep(0.5)
        raise RuntimeError(f"k-center actor {k} could not be recovered") from last

    def _owner_rows(self, ids: Tensor) -> Tensor:
        """Working rows of global ``ids`` (ascending), fetched from the owning actors."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        owned = [(k, ids[(ids >= sh.start) & (ids < sh.stop)]) for k, sh in enumerate(self.shards)]
        return torch.cat(self._gather([(k, "rows", (sel,)) for k, sel in owned if sel.numel()]))

    def _add(self, centers: Tensor, ids: Tensor):
        import ray

        c_ref, i_ref = ray.put(centers), ray.put(ids)
        res = self._call_all("add_centers", c_ref, i_ref)
        self._history.append((c_ref, i_ref))
        return merge_best(res)

    # ----------------------------------------------------------------------------- methods
    def _validate(self, b: int, centers, first) -> Tuple[Tensor, int]:
        n = self.n
        c = torch.empty(0, dtype=torch.long) if centers is None else torch.as_tensor(centers)
        if c.dtype == torch.bool:
            if c.numel() != n:
                raise ValueError(f"a bool centers mask must have one entry per row ({n}), got {c.numel()}")
            cidx = torch.nonzero(c, as_tuple=False).flatten()
        else:
            cidx = torch.unique(c.to(torch.long).reshape(-1))
            if cidx.numel() and (int(cidx.min()) < 0 or int(cidx.max()) >= n):
                raise ValueError(f"centers indices must lie in [0, {n})")
        if cidx.numel() and first is not None:
            raise ValueError("first is only used when there are no initial centers; pass first=None")
        first_i = 0 if first is None else int(first)
        if not cidx.numel() and not 0 <= first_i < n:
            raise ValueError(f"first must lie in [0, {n}), got {first_i}")
        check_b(int(b), n - cidx.numel(), f"N={n} minus {cidx.numel()} initial centers")
        return cidx, first_i

    def reset(self) -> None:
        self._call_all("reset")
        self._history = []

    def greedy(self, b: int, centers=None, first: Optional[int] = None,
               progress: Optional[Callable[[int, "RayKCenter"], None]] = None) -> KCenterRun:
        """Exact greedy k-center; same contract (picks, radii) as ``tavaal.ops.kcenter_greedy``."""
        cidx, first_i = self._validate(b, centers, first)
        if self._history:
            self.reset()
        t0 = time.perf_counter()
        init = cidx if cidx.numel() else torch.tensor([first_i])
        best = self._add(self._owner_rows(init), init)
        picks: List[int] = [] if cidx.numel() else [first_i]
        radii = [] if cidx.numel() else [to_radius(best[0], self.metric)]
        while len(picks) < b:
            _, i, row = best
            if progress is not None:
                progress(len(picks), self)
            best = self._add(row.reshape(1, -1), torch.tensor([i]))
            picks.append(i)
            radii.append(to_radius(best[0], self.metric))
        return KCenterRun(torch.tensor(picks, dtype=torch.long), torch.tensor(radii, dtype=torch.float32), "exact",
                          rounds=len(self._history), seconds=time.perf_counter() - t0,
                          covering_radius=radii[-1], stats=self._call_all("stats"), restarts=self.restarts)

    def composable(self, b: int, centers=None, first: Optional[int] = None) -> KCenterRun:
        """Two-round composable core-set (4-approximation; see the module doc). ``radii`` are
        the greedy radii on the union of the local picks; ``covering_radius`` is measured on
        the full pool."""
        cidx, first_i = self._validate(b, centers, first)
        t0 = time.perf_counter()
        init_ids = cidx if cidx.numel() else torch.tensor([first_i])
        init_rows = self._owner_rows(init_ids)
        local = self._call_all("local_greedy", int(b), init_rows, init_ids)
        ids = torch.cat([i for i, _ in local])
        rows = torch.cat([r for _, r in local])
        order = torch.argsort(ids)  # the union in global-id order: ties go to the lower id
        ids, rows = ids[order], rows[order]
        feats = torch.cat([init_rows.to(rows.dtype), rows]).contiguous()
        cmask = torch.zeros(feats.shape[0], dtype=torch.bool)
        cmask[: init_rows.shape[0]] = True
        k = int(b) - (0 if cidx.numel() else 1)
        picks: List[int] = [] if cidx.numel() else [first_i]
        radii_union: List[float] = []
        if k > 0:
            p, r = ops.kcenter_greedy(feats, k, centers=cmask, metric="euclidean")
            picks += ids[p - init_rows.shape[0]].tolist()
            radii_union = r.tolist()
        if self.metric == "cosine":  # Euclidean on normalised rows -> 1 - cos
            radii_union = [x * x / 2.0 for x in radii_union]
        sel = torch.tensor(picks, dtype=torch.long)
        cover = self.covering_radius(torch.cat([cidx, sel]))
        if not cidx.numel():
            radii_union = [float("nan")] + radii_union  # no radius for the given first pick
        return KCenterRun(sel, torch.tensor(radii_union, dtype=torch.float32), "composable", rounds=2,
                          seconds=time.perf_counter() - t0, covering_radius=cover, restarts=self.restarts)

    def covering_radius(self, center_ids: Tensor) -> float:
        """Covering radius ``max_i min_c d(i, c)`` of the full pool by ``center_ids`` (one round)."""
        import ray

        ids = torch.unique(torch.as_tensor(center_ids, dtype=torch.long))
        rows = self._owner_rows(ids)
        d2 = max(self._call_all("covering_d2", ray.put(rows)))
        return to_radius(d2, self.metric)

