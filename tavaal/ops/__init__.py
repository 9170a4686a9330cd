"""Selection ops of tavaal: top-b, exact greedy k-center, fused discriminator scoring + top-b.

Backed by the compiled C++/CUDA ops (``torch.ops.tavaal.*``, also callable from TorchScript
and C++: ``tavaal._C`` built at install time, else a cached just-in-time build, see
:mod:`tavaal.ops.build`), else by the pure-torch reference in
:mod:`tavaal.ops.reference` (with one warning). See ``docs/ops.md``.

>>> import torch, tavaal.ops as ops
>>> values, indices = ops.topb(torch.tensor([3.0, 1.0, 2.0]), 2)
>>> indices.tolist()
[1, 2]
"""
from .api import backend, extension_error, extension_origin, kcenter_greedy, score_topb, topb
from .kmeanspp import kmeanspp

__all__ = ["topb", "kcenter_greedy", "score_topb", "kmeanspp", "backend", "extension_error", "extension_origin"]
