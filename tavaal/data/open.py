"""``open_source``: the row source of a pool, by what its path is (a file, a folder, a sharded
pool or a registered data set -- hence above the registry, outside :mod:`tavaal.data.sources`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from .registry import DATASETS, load_dataset
from .sources import ArraySource, DatasetSource, ImageFolderSource, RowSource, ShardedSource, SourceError

__all__ = ["open_source", "dataset_source"]


def dataset_source(name: str, split: str = "train", data_dir: Optional[str] = None, seed: int = 0,
                   **options) -> DatasetSource:
    """Split ``split`` ("train" or "test") of the registered data set ``name`` (loaded with
    :func:`tavaal.data.load_dataset`) as a :class:`DatasetSource`; :class:`SourceError` when it
    cannot be loaded."""
    if split not in ("train", "test"):
        raise SourceError(f"dataset split must be 'train' or 'test', got {split!r}")
    try:
        bundle = load_dataset(name, data_dir, seed=seed, **options)
    except Exception as exc:  # noqa: BLE001 - reported as a source error
        raise SourceError(f"dataset {name!r}: {exc}") from exc
    return DatasetSource(bundle.train if split == "train" else bundle.test, name=name, split=split)


def open_source(path: Union[str, os.PathLike], *, image_shape: Optional[Sequence[int]] = None,
              key: Optional[str] = None, kind: Optional[str] = None, **dataset_options) -> RowSource:
    """The row source of a pool, by what ``path`` is (raises :class:`SourceError` when it
    cannot be opened):

    * ``dataset:NAME[:train|test]`` (or a registered dataset name that is not an existing
      path): a :class:`DatasetSource` (:func:`dataset_source`);
    * a directory with ``pool.json``: a :class:`ShardedSource`;
    * another directory: an :class:`ImageFolderSource` (decoded to ``image_shape``);
    * ``FILE.npy`` / ``FILE.npz`` (``FILE.npz:KEY`` picks a member): an :class:`ArraySource`.
    """
    text = str(path)
    if text.startswith("dataset:"):
        parts = text.split(":")
        return dataset_source(parts[1], parts[2] if len(parts) > 2 else "train", **dataset_options)
    p = Path(text)
    if not p.exists() and ".npz:" in text:
        file, member = text.rsplit(":", 1)
        return ArraySource(file, key=member, kind=kind or "inputs")
    if not p.exists() and text in DATASETS:
        return dataset_source(text, "train", **dataset_options)
    if not p.exists():
        raise SourceError(f"pool {text} does not exist (give an image folder, a .npy/.npz file, a sharded pool "
                        "directory or dataset:NAME)")
    if p.is_dir():
        if (p / "pool.json").exists():
            pool = ShardedSource(p)
            if kind is not None and pool.kind != kind:
                raise SourceError(f"{p} is a {pool.kind!r} pool, expected {kind!r}")
            return pool
        return ImageFolderSource(p, image_shape)
    if p.suffix in (".npy", ".npz"):
        return ArraySource(p, key=key, kind=kind or "inputs")
    raise SourceError(f"pool {p}: unsupported file type {p.suffix!r} (use .npy, .npz, an image folder or a "
                    "sharded pool directory)")
