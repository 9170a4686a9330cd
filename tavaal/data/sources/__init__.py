"""Row sources: how the samples of a pool are read -- image folders, ``.npy``/``.npz`` arrays,
sharded pool directories and the datasets of :func:`tavaal.data.load_dataset` -- by training,
selection and scoring alike, in bounded memory. The *label state* (which rows are labeled, with
what label) is :class:`tavaal.data.Pool` or the labeling loop's work directory, never the source.

Every source has ``len(source)``, ``sample_shape``, ``dtype`` (a string: "float32", "float16",
"bfloat16", "uint8"), ``kind`` ("inputs", "latents" or "features") and:

* stable ids: ``source.id_of(row)`` -- the row number itself, or for image folders the file's
  POSIX path relative to the folder root; ``source.rows_of(ids)`` is the inverse (raises
  :class:`SourceError` listing unknown ids);
* ``read_rows(rows)``: the samples of ``rows`` (any order, repeats allowed) as one batch;
* ``iter_batches(batch_size, start=0, stop=None, indices=None, exclude=None, prefetch_depth=2,
  num_workers=0)`` yielding ``(rows, batch)``.

Training reads a source through :class:`SourceDataset` (or :class:`MaskSourceDataset` for label
masks), a torch ``Dataset`` indexed by global row that reads only the rows asked for.

Batches: ``rows`` is an ``np.int64`` array of global row numbers (array row, shard-concatenated
row, index in the sorted file list of an image folder); ``batch`` a CPU ``torch.Tensor`` (B,
*sample_shape) of the source's dtype (uint8 images are *not* normalised here), for ``kind ==
"latents"`` a tuple ``(mu, r)`` (r is None for pools without ranks).

``iter_batches`` yields rows in increasing order (``indices`` must be sorted); ``exclude``
(sorted int array) drops rows, e.g. the labeled set. Batches are read ahead by a background
thread (arrays) or DataLoader worker processes (image folders), never more than ``prefetch``
at a time. Images that cannot be decoded are skipped and recorded in ``source.skipped``
(``[{"id": relative path, "error": "..."}]``), never raised, while scoring; training views skip
and record them too, or raise :class:`UnreadableRowsError` under ``on_unreadable="error"``.
:func:`find_unreadable` checks a whole folder up front, in parallel worker processes.

Sharded pool directory (``pool.json``)::

    {"format": "tavaal-sharded-pool", "version": 1, "kind": "inputs"|"latents"|"features",
     "dtype": "float32"|"float16"|"bfloat16"|"uint8", "sample_shape": [...],
     "shards": [{"file": "shard_00000.npy", "rows": n}, ...], "rows": N}

Each shard is an ``.npy`` file, memory-mapped on read (bfloat16 is stored as uint16 and
reinterpreted); latent pools keep r beside mu in ``shard_00000.r.npy`` (float32, (n,)).
:func:`write_sharded_pool` or :class:`ShardedPoolWriter` writes one. ``open_source`` (a pool
by its path) is :mod:`tavaal.data.open`.
"""
from __future__ import annotations

from .arrays import ArraySource
from .base import Batch, RowSource, SourceError, prefetch
from .dataset import DatasetSource
from .images import (ImageFolderSource, ImageShapeChoice, check_channels, choose_image_shape, decode_workers,
                     find_unreadable, list_image_files, read_unreadable, write_unreadable)
from .sharded import POOL_FORMAT, POOL_VERSION, ShardedPoolWriter, ShardedSource, write_sharded_pool
from .stats import channel_stats
from .views import ON_UNREADABLE, ItemwiseView, MaskSourceDataset, SourceDataset, UnreadableRowsError

__all__ = [
    "SourceError", "RowSource", "Batch", "ArraySource", "ShardedSource", "ImageFolderSource", "DatasetSource",
    "write_sharded_pool", "ShardedPoolWriter", "prefetch", "POOL_FORMAT", "POOL_VERSION", "SourceDataset",
    "MaskSourceDataset", "channel_stats", "ItemwiseView", "ImageShapeChoice", "choose_image_shape", "decode_workers",
    "find_unreadable", "list_image_files", "check_channels", "read_unreadable", "write_unreadable", "ON_UNREADABLE",
    "UnreadableRowsError",
]
