"""Scoring large unlabeled pools with exported artifacts (``python -m tavaal.score``).

* :mod:`.pools` -- pool readers (image folders, ``.npy``/``.npz``, sharded pool directories,
  datasets): ``open_pool(path)``, ``write_sharded_pool``, ``ShardedPoolWriter``;
* :mod:`.backends` -- :class:`Scorer` (ONNX Runtime / TorchScript / eager, fp32 / bf16);
* :mod:`.pipeline` -- :func:`select_from_pool`: the streaming batch -> running top-b pipeline,
  plus :class:`RunningTopB` / :func:`merge_selections` to combine partial results.

>>> from tavaal.scoring import Scorer, open_pool, select_from_pool   # doctest: +SKIP
>>> scorer = Scorer.from_artifacts("artifacts", backend="onnx")      # doctest: +SKIP
>>> sel = select_from_pool(scorer, open_pool("pool.npy"), "tavaal", budget=1000)  # doctest: +SKIP
>>> sel.ids[:3], sel.summary()                                         # doctest: +SKIP
"""
from .backends import BACKENDS, METHOD_GRAPHS, PRECISIONS, Scorer
from .pipeline import (METHODS, RunningTopB, Selection, SelectionError, candidate_rows, merge_selections,
                       select_from_pool)
from .pools import (ArrayPool, BasePool, DatasetPool, ImageFolderPool, PoolError, ShardedPool, ShardedPoolWriter,
                    open_pool, prefetch, write_sharded_pool)

__all__ = [
    "Scorer", "BACKENDS", "PRECISIONS", "METHOD_GRAPHS",
    "select_from_pool", "Selection", "SelectionError", "RunningTopB", "merge_selections", "candidate_rows", "METHODS",
    "open_pool", "write_sharded_pool", "ShardedPoolWriter", "BasePool", "ArrayPool", "ShardedPool",
    "ImageFolderPool", "DatasetPool", "PoolError", "prefetch",
]
