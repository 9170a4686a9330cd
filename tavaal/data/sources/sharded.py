"""Sharded pool directories (``pool.json`` + ``.npy`` shards): the source and its writer."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ...rundir import read_json, write_json
from .base import DTYPES, KINDS, RowSource, SourceError
from .mapped import gather_rows, release_pages, to_tensor

__all__ = ["ShardedSource", "ShardedPoolWriter", "write_sharded_pool", "POOL_FORMAT", "POOL_VERSION"]

POOL_FORMAT = "tavaal-sharded-pool"
POOL_VERSION = 1


class ShardedSource(RowSource):
    """A sharded pool directory (``pool.json`` + ``.npy`` shards, memory-mapped)."""

    def __init__(self, directory: os.PathLike):
        super().__init__()
        self.path = Path(directory)
        meta_path = self.path / "pool.json"
        try:
            meta = read_json(meta_path)
        except (OSError, json.JSONDecodeError) as exc:
            raise SourceError(f"{meta_path}: cannot read the sharded pool description ({exc})") from exc
        if meta.get("format") != POOL_FORMAT:
            raise SourceError(f"{meta_path}: not a tavaal sharded pool (format {meta.get('format')!r})")
        if meta.get("version") != POOL_VERSION:
            raise SourceError(f"{meta_path}: sharded pool version {meta.get('version')!r} is not supported "
                            f"(this tavaal reads version {POOL_VERSION})")
        if meta.get("kind") not in KINDS or meta.get("dtype") not in DTYPES:
            raise SourceError(f"{meta_path}: kind must be one of {KINDS} and dtype one of {DTYPES}, got "
                            f"{meta.get('kind')!r}, {meta.get('dtype')!r}")
        self.meta = meta
        self.kind, self.dtype = meta["kind"], meta["dtype"]
        self.sample_shape = tuple(int(s) for s in meta["sample_shape"])
        self._files = [s["file"] for s in meta["shards"]]
        rows = np.array([int(s["rows"]) for s in meta["shards"]], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self._n = int(self._offsets[-1])
        if int(meta.get("rows", self._n)) != self._n:
            raise SourceError(f"{meta_path}: rows {meta.get('rows')} != sum of shard rows {self._n}")
        self._maps: Dict[int, Tuple[np.ndarray, Optional[np.ndarray]]] = {}

    def __len__(self) -> int:
        return self._n

    def _shard(self, k: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if k not in self._maps:
            f = self.path / self._files[k]
            try:
                arr = np.load(f, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise SourceError(f"{f}: cannot read shard ({exc})") from exc
            expect = (int(self._offsets[k + 1] - self._offsets[k]),) + self.sample_shape
            if tuple(arr.shape) != expect:
                raise SourceError(f"{f}: shape {tuple(arr.shape)} != {expect} from pool.json")
            rf = f.with_name(f.name[:-4] + ".r.npy")
            r = np.load(rf, mmap_mode="r", allow_pickle=False) if self.kind == "latents" and rf.exists() else None
            if len(self._maps) > 64:  # bounded number of open maps
                self._maps.pop(next(iter(self._maps)))
            self._maps[k] = (arr, r)
        return self._maps[k]

    def _read_rows(self, rows: np.ndarray):
        parts, rparts = [], []
        shard_of = np.searchsorted(self._offsets, rows, side="right") - 1
        for k in np.unique(shard_of):
            sel = rows[shard_of == k] - self._offsets[k]
            arr, r = self._shard(int(k))
            parts.append(to_tensor(gather_rows(arr, sel), self.dtype))
            release_pages(arr, int(sel[0]), int(sel[-1]) + 1)
            if self.kind == "latents":
                rparts.append(None if r is None else torch.from_numpy(np.array(gather_rows(r, sel), dtype=np.float32,
                                                                               copy=True)))
        x = torch.cat(parts) if parts else torch.empty((0,) + self.sample_shape)
        if self.kind == "latents":
            r = None if (not rparts or any(p is None for p in rparts)) else torch.cat(rparts)
            return x, r
        return x


class ShardedPoolWriter:
    """Write a sharded pool incrementally: ``write(chunk, r=None)`` appends rows (split into
    shards of at most ``shard_rows``), ``close()`` writes ``pool.json`` (atomically, last: a
    directory without it is not a pool). Usable as a context manager.

    ``dtype`` (default: the first chunk's) is what is stored; float chunks are cast to it;
    bfloat16 is stored as uint16 ``.npy``."""

    def __init__(self, directory: os.PathLike, kind: str = "inputs", dtype: Optional[str] = None,
                 shard_rows: int = 65536, overwrite: bool = False):
        if kind not in KINDS:
            raise SourceError(f"kind must be one of {KINDS}, got {kind!r}")
        if dtype is not None and dtype not in DTYPES:
            raise SourceError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.path = Path(directory)
        if (self.path / "pool.json").exists() and not overwrite:
            raise SourceError(f"{self.path} already holds a sharded pool (pass overwrite=True)")
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "pool.json").unlink(missing_ok=True)
        self.kind, self.dtype, self.shard_rows = kind, dtype, int(shard_rows)
        self.sample_shape: Optional[Tuple[int, ...]] = None
        self.shards: List[Dict[str, Any]] = []
        self.rows = 0

    def _store(self, chunk) -> np.ndarray:
        if isinstance(chunk, torch.Tensor):
            if chunk.dtype == torch.bfloat16 and self.dtype in (None, "bfloat16"):
                self.dtype = "bfloat16"
                return chunk.contiguous().view(torch.int16).numpy().view(np.uint16)
            chunk = (chunk.float() if chunk.dtype == torch.bfloat16 else chunk).detach().cpu().numpy()
        chunk = np.asarray(chunk)
        if self.dtype is None:
            self.dtype = chunk.dtype.name if chunk.dtype.name in DTYPES else "float32"
        if self.dtype == "bfloat16":
            t = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(torch.bfloat16)
            return t.view(torch.int16).numpy().view(np.uint16)
        return np.ascontiguousarray(chunk, dtype=np.dtype(self.dtype))

    def write(self, chunk, r=None) -> None:
        data = self._store(chunk)
        if data.ndim == 1:
            data = data.reshape(-1, 1)
        shape = tuple(int(s) for s in data.shape[1:])
        if self.sample_shape is None:
            self.sample_shape = shape
        elif shape != self.sample_shape:
            raise SourceError(f"chunk sample shape {shape} != {self.sample_shape} of earlier chunks")
        rr = None
        if self.kind == "latents" and r is not None:
            rr = np.asarray(r.detach().cpu().float().numpy() if isinstance(r, torch.Tensor) else r,
                            dtype=np.float32).reshape(-1)
            if rr.shape[0] != data.shape[0]:
                raise SourceError(f"r has {rr.shape[0]} rows but the chunk {data.shape[0]}")
        for s in range(0, data.shape[0], self.shard_rows):
            part = data[s:s + self.shard_rows]
            name = f"shard_{len(self.shards):05d}.npy"
            np.save(self.path / name, part)
            if rr is not None:
                np.save(self.path / f"shard_{len(self.shards):05d}.r.npy", rr[s:s + self.shard_rows])
            self.shards.append({"file": name, "rows": int(part.shape[0])})
            self.rows += int(part.shape[0])

    def close(self) -> Dict[str, Any]:
        meta = {"format": POOL_FORMAT, "version": POOL_VERSION, "kind": self.kind, "dtype": self.dtype or "float32",
                "sample_shape": list(self.sample_shape or ()), "shards": self.shards, "rows": self.rows}
        write_json(self.path / "pool.json", meta)
        os.chmod(self.path / "pool.json", 0o644)
        return meta

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()


def write_sharded_pool(directory: os.PathLike, data, kind: str = "inputs", *, dtype: Optional[str] = None,
                       shard_rows: int = 65536, overwrite: bool = False) -> Dict[str, Any]:
    """Write ``data`` as a sharded pool; returns the ``pool.json`` content.

    ``data``: an array/tensor (N, ...), or an iterable of such chunks (each split into shards
    of at most ``shard_rows`` rows; a generator keeps memory bounded). For ``kind="latents"``
    give ``(mu, r)`` or an iterable of ``(mu, r)`` pairs (r may be None: VAAL latents)."""
    writer = ShardedPoolWriter(directory, kind, dtype, shard_rows, overwrite)
    single = isinstance(data, (np.ndarray, torch.Tensor)) or (
        kind == "latents" and isinstance(data, tuple) and len(data) == 2
        and isinstance(data[0], (np.ndarray, torch.Tensor)))
    for chunk in ([data] if single else data):
        if kind == "latents" and isinstance(chunk, tuple):
            writer.write(chunk[0], chunk[1])
        else:
            writer.write(chunk)
    return writer.close()
