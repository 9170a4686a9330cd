"""The one selection path: score a pool's rows with models and select the next batch.

Used by the simulated cycle (the strategies), the labeling loop and ``python -m tavaal.score``.

* :mod:`.backends` -- :class:`Scorer`: exported artifacts (ONNX Runtime / TorchScript /
  eager, fp32 / bf16, :meth:`Scorer.from_artifacts`) or live in-process models
  (:meth:`Scorer.from_models`) behind one interface;
* :mod:`.methods` -- the selection methods (per-row scores with a running top-b, or
  embeddings with a set op such as k-center greedy), one registry;
* :mod:`.pipeline` -- :func:`select_from_pool`: the streaming batch -> running top-b pipeline,
  plus :class:`RunningTopB` / :func:`merge_selections` to combine partial results.

The rows come from a row source (:mod:`tavaal.data.sources`, re-exported here: ``open_source``,
``write_sharded_pool``, ...).

>>> from tavaal.scoring import Scorer, open_source, select_from_pool   # doctest: +SKIP
>>> scorer = Scorer.from_artifacts("artifacts", backend="onnx")      # doctest: +SKIP
>>> sel = select_from_pool(scorer, open_source("pool.npy"), "tavaal", budget=1000)  # doctest: +SKIP
>>> sel.ids[:3], sel.summary()                                         # doctest: +SKIP
"""
from .backends import BACKENDS, PRECISIONS, Scorer, describe_models
from .methods import (EmbeddingMethod, ScoreMethod, get_method, method_names, register_method,
                      supported_methods)
from .pipeline import (METHODS, RunningTopB, Selection, SelectionError, candidate_rows, merge_selections,
                       select_from_pool)
from ..data.sources import (ArraySource, DatasetSource, ImageFolderSource, RowSource, ShardedPoolWriter,
                            ShardedSource, SourceError, open_source, prefetch, write_sharded_pool)

__all__ = [
    "Scorer", "BACKENDS", "PRECISIONS", "describe_models",
    "ScoreMethod", "EmbeddingMethod", "get_method", "method_names", "register_method", "supported_methods",
    "select_from_pool", "Selection", "SelectionError", "RunningTopB", "merge_selections", "candidate_rows", "METHODS",
    "open_source", "write_sharded_pool", "ShardedPoolWriter", "RowSource", "ArraySource", "ShardedSource",
    "ImageFolderSource", "DatasetSource", "SourceError", "prefetch",
]
