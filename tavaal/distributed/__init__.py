"""Scale-out of tavaal's scoring and selection on Ray (optional extra ``tavaal[ray]``).

* :mod:`.cluster`      -- ``--ray auto|ADDRESS|local:N`` parsing and a scoped ``ray.init``;
* :mod:`.ray_pool`     -- pool scoring by Ray actors (artifacts loaded once per actor), each
  returning its local top-b, merged into the exact global top-b on the driver;
* :mod:`.ray_kcenter`  -- exact distributed greedy k-center (feature shards held by actors,
  one synchronisation round per pick) and the 2-round composable core-set;
* :mod:`.kcenter_state` -- the incremental, pruned, exact min-distance state of one shard.

Importing this package does not import Ray; the functions that need it import it lazily
and say how to install it when it is missing. See docs/scale-out.md.
"""
from .cluster import RaySpec, parse_ray_spec, ray_session, require_ray
from .kcenter_state import ShardKCenter
from .ray_kcenter import KCenterRun, RayKCenter, merge_best

__all__ = [
    "RaySpec", "parse_ray_spec", "ray_session", "require_ray",
    "ShardKCenter", "RayKCenter", "KCenterRun", "merge_best",
]
