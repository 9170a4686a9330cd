"""Selection ops of tavaal: top-b, exact greedy k-center, fused discriminator scoring + top-b.

Backed by the C++/CUDA extension ``tavaal._C`` (``torch.ops.tavaal.*``, also callable from
TorchScript and C++) when it is built, else by the pure-torch reference in
:mod:`tavaal.ops.reference` (with one warning). See ``docs/ops.md``.

>>> import torch, tavaal.ops as ops
>>> values, indices = ops.topb(torch.tensor([3.0, 1.0, 2.0]), 2)
>>> indices.tolist()
[1, 2]
"""
from .api import backend, extension_error, kcenter_greedy, score_topb, topb

__all__ = ["topb", "kcenter_greedy", "score_topb", "backend", "extension_error"]
