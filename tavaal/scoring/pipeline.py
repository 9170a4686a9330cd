"""Streaming selection over a pool: batches in, running top-b through the fused ops, picks out.

Scale-out workers (Ray actors) select on their share of a pool (``start``/``stop`` or
``indices``); partial results merge with :meth:`RunningTopB.merge` / :func:`merge_selections`.

Memory is bounded: at most ``prefetch_depth`` batches are read ahead, the running top-b holds
``budget`` rows, and no N-sized array is built -- except, on request, the ``save_scores``
file (a memory-mapped ``.npy``) and, for embedding methods, the (candidates + labeled) x D
matrix their set operation needs (a temporary memory-mapped file, not RAM).

Candidate sets (the simulation and the loop draw the same ones from the same seed):

* the unlabeled rows of the pool: every row not in ``labeled`` (rows, sorted);
* ``subset=M`` (the paper's subset method): ``rng = np.random.default_rng(seed)``;
  :func:`tavaal.data.candidates.draw_candidates` -- ``pos = rng.choice(n_unlabeled, M,
  replace=False)``; candidates = ``sort(unlabeled[pos])``, computed without materialising the
  unlabeled array;
* a method without a model (random): ``unlabeled[rng.choice(n_unlabeled, budget,
  replace=False)]``;
* core-set without labeled centers: the first pick is ``rng.integers(n_candidates)`` (after
  the subset draw);
* ``exclude`` rows (out for labeling, held out) leave the candidates like ``labeled`` rows,
  but are no core-set centers.

``rng`` (a ``np.random.Generator``) replaces ``default_rng(seed)`` when given: a cycle passes
the generator it drew its candidates with.

Ties are broken by the lower row (the ops' contract) on sorted candidates.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from .. import ops
from ..data.candidates import check_budget, draw_candidates, unlabeled_rows
from ..data.sources import RowSource, SourceError
from ..methods import EmbeddingRule, Method, ScoreRule, get_method, registered_methods
from .backends import Scorer

log = logging.getLogger("tavaal.scoring")

__all__ = ["select_from_pool", "Selection", "RunningTopB", "merge_selections", "checked_budget", "checked_rows",
           "check_pool_kind", "SelectionError"]


class SelectionError(ValueError):
    """Bad request detected before any long work (empty pool, budget, shapes, method)."""


class RunningTopB:
    """The best ``b`` (value, row) pairs seen so far, ordered by (value, row) -- lowest first,
    or highest first with ``largest`` -- plus optional per-row payload tensors (latents).

    ``update`` must see rows in increasing order across calls for ties to resolve to the
    lower row exactly as a single ``ops.topb`` over everything would; ``merge`` (combining
    independent partial results, e.g. from Ray actors) re-sorts by (value, row) and has no
    such requirement."""

    def __init__(self, b: int, largest: bool = False):
        self.b, self.largest = int(b), bool(largest)
        self.values = torch.empty(0, dtype=torch.float32)
        self.rows = torch.empty(0, dtype=torch.int64)
        self.payload: Dict[str, torch.Tensor] = {}

    def update(self, values: torch.Tensor, rows: torch.Tensor, payload: Optional[Dict[str, torch.Tensor]] = None) -> None:
        values = values.to(torch.float32).reshape(-1)
        rows = torch.as_tensor(rows, dtype=torch.int64).reshape(-1)
        if values.numel() == 0:
            return
        cat_v = torch.cat([self.values, values]).contiguous()
        cat_r = torch.cat([self.rows, rows])
        _, pos = ops.topb(cat_v, min(self.b, cat_v.numel()), largest=self.largest)
        self.values, self.rows = cat_v[pos], cat_r[pos]
        for name, t in (payload or {}).items():
            old = self.payload.get(name)
            self.payload[name] = (t if old is None else torch.cat([old, t]))[pos]

    def merge(self, other: "RunningTopB") -> "RunningTopB":
        """Combine two partial results (any row order): exact (value, row) order."""
        out = RunningTopB(self.b, self.largest)
        v = torch.cat([self.values, other.values])
        r = torch.cat([self.rows, other.rows])
        if v.numel() == 0:
            return out
        key = -v.double() if self.largest else v.double()
        order = torch.from_numpy(np.lexsort((r.numpy(), key.numpy()))[: self.b])
        out.values, out.rows = v[order], r[order]
        for name in dict.fromkeys([*self.payload, *other.payload]):  # first-seen order, the same in every process
            parts = [p.payload[name] for p in (self, other) if p.rows.numel() and name in p.payload]
            if all(p.rows.numel() == 0 or name in p.payload for p in (self, other)):
                out.payload[name] = torch.cat(parts)[order]
        return out


@dataclass
class Selection:
    """Result of :func:`select_from_pool`.

    ``rows``: selected global rows, most informative first; ``ids``: their output ids (row
    or file path); ``scores``: D probability (tavaal/vaal, lowest first), predicted loss
    (lloss, highest first), covering radius after the pick (coreset), NaN (random);
    ``latents``: optional ``{"loss", "r", "mu"}`` of the picks; ``timings``: seconds of
    ``load`` (waiting for batches), ``inference``, ``selection`` and ``total``."""

    method: str
    budget: int
    rows: np.ndarray
    ids: List[Union[int, str]]
    scores: np.ndarray
    pool_size: int
    candidates: int
    scored: int
    skipped: List[Dict[str, str]] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    latents: Dict[str, np.ndarray] = field(default_factory=dict)
    scores_file: Optional[str] = None
    backend: str = ""
    precision: str = ""

    @property
    def throughput(self) -> float:
        t = self.timings.get("total", 0.0)
        return self.scored / t if t > 0 else float("nan")

    def summary(self) -> str:
        t = self.timings
        total = max(t.get("total", 0.0), 1e-9)
        split = ", ".join(f"{k} {t.get(k, 0.0):.2f}s ({100.0 * t.get(k, 0.0) / total:.0f}%)"
                          for k in ("load", "inference", "selection"))
        line = (f"{self.method}: selected {len(self.rows)} of {self.candidates} candidates (pool {self.pool_size}); "
                f"scored {self.scored} in {t.get('total', 0.0):.2f}s = {self.throughput:.1f} samples/s "
                f"[{self.backend}/{self.precision}]; {split}")
        if self.skipped:
            line += f"; skipped {len(self.skipped)} unreadable"
        return line

    def records(self) -> List[Dict[str, Any]]:
        out = []
        for k, (row, ident) in enumerate(zip(self.rows.tolist(), self.ids)):
            rec: Dict[str, Any] = {"rank": k, "id": ident, "row": int(row), "score": float(self.scores[k])}
            for name, arr in self.latents.items():
                rec[name] = arr[k].tolist() if arr.ndim > 1 else float(arr[k])
            out.append(rec)
        return out


def merge_selections(parts: Sequence[Selection], budget: int, pool: Optional[RowSource] = None) -> Selection:
    """Merge per-shard :class:`Selection` s of tavaal/vaal/lloss (e.g. from Ray actors working
    on disjoint row ranges) into the global top-``budget``; same result as one process."""
    if not parts:
        raise ValueError("nothing to merge")
    method = parts[0].method
    rule = get_method(method).rule
    if not isinstance(rule, ScoreRule):
        raise ValueError(f"only score-based selections merge exactly, not {method!r}")
    acc = RunningTopB(budget, largest=rule.largest)
    for p in parts:
        part = RunningTopB(budget, acc.largest)
        part.values = torch.from_numpy(np.asarray(p.scores, dtype=np.float32))
        part.rows = torch.from_numpy(np.asarray(p.rows, dtype=np.int64))
        part.payload = {k: torch.from_numpy(np.asarray(v)) for k, v in p.latents.items()}
        acc = acc.merge(part)
    rows = acc.rows.numpy()
    if pool is not None:
        ids = pool.ids_of(rows)
    else:
        lookup = {row: ident for p in parts for row, ident in zip(np.asarray(p.rows).tolist(), p.ids)}
        ids = [lookup[int(r)] for r in rows]
    timings = {k: max(p.timings.get(k, 0.0) for p in parts) for k in ("load", "inference", "selection", "total")}
    return Selection(method, budget, rows, ids, acc.values.numpy(), parts[0].pool_size,
                     sum(p.candidates for p in parts), sum(p.scored for p in parts),
                     [s for p in parts for s in p.skipped], timings, {k: v.numpy() for k, v in acc.payload.items()},
                     None, parts[0].backend, parts[0].precision)


# -------------------------------------------------------------------------------- request checks
def checked_budget(budget, candidates: int, what: str = "candidate samples") -> int:
    """``budget`` as an int (:func:`tavaal.data.candidates.check_budget`); :class:`SelectionError`
    when it is not a positive int or exceeds the ``candidates`` (counted as ``what``)."""
    try:
        return check_budget(budget, candidates, what, hint="lower the budget or give a larger pool")
    except ValueError as exc:
        raise SelectionError(str(exc)) from None


def checked_rows(rows, n: int, what: str = "labeled") -> np.ndarray:
    """``rows`` (any int sequence, or None: none) as sorted distinct int64 rows of a pool of
    ``n``; :class:`SelectionError` naming ``what`` when one lies outside ``[0, n)``."""
    if rows is None:
        return np.empty(0, dtype=np.int64)
    arr = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
    if arr.size and (arr[0] < 0 or arr[-1] >= n):
        raise SelectionError(f"{what} rows must lie in [0, {n}), got range [{arr[0]}, {arr[-1]}]")
    return arr


# ---------------------------------------------------------------------------------- select
def select_from_pool(scorer: Optional[Scorer], pool: RowSource, method: str, budget: int, *,
                     subset: int = 0, seed: int = 0, rng: Optional[np.random.Generator] = None,
                     labeled: Optional[Sequence[int]] = None, exclude: Optional[Sequence[int]] = None,
                     labeled_pool: Optional[RowSource] = None, indices: Optional[np.ndarray] = None,
                     start: int = 0, stop: Optional[int] = None, batch_size: int = 256, num_workers: int = 0,
                     prefetch_depth: int = 2, save_scores: Optional[os.PathLike] = None,
                     with_latents: bool = False, progress: bool = False, metric: str = "euclidean",
                     mc_samples: int = 10) -> Selection:
    """Select ``budget`` rows of ``pool`` with ``method`` using ``scorer``'s models.

    Args:
        scorer: a :class:`Scorer` over artifacts or live models (may be None for ``random``).
        pool: a row source (:func:`tavaal.data.open_source`); ``kind="latents"`` pools (mu, r)
            skip the networks (tavaal/vaal only), ``kind="features"`` pools skip them for coreset.
        method: a name of the registry (:mod:`tavaal.methods`) -- "tavaal" (lowest D(r, mu)), "vaal"
            (lowest D(mu)), "lloss" (highest predicted loss), "coreset" (exact greedy k-center
            against the labeled rows / ``labeled_pool``), "entropy", "mcdropout", "random", ...
        subset: the paper's subset method: score a seeded random subset of M candidate rows.
        seed: seeds the subset, random picks and core-set's first pick (see module docstring).
        rng: a numpy Generator used instead of ``default_rng(seed)``.
        labeled: rows of ``pool`` that are labeled: excluded from the candidates, and the
            initial k-center centers for coreset.
        exclude: further rows to leave out of the candidates (out for labeling, held out).
        labeled_pool: labeled samples outside the pool (coreset centers).
        indices: explicit sorted candidate rows (overrides subset; a cycle's candidates, scale-out workers).
        start, stop: restrict candidates to rows in [start, stop) (scale-out workers).
        batch_size, num_workers, prefetch_depth: reading/inference batching.
        save_scores: write every candidate's score into this ``.npy`` (memory-mapped, N
            float32, NaN where not scored); for embedding methods the (candidates + labeled) x D matrix.
        with_latents: keep loss/r/mu of the picks in ``Selection.latents``.
        metric: k-center distance ("euclidean" or "cosine").
        mc_samples: stochastic passes of mcdropout.

    Raises :class:`SelectionError` (a ValueError) before any inference for: unknown or
    unsupported method, empty pool, fewer candidates than ``budget``, sample shape that does
    not match the models, labeled/excluded rows out of range.
    """
    t_start = time.perf_counter()
    try:
        m = get_method(get_method(method).selection_name)
    except ValueError as exc:
        raise SelectionError(str(exc)) from None
    method = m.name  # a method that selects as another (lloss2 -> lloss) runs and reports that one
    rule = m.rule
    if rule is not None:
        if scorer is None:
            raise SelectionError(f"method {method!r} needs a Scorer")
        try:
            scorer.check_method(method)
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
    n = len(pool)
    if n == 0:
        raise SelectionError(f"the pool {pool.path} is empty: nothing to select from")
    check_pool_kind(scorer, pool, m)
    labeled_rows = checked_rows(labeled, n)
    excluded_rows = np.union1d(labeled_rows, checked_rows(exclude, n, what="excluded"))
    if rng is None:
        rng = np.random.default_rng(seed)
    stop = n if stop is None else min(int(stop), n)
    if indices is not None:
        cand = np.asarray(indices, dtype=np.int64)
        cand = cand[~np.isin(cand, excluded_rows)]
    elif start > 0 or stop < n:
        cand = None
    else:
        cand = draw_candidates(n, excluded_rows, int(subset), rng) if rule is not None else None
    if cand is not None:
        cand = cand[(cand >= start) & (cand < stop)]
        n_cand = int(cand.size)
    else:
        lo, hi = np.searchsorted(excluded_rows, [start, stop])
        n_cand = (stop - start) - int(hi - lo)
    budget = checked_budget(budget, n_cand, f"candidate samples (of {n}, {excluded_rows.size} labeled or excluded"
                                            f"{', subset ' + str(subset) if subset else ''})")

    if rule is None:
        if cand is None and start == 0 and stop == n:
            pos = rng.choice(n - excluded_rows.size, size=budget, replace=False)
            rows = unlabeled_rows(np.asarray(pos), excluded_rows)
        else:
            all_c = cand if cand is not None else np.setdiff1d(np.arange(start, stop), excluded_rows)
            rows = all_c[rng.choice(all_c.size, size=budget, replace=False)]
        total = time.perf_counter() - t_start
        return Selection(method, budget, rows.astype(np.int64), pool.ids_of(rows), np.full(budget, np.nan, np.float32),
                         n, n_cand, 0, [], {"load": 0.0, "inference": 0.0, "selection": total, "total": total},
                         backend=getattr(scorer, "backend", ""), precision=getattr(scorer, "precision", ""))

    iterator = pool.iter_batches(batch_size, start=start, stop=stop, indices=cand,
                                 exclude=excluded_rows if cand is None else None,
                                 prefetch_depth=prefetch_depth, num_workers=num_workers)
    timings = {"load": 0.0, "inference": 0.0, "selection": 0.0}
    with tqdm(total=n_cand, unit="sample", unit_scale=True, desc=f"scoring ({method})", dynamic_ncols=True,
              smoothing=0.1, disable=not progress) as bar:
        if isinstance(rule, EmbeddingRule):
            result = _embedding(m.name, rule, scorer, pool, iterator, n_cand, labeled_rows, labeled_pool, budget, rng, timings,
                                bar, batch_size, save_scores, metric)
        else:
            with _seeded_dropout(scorer, rng) if rule.stochastic else contextlib.nullcontext():
                result = _score_based(rule, scorer, pool, iterator, budget, n, timings, bar, save_scores, with_latents,
                                      mc_samples)
    rows, scores, latents, scored = result
    timings["total"] = time.perf_counter() - t_start
    return Selection(method, budget, rows, pool.ids_of(rows), scores, n, n_cand, scored, list(pool.skipped),
                     timings, latents, None if save_scores is None else str(save_scores), scorer.backend,
                     scorer.precision)


@contextlib.contextmanager
def _seeded_dropout(scorer: Scorer, rng: np.random.Generator):
    """Dropout masks of a stochastic method drawn from torch's generator seeded by the next
    ``rng.integers(2**63 - 1)``, inside ``torch.random.fork_rng`` (the caller's torch random
    state is left as it was): same seed, same picks, in any process."""
    devices = [scorer.device.index or 0] if scorer.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(rng.integers(2**63 - 1)))
        yield


_VECTOR_POOLS = {  # pool kind: (what it is, what its rows are, manifest size, which rules it serves)
    "latents": ("a latents pool ((mu, r) per row)", "mu", "latent", lambda r: isinstance(r, ScoreRule) and r.fused),
    "features": ("a features pool", "features", "feature",
                 lambda r: isinstance(r, EmbeddingRule) and r.graph == "features"),
}


def check_pool_kind(scorer: Optional[Scorer], pool: RowSource, method: Method) -> None:
    """:class:`SelectionError` unless ``pool``'s rows can feed ``method`` with ``scorer``'s models:
    a ``latents`` pool ((mu, r) per row) feeds the fused discriminator methods, a ``features``
    pool the embedding methods on the ``features`` graph, an ``inputs`` pool any method whose
    sample shape matches the models."""
    if method.rule is None:
        return
    if pool.kind in _VECTOR_POOLS:
        label, rows_are, size, serves = _VECTOR_POOLS[pool.kind]
        if not serves(method.rule):
            names = "/".join(m.name for m in registered_methods() if serves(m.rule))
            raise SelectionError(f"{label} only serves {names}, not {method.name!r}")
        d = scorer.manifest.get(f"{size}_dim")
        if tuple(pool.sample_shape) != (d,):
            raise SelectionError(f"the {pool.kind} pool has {rows_are} of shape {list(pool.sample_shape)} but the "
                                 f"artifacts' {size} size is {d}")
    else:
        try:
            scorer.check_sample_shape(pool.sample_shape, what=f"pool {pool.path}:")
        except ValueError as exc:
            raise SelectionError(str(exc)) from None


def _timed(batches, timings):
    """The non-empty ``(rows, batch)`` items of ``batches``; the waits add to ``timings["load"]``."""
    batches = iter(batches)
    while True:
        t0 = time.perf_counter()
        item = next(batches, None)
        timings["load"] += time.perf_counter() - t0
        if item is None:
            return
        if len(item[0]):
            yield item


def _score_based(m: ScoreRule, scorer: Scorer, pool: RowSource, iterator, budget, n, timings, bar, save_scores,
                 with_latents, mc_samples):
    top = RunningTopB(budget, largest=m.largest)
    disc = scorer.discriminator if m.fused else None
    rank_cond = bool(disc is not None and disc.rank_conditioned)
    scores_mm = None
    if save_scores is not None:
        scores_mm = np.lib.format.open_memmap(str(save_scores), mode="w+", dtype=np.float32, shape=(n,))
        scores_mm[:] = np.nan
    scored = 0
    for rows, batch in _timed(iterator, timings):
        t0 = time.perf_counter()
        if pool.kind == "latents":
            mu, r = batch
            if rank_cond and r is None:
                raise SourceError(f"{pool.path}: the latents pool has no r but the discriminator is rank-conditioned")
            out = {"mu": mu.to(torch.float32).contiguous()}
            if r is not None:
                out["r"] = r.to(torch.float32)
        elif m.stochastic:
            out = {"probs_samples": scorer.mc_probs_batch(batch, mc_samples)}
        else:
            out = scorer.run_graph(m.graph, batch)
        t1 = time.perf_counter()
        timings["inference"] += t1 - t0
        k = min(budget, len(rows))
        rows_np = np.asarray(rows, dtype=np.int64)
        if m.fused:
            r = out.get("r") if rank_cond else None
            res = ops.score_topb(out["mu"].contiguous(), None if r is None else r.contiguous(), disc, k,
                                 return_scores=scores_mm is not None)
            v, pos = res[0], res[1]
            batch_scores = res[2] if scores_mm is not None else None
        else:
            batch_scores = m.score(out).to(torch.float32).contiguous()
            v, pos = ops.topb(batch_scores, k, largest=m.largest)
        payload = {name: out[name][pos] for name in ("loss", "r", "mu") if name in out} if with_latents else None
        top.update(v, torch.from_numpy(rows_np)[pos], payload)
        if scores_mm is not None:
            scores_mm[rows_np] = batch_scores.numpy()
        timings["selection"] += time.perf_counter() - t1
        scored += len(rows)
        bar.update(len(rows))
        if pool.skipped:
            bar.set_postfix(skipped=len(pool.skipped), refresh=False)
    if scores_mm is not None:
        scores_mm.flush()
        del scores_mm
    if top.rows.numel() < budget:
        raise SelectionError(f"only {top.rows.numel()} samples could be scored ({len(pool.skipped)} unreadable) "
                             f"but the budget is {budget}")
    return top.rows.numpy(), top.values.numpy(), {k: v.numpy() for k, v in top.payload.items()}, scored


def _embedding(name: str, m: EmbeddingRule, scorer, pool, iterator, n_cand, labeled_rows, labeled_pool, budget, rng, timings,
               bar, batch_size, save_scores, metric):
    """Embed the candidates (then the labeled rows, for methods that use them as centers) into
    a memory-mapped (rows, D) matrix, then run the method's set selection on it."""
    use_labeled = m.uses_labeled
    n_lab_ext = len(labeled_pool) if (labeled_pool is not None and use_labeled) else 0
    total_rows = n_cand + (labeled_rows.size if use_labeled else 0) + n_lab_ext
    tmpdir = None
    if save_scores is not None:
        path = str(save_scores)
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix=f"tavaal-{name}-")
        path = os.path.join(tmpdir.name, "features.npy")
    feats = None
    fill = 0

    def embed(src, batches, progress=None) -> List[np.ndarray]:
        """Embed the batches of ``src`` (timed as inference) into the matrix; the rows read."""
        nonlocal feats, fill
        read = []
        for rows, batch in _timed(batches, timings):
            t0 = time.perf_counter()
            if src.kind == "features":
                f = batch.to(torch.float32)
            else:
                f = m.embed(scorer.run_graph(m.graph, batch)).to(torch.float32)
            timings["inference"] += time.perf_counter() - t0
            if feats is None:
                feats = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(total_rows, int(f.shape[1])))
            feats[fill:fill + len(f)] = f.numpy()
            fill += len(f)
            read.append(np.asarray(rows, dtype=np.int64))
            if progress is not None:
                progress.update(len(rows))
        return read

    try:
        cand_rows = embed(pool, iterator, bar)
        n_good = fill
        if n_good < budget:
            raise SelectionError(f"only {n_good} samples could be read ({len(pool.skipped)} unreadable) but "
                                 f"the budget is {budget}")
        if use_labeled:  # labeled rows of the pool, then an external labeled pool: the initial centers
            if labeled_rows.size:
                embed(pool, pool.iter_batches(batch_size, indices=labeled_rows))
            if labeled_pool is not None:
                if labeled_pool.kind == "inputs":
                    scorer.check_sample_shape(labeled_pool.sample_shape, what=f"labeled pool {labeled_pool.path}:")
                embed(labeled_pool, labeled_pool.iter_batches(batch_size))
        t0 = time.perf_counter()
        features = torch.from_numpy(feats[:fill])
        centers = torch.arange(n_good, fill, dtype=torch.int64) if fill > n_good else None
        picks, values = m.select(features, budget, centers=centers, rng=rng, metric=metric,
                                 num_classes=scorer.manifest.get("num_classes"))
        rows = np.concatenate(cand_rows)[np.asarray(picks, dtype=np.int64)]
        timings["selection"] += time.perf_counter() - t0
        del features
        feats.flush()
        return rows, np.asarray(values, dtype=np.float32), {}, n_good
    finally:
        del feats
        if tmpdir is not None:
            tmpdir.cleanup()
