"""Connecting to Ray: ``--ray auto|ADDRESS|local:N`` parsing and a scoped ``ray.init``.

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

log = logging.getLogger(__name__)

__all__ = ["RaySpec", "parse_ray_spec", "require_ray", "ray_session", "cluster_cpus"]


@dataclass(frozen=True)
class RaySpec:
    """A parsed ``--ray`` value: ``mode`` is ``"local"``, ``"auto"`` or ``"address"``."""

    mode: str
    num_cpus: Optional[int] = None
    address: Optional[str] = None

    def __str__(self) -> str:
        if self.mode == "local":
            return f"local:{self.num_cpus}"
        return "auto" if self.mode == "auto" else str(self.address)


def parse_ray_spec(value: str) -> RaySpec:
    """Parse ``auto``, ``local:N`` (N >= 1) or an address; ValueError with the accepted forms."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("--ray needs a value: auto, local:N (N CPUs) or a cluster address (ray://host:10001)")
    v = value.strip()
    if v == "auto":
        return RaySpec("auto")
    if v.startswith("local"):
        _, sep, n = v.partition(":")
        if v == "local":
            return RaySpec("local", num_cpus=os.cpu_count() or 1)
        try:
            cpus = int(n) if sep else -1
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
    kwargs = dict(include_dashboard=False, log_to_driver=log_to_driver)
    kwargs.update(init_kwargs)
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


def cluster_cpus() -> int:
    """CPUs the connected cluster offers (at least 1)."""
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def kill_actors(actors) -> None:
    """Kill ``actors`` for good (no restart); actors already gone are ignored."""
    import ray

    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - an actor that already died cannot be killed again
            pass
