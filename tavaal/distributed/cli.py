"""The ``--ray`` options of ``python -m tavaal.score`` (wired in by :mod:`tavaal.score`).

``--ray local:N`` starts a private local Ray instance with N CPUs, ``--ray auto`` joins the
cluster of this machine, anything else is a cluster address. tavaal/vaal/lloss pools are
scored by actors (:mod:`.ray_pool`), coreset on a ``features`` pool runs the exact
distributed greedy (:mod:`.ray_kcenter`). Outputs are written to temporary files and
renamed into place only once every work unit has completed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..methods import EmbeddingRule, get_method
from ..scoring import Selection, SelectionError, check_pool_kind, checked_budget, checked_rows, open_source
from .cluster import parse_ray_spec, ray_session
from .ray_kcenter import RayKCenter
from .ray_pool import ScorerSpec, ray_select_from_pool

__all__ = ["add_ray_arguments", "select_with_ray"]


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray scale-out (pip install 'tavaal[ray]'; see docs/scale-out.md)")
    g.add_argument("--ray", default=None, metavar="auto|ADDRESS|local:N",
                   help="score the pool with Ray actors: local:N starts a local Ray with N CPUs, auto joins this "
                        "machine's cluster, ADDRESS (ray://head:10001) a remote one")
    g.add_argument("--ray-actors", type=int, default=None,
                   help="number of scoring actors (default: cluster CPUs / --ray-cpus-per-actor)")
    g.add_argument("--ray-cpus-per-actor", type=float, default=1.0, help="CPUs reserved per actor (also its threads)")
    g.add_argument("--ray-gpus-per-actor", type=float, default=0.0,
                   help="GPUs reserved per actor (> 0: the actor's Scorer runs on cuda)")
    g.add_argument("--ray-rows-per-unit", type=int, default=None,
                   help="pool rows per work unit (default: candidates / (4 x actors), at most 2^20)")
    g.add_argument("--ray-max-restarts", type=int, default=3, help="Ray restarts of a dead actor before it is replaced")


def _fail_run(msg: str) -> "SystemExit":
    print(f"error: {msg}", file=sys.stderr)
    return SystemExit(1)


def select_with_ray(args, method: str, labeled, labeled_pool, backend: str):
    """Run the selection of ``python -m tavaal.score`` on Ray; returns a ``Selection``.

    Bad requests raise ``SelectionError``/``ValueError`` (exit code 2 in the CLI); a failed
    cluster run exits with code 1 and nothing written."""
    spec = parse_ray_spec(args.ray)
    if args.ray_actors is not None and args.ray_actors < 1:
        raise SelectionError(f"--ray-actors must be >= 1, got {args.ray_actors}")
    rule = get_method(method).rule
    if rule is None:
        raise SelectionError(f"--method {method} does not score anything: run it without --ray")
    if labeled_pool is not None:
        raise SelectionError("--labeled with a pool of samples is not supported with --ray (give labeled ids)")
    scorer_spec = ScorerSpec(str(Path(args.artifacts).resolve()), backend, args.precision, args.device,
                             verify=not args.no_verify)
    pool_path = args.pool
    if os.path.exists(pool_path):
        pool_path = str(Path(pool_path).resolve())  # actors may run in another working directory
    pool_kwargs = {"key": args.key} if args.key else {}
    try:
        import ray  # noqa: F401
    except ImportError:
        raise _fail_run("--ray needs ray: pip install 'tavaal[ray]'") from None
    try:
        with ray_session(spec):
            if isinstance(rule, EmbeddingRule) and rule.graph == "features" and rule.uses_labeled:
                return _coreset_with_ray(args, method, scorer_spec, pool_path, labeled, pool_kwargs)
            return ray_select_from_pool(
                scorer_spec, pool_path, method, args.budget, labeled=labeled, subset=args.subset, seed=args.seed,
                batch_size=args.batch_size, with_latents=args.with_latents, num_actors=args.ray_actors,
                cpus_per_actor=args.ray_cpus_per_actor, gpus_per_actor=args.ray_gpus_per_actor,
                rows_per_unit=args.ray_rows_per_unit, max_restarts=args.ray_max_restarts, pool_kwargs=pool_kwargs)
    except ValueError:  # SelectionError and bad values: exit code 2 in the CLI
        raise
    except Exception as exc:  # ray.exceptions.* too (RayError is not a RuntimeError)
        if isinstance(exc, (RuntimeError, ConnectionError, OSError)) or type(exc).__module__.startswith("ray"):
            raise _fail_run(f"the Ray run failed, nothing was written: {type(exc).__name__}: {exc}") from exc
        raise


def _coreset_with_ray(args, method, scorer_spec, pool_path, labeled, pool_kwargs):
    """Exact distributed greedy k-center on a ``features`` pool: the same picks as the
    single-process core-set (labeled rows as centers, else the seeded first pick)."""
    t0 = time.perf_counter()
    pool = open_source(pool_path, **pool_kwargs)
    if pool.kind != "features":
        raise SelectionError(f"--ray with --method {method} needs a features pool (kind 'features': precomputed "
                             "penultimate features, e.g. written with tavaal.scoring.write_sharded_pool)")
    if args.subset:
        raise SelectionError("--subset is not supported by the distributed coreset")
    scorer = scorer_spec.build()
    check_pool_kind(scorer, pool, get_method(method))
    n = len(pool)
    lab = checked_rows(labeled, n)
    checked_budget(args.budget, n - lab.size, f"candidate samples (of {n}, {lab.size} labeled)")
    first = None if lab.size else int(np.random.default_rng(args.seed).integers(n))
    with RayKCenter(pool_path, num_shards=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor,
                    gpus_per_actor=args.ray_gpus_per_actor, max_restarts=args.ray_max_restarts) as kc:
        run = kc.greedy(args.budget, centers=torch.from_numpy(lab) if lab.size else None, first=first)
    rows = run.indices.numpy()
    timings = {"load": 0.0, "inference": 0.0, "selection": run.seconds, "total": time.perf_counter() - t0}
    sel = Selection(method, args.budget, rows, pool.ids_of(rows), run.radii.numpy(), n, n - lab.size, n - lab.size,
                    [], timings, {}, None, scorer.backend, scorer.precision)
    sel.ray = run  # type: ignore[attr-defined]
    return sel
