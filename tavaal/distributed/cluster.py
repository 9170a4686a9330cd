"""Connecting to Ray (``--ray auto|ADDRESS|local:N``) and the actor plumbing the drivers share.

* ``local:N``  starts a private local Ray instance with N CPUs (and shuts it down afterwards);
* ``auto``     connects to the cluster this machine belongs to (``ray.init(address="auto")``,
  i.e. ``ray start --head`` was run here or ``RAY_ADDRESS`` is set);
* anything else is passed as the address (``ray://head:10001`` for Ray Client, or
  ``head-ip:6379`` for a direct connection from a node of the cluster).

When Ray is already initialised in this process (a notebook, a test fixture), the existing
connection is reused and left open.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Iterator, Optional

import torch

log = logging.getLogger(__name__)

__all__ = ["RaySpec", "parse_ray_spec", "require_ray", "ray_session", "ActorGroup", "Worker"]


@dataclass(frozen=True)
class RaySpec:
    """A parsed ``--ray`` value: ``mode`` is ``"local"``, ``"auto"`` or ``"address"``."""

    mode: str
    num_cpus: Optional[int] = None
    address: Optional[str] = None


def parse_ray_spec(value: str) -> RaySpec:
    """Parse ``auto``, ``local:N`` (N >= 1) or an address; ValueError with the accepted forms."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("--ray needs a value: auto, local:N (N CPUs) or a cluster address (ray://host:10001)")
    v = value.strip()
    if v == "auto":
        return RaySpec("auto")
    if v == "local":
        return RaySpec("local", num_cpus=os.cpu_count() or 1)
    if v.startswith("local:"):  # not "localhost:6379", an address
        try:
            cpus = int(v[len("local:"):])
        except ValueError:
            cpus = -1
        if cpus < 1:
            raise ValueError(f"--ray {value!r}: expected local:N with N >= 1 CPUs, e.g. local:2")
        return RaySpec("local", num_cpus=cpus)
    if ":" not in v and not v.startswith("ray://"):
        raise ValueError(f"--ray {value!r}: expected auto, local:N or an address such as ray://head:10001 or 10.0.0.1:6379")
    return RaySpec("address", address=v)


def require_ray():
    """Import ray or raise an ImportError that says how to install it."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the Ray scale-out needs ray: pip install 'tavaal[ray]' (or pip install 'ray[default]')") from exc
    return ray


@contextlib.contextmanager
def ray_session(spec, log_to_driver: bool = False, **init_kwargs) -> Iterator[RaySpec]:
    """Connect to Ray for the duration of a ``with`` block.

    ``spec`` is a :class:`RaySpec` or a ``--ray`` string. Shuts Ray down on exit only when this
    call started the connection. ``runtime_env`` (e.g. ``{"working_dir": ...}``) and other
    ``ray.init`` keyword arguments are passed through.
    """
    ray = require_ray()
    if isinstance(spec, str):
        spec = parse_ray_spec(spec)
    if ray.is_initialized():
        log.info("reusing the existing Ray connection")
        yield spec
        return
    kwargs = {"include_dashboard": False, "log_to_driver": log_to_driver, **init_kwargs}
    if spec.mode == "local":
        ray.init(num_cpus=spec.num_cpus, **kwargs)
    elif spec.mode == "auto":
        ray.init(address="auto", **kwargs)
    else:
        kwargs.pop("include_dashboard", None)
        ray.init(address=spec.address, **kwargs)
    try:
        yield spec
    finally:
        ray.shutdown()


def schedule_timeout() -> float:
    """Seconds to wait for an actor to be placed (``TAVAAL_RAY_SCHEDULE_TIMEOUT``, default 300)."""
    return float(os.environ.get("TAVAAL_RAY_SCHEDULE_TIMEOUT", "300"))


def kill_actors(actors) -> None:
    """Kill ``actors`` for good (no restart); actors already gone are ignored."""
    import ray

    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - an actor that already died cannot be killed again
            pass


class Worker:
    """Base of the actor bodies: torch runs with ``threads`` intra-op threads; ``ping``
    (answered once the actor is placed) and the test hook ``crash_once = (marker file, step)``:
    the process dies once, at that step."""

    def __init__(self, threads: int = 1, crash_once: Optional[tuple] = None):
        torch.set_num_threads(threads)
        self._crash_once = crash_once

    def ping(self) -> int:
        return os.getpid()

    def _maybe_crash(self, step: int) -> None:
        if self._crash_once is not None:
            marker, at = self._crash_once
            if step == at and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)


def connected_ray():
    """``ray``, which must be initialised in this process (RuntimeError otherwise)."""
    ray = require_ray()
    if not ray.is_initialized():
        raise RuntimeError("Ray is not initialised: use tavaal.distributed.ray_session(...) or ray.init()")
    return ray


def default_actors(cpus_per_actor: float) -> int:
    """The cluster's CPUs / ``cpus_per_actor`` (at least 1)."""
    cpus = max(1, int(require_ray().cluster_resources().get("CPU", 1)))
    return max(1, int(cpus // max(cpus_per_actor, 1e-9)))


class ActorGroup:
    """Base of the drivers: Ray actors of one :class:`Worker` class with the same resources,
    killed by :meth:`shutdown` or on leaving the ``with`` block. Subclasses define
    ``_spawn(k)``: a new actor for slot ``k``, from ``self._remote`` and ``self._threads``."""

    actors: list

    def _start(self, body: type, count: int, cpus_per_actor: float, gpus_per_actor: float, max_restarts: int):
        """Start ``count`` actors and wait until all are placed: RuntimeError (and no actor
        left behind) when the cluster cannot place them within :func:`schedule_timeout`."""
        import ray

        # never auto-retry a call: the driver re-submits or replays it, so it knows and counts
        self._remote = ray.remote(body).options(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor,
                                                max_restarts=int(max_restarts), max_task_retries=0)
        self._threads = max(1, int(cpus_per_actor))
        self.actors = [self._spawn(k) for k in range(count)]
        timeout = schedule_timeout()
        try:
            refs = [a.ping.remote() for a in self.actors]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            if len(ready) < len(refs):
                res = ray.cluster_resources()
                raise RuntimeError(
                    f"only {len(ready)} of {len(refs)} Ray actors started within {timeout:.0f}s: each asks for "
                    f"{cpus_per_actor} CPU{f' and {gpus_per_actor} GPU' if gpus_per_actor else ''}, the cluster "
                    f"has {res.get('CPU', 0):g} CPU / {res.get('GPU', 0):g} GPU in total. Use fewer actors "
                    "(--ray-actors), smaller --ray-cpus-per-actor, or a bigger cluster")
            ray.get(refs)
        except BaseException:
            self.shutdown()
            raise

    def _replace(self, k: int) -> None:
        """A fresh actor in slot ``k`` (the old one killed for good)."""
        kill_actors([self.actors[k]])
        self.actors[k] = self._spawn(k)

    def shutdown(self) -> None:
        kill_actors(self.actors)
        self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
