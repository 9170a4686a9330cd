"""The one selection path: score a pool's rows with models and select the next batch.

Used by the cycle (the simulation and the labeling loop, through
:func:`tavaal.cycle.select_batch`), ``python -m tavaal.score`` and the Ray workers.

:mod:`.graphs` (the scoring graphs the export writes), :mod:`.backends` (:class:`Scorer`:
artifacts or live models behind one interface), :mod:`.pipeline` (:func:`select_from_pool`,
running a :mod:`tavaal.methods` rule). The row sources of :mod:`tavaal.data.sources` are
re-exported here.

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
