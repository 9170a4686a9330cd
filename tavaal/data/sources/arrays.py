"""``.npy`` files and ``.npz`` members as row sources (memory-mapped, or read sequentially when
compressed)."""
from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from .base import DTYPES, KINDS, RowSource, SourceError
from .mapped import gather_rows, release_pages, to_tensor

__all__ = ["ArraySource", "LAYOUTS", "image_layout"]

LAYOUTS = ("stored", "auto", "NCHW", "NHWC")
IMAGE_CHANNELS = (1, 3, 4)


def image_layout(shape: Tuple[int, ...], layout: str, what: str = "the array") -> str:
    """The layout rule of sample arrays of shape ``shape`` = (N, ...): what ``layout`` means for it.

    ``"stored"``: samples are used as stored (N, *sample_shape). ``"auto"``, ``"NCHW"``,
    ``"NHWC"``: image arrays -- (N, H, W) is grayscale ("NHW": a channel axis is added), 4-D
    arrays are channels-first or channels-last, and ``"auto"`` tells which from the axis holding
    1, 3 or 4 values; (N, D) vectors stay as they are ("stored"). Returns "stored", "NHW",
    "NCHW" or "NHWC"; raises :class:`SourceError` (a ValueError) for an unknown layout, an
    ambiguous one (pass layout='NCHW' or 'NHWC') or another number of axes."""
    if layout not in LAYOUTS:
        raise SourceError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "stored" or len(shape) <= 2:
        return "stored"
    if len(shape) == 3:
        return "NHW"
    if len(shape) != 4:
        raise SourceError(f"{what} must have shape (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C), got {tuple(shape)}")
    if layout == "auto":
        first, last = shape[1] in IMAGE_CHANNELS, shape[3] in IMAGE_CHANNELS
        if first == last:
            raise SourceError(f"cannot tell the channel axis of {what} with shape {tuple(shape)}; "
                              "pass layout='NCHW' or layout='NHWC'")
        return "NCHW" if first else "NHWC"
    return layout


def _npy_header(f) -> Tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` header (format 1.0 or 2.0) at ``f``'s position."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(f)


def _npz_member_memmap(path: Path, key: str) -> Optional[np.memmap]:
    """Memory-map an *uncompressed* member of an .npz (np.savez); None if it is compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        shape, fortran, dtype = _npy_header(f)
        offset = f.tell()
    if fortran or dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class _CompressedNpzMember:
    """Sequential reader of a compressed .npz member (np.savez_compressed): bounded memory,
    rows are decompressed in order (a backward seek decompresses again from the start)."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as f:
            shape, fortran, dtype = _npy_header(f)
            self._start = f.tell()
        if fortran:
            raise SourceError(f"{path}:{key}: Fortran-ordered arrays are not supported")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self._zf = self._f = None

    def read(self, lo: int, hi: int) -> np.ndarray:
        if self._f is None:
            self._zf = zipfile.ZipFile(self.path)
            self._f = self._zf.open(self.key + ".npy")
        self._f.seek(self._start + lo * self.row_bytes)
        data = self._f.read((hi - lo) * self.row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape((hi - lo,) + self.shape[1:])

    def close(self):
        if self._f is not None:
            self._f.close()
            self._zf.close()
        self._f = self._zf = None


class ArraySource(RowSource):
    """A single ``.npy`` (memory-mapped) or ``.npz`` member (memory-mapped when stored, read
    sequentially when compressed). ``key`` selects the npz member (default "X", else the only
    or first member); ``r`` (optional (N,) array) makes it a latent pool. ``layout`` (see
    :func:`image_layout`; default "stored": as stored) turns image arrays channels-first on read.
    ``stored_shape`` / ``stored_dtype`` are the array's as on disk."""

    def __init__(self, path: os.PathLike, key: Optional[str] = None, kind: str = "inputs",
                 r: Optional[np.ndarray] = None, dtype: Optional[str] = None, layout: str = "stored"):
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"pool {self.path} does not exist")
        self._compressed: Optional[_CompressedNpzMember] = None
        try:
            if self.path.suffix == ".npz":
                with zipfile.ZipFile(self.path) as zf:
                    members = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                if not members:
                    raise SourceError(f"{self.path}: the .npz holds no arrays")
                if key is None:
                    key = "X" if "X" in members else members[0]
                if key not in members:
                    raise SourceError(f"{self.path}: no array {key!r} (has {', '.join(members)})")
                self._arr = _npz_member_memmap(self.path, key)
                if self._arr is None:
                    self._compressed = _CompressedNpzMember(self.path, key)
            else:
                self._arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except SourceError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            raise SourceError(f"{self.path}: cannot read the array ({type(exc).__name__}: {exc})") from exc
        self.key = key
        stored = self._arr if self._compressed is None else self._compressed
        shape, np_dtype = stored.shape, np.dtype(stored.dtype)
        if len(shape) < 1:
            raise SourceError(f"{self.path}: a pool array needs a sample axis, got a scalar")
        self.stored_shape, self.stored_dtype = tuple(int(s) for s in shape), np_dtype
        self.layout = image_layout(self.stored_shape, layout, f"{self.path}:{self.key}" if self.key else str(self.path))
        if self.layout == "NHW":
            shape = (shape[0], 1) + tuple(shape[1:])
        elif self.layout == "NHWC":
            shape = (shape[0], shape[3], shape[1], shape[2])
        if len(shape) == 1:
            shape = (shape[0], 1)
            if self._arr is not None:
                self._arr = self._arr.reshape(-1, 1)
        self._n = int(shape[0])
        self.sample_shape = tuple(int(s) for s in shape[1:])
        if dtype is None:
            dtype = "bfloat16" if np_dtype == np.uint16 else np_dtype.name
            if dtype not in DTYPES:
                if np.issubdtype(np_dtype, np.number):
                    dtype = "float32"  # other numeric dtypes are converted per batch
                else:
                    raise SourceError(f"{self.path}: unsupported dtype {np_dtype}")
        self.dtype = dtype
        if kind not in KINDS:
            raise SourceError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self._r = None if r is None else np.asarray(r, dtype=np.float32).reshape(-1)

    def __len__(self) -> int:
        return self._n

    def _read_rows(self, rows: np.ndarray):
        if rows.size == 0:
            x = torch.empty((0,) + self.sample_shape)
        elif self._compressed is not None:
            lo = int(rows[0])
            x = to_tensor(self._compressed.read(lo, int(rows[-1]) + 1)[rows - lo], self.dtype)
        else:
            x = to_tensor(gather_rows(self._arr, rows), self.dtype)
            release_pages(self._arr, int(rows[0]), int(rows[-1]) + 1)
        if self.layout == "NHW" and rows.size:
            x = x.unsqueeze(1)
        elif self.layout == "NHWC" and rows.size:
            x = x.permute(0, 3, 1, 2).contiguous()
        if self.kind == "latents":
            r = None if self._r is None else torch.from_numpy(np.ascontiguousarray(self._r[rows]))
            return x, r
        return x

    def close(self) -> None:
        if self._compressed is not None:
            self._compressed.close()
