"""The one selection path: score a pool's rows with models and select the next batch.

Used by the cycle (the simulation and the labeling loop, through
:func:`tavaal.cycle.select_batch`), ``python -m tavaal.score`` and the Ray workers.

* :mod:`.graphs` -- the scoring graphs over a cycle's models (what the export writes);
* :mod:`.backends` -- :class:`Scorer`: exported artifacts (ONNX Runtime / TorchScript /
  eager, fp32 / bf16, :meth:`Scorer.from_artifacts`) or live in-process models
  (:meth:`Scorer.from_models`) behind one interface;
* :mod:`.pipeline` -- :func:`select_from_pool`: the streaming batch -> running top-b pipeline
  running a method's rule (:mod:`tavaal.methods`), plus :class:`RunningTopB` /
  :func:`merge_selections` to combine partial results.

The rows come from a row source (:mod:`tavaal.data.sources`, re-exported here: ``open_source``,
``write_sharded_pool``, ...).

>>> from tavaal.scoring import Scorer, open_source, select_from_pool   # doctest: +SKIP
>>> scorer = Scorer.from_artifacts("artifacts", backend="onnx")      # doctest: +SKIP
>>> sel = select_from_pool(scorer, open_source("pool.npy"), "tavaal", budget=1000)  # doctest: +SKIP
>>> sel.ids[:3], sel.summary()                                         # doctest: +SKIP
"""
from .backends import BACKENDS, PRECISIONS, Scorer, describe_models
from .graphs import build_graphs, cycle_graphs, quiet_torch_deprecations
from .pipeline import (RunningTopB, Selection, SelectionError, check_pool_kind, checked_budget, checked_rows,
                       merge_selections, select_from_pool)
from ..data.open import open_source
from ..data.sources import (ArraySource, DatasetSource, ImageFolderSource, RowSource, ShardedPoolWriter,
                            ShardedSource, SourceError, prefetch, write_sharded_pool)

__all__ = [
    "Scorer", "BACKENDS", "PRECISIONS", "describe_models", "build_graphs", "cycle_graphs", "quiet_torch_deprecations",
    "select_from_pool", "Selection", "SelectionError", "RunningTopB", "merge_selections", "checked_budget",
    "checked_rows", "check_pool_kind",
    "open_source", "write_sharded_pool", "ShardedPoolWriter", "RowSource", "ArraySource", "ShardedSource",
    "ImageFolderSource", "DatasetSource", "SourceError", "prefetch",
]
