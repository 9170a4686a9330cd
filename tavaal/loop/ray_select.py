"""``tavaal select --ray``: score a work directory's pool on Ray actors with the cycle's models,
exported once as TorchScript into ``artifacts_cycle_<c>`` next to its checkpoint (the pool must
be on a filesystem every node sees)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..artifacts import MANIFEST_NAME
from ..distributed.cluster import ray_session
from ..distributed.ray_pool import ScorerSpec, ray_select_from_pool
from ..export import export_run
from .errors import LoopError

__all__ = ["select_on_ray"]


def select_on_ray(root: Path, pool_spec: Dict[str, Any], cycle_record: Dict[str, Any], method: str, budget: int, *,
                  excluded: np.ndarray, subset: int, batch_size: int, ray: str, ray_actors: Optional[int]):
    """The selection of ``budget`` rows of the pool ``pool_spec`` (workdir.json's ``pool``), none of
    the rows ``excluded`` (labeled or pending), with the models of ``cycle_record`` on Ray
    (``ray``: "local:N", "auto" or a cluster address; ``ray_actors`` scoring actors, default the
    cluster's CPUs). Returns the :class:`~tavaal.scoring.Selection`. Raises :class:`LoopError`
    when ray is not installed."""
    if importlib.util.find_spec("ray") is None:  # an optional dependency
        raise LoopError("--ray needs ray: pip install 'tavaal[ray]'")
    checkpoint = root / cycle_record["checkpoint"]
    artifacts = checkpoint.with_name(f"artifacts_cycle_{cycle_record['cycle']:02d}")
    if not (artifacts / MANIFEST_NAME).exists():
        export_run(root, artifacts, checkpoint=checkpoint, formats=("torchscript",))
    image_shape = pool_spec.get("image_shape")
    kwargs = {"key": pool_spec.get("key"), "image_shape": tuple(image_shape) if image_shape else None}
    with ray_session(ray):
        return ray_select_from_pool(ScorerSpec(str(artifacts.resolve()), "torchscript"), pool_spec["path"], method,
                                    budget, labeled=excluded, subset=subset, seed=int(cycle_record["seed"]),
                                    batch_size=batch_size, num_actors=ray_actors, pool_kwargs=kwargs)
