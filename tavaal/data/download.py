"""Download the benchmark data sets (CIFAR-10/100, SVHN, MNIST, Fashion-MNIST) into ``data_dir``.

Every file is fetched from its official URL (several mirrors for MNIST), checked against its
published MD5 and only then put in place, so a data folder never holds a half-written data set:

* the bytes go to ``<target>.part``; an interrupted download keeps it and the next attempt
  resumes it with an HTTP ``Range`` request (a server ignoring ``Range`` makes it start over);
  up to :data:`RETRIES` resumptions happen within one call;
* a finished file with another MD5 is deleted and raises :class:`ChecksumError`;
* archives (CIFAR) are extracted into a temporary folder, their members verified, the folder
  renamed into place and the archive deleted;
* a data set whose final files are present and verify is not downloaded again.

Layout written (what the readers in :mod:`tavaal.data.readers` look for)::

    <data_dir>/cifar-10-batches-py/...   <data_dir>/cifar-100-python/...
    <data_dir>/svhn/{train,test}_32x32.mat
    <data_dir>/mnist/*-ubyte.gz          <data_dir>/fashionmnist/*-ubyte.gz

Transport: torchvision's ``download_url`` when torchvision is importable (never required), else
urllib with a tqdm progress bar; resuming a partial file always uses urllib.

Mirrors and checksum overrides (air-gapped sites, tests): ``mirror=`` or ``$TAVAAL_DOWNLOAD_MIRROR``
(a base URL; files are fetched from ``<mirror>/<dataset>/<filename>``, e.g.
``<mirror>/mnist/train-images-idx3-ubyte.gz``); ``checksums=`` or ``$TAVAAL_DOWNLOAD_CHECKSUMS``
(path of a JSON file) maps a file's path relative to ``data_dir`` (archives: their file name) to
the MD5 to expect instead of the official one.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .errors import DataError
from .readers._common import data_root
from .registry import get_spec

__all__ = ["DownloadError", "ChecksumError", "Resource", "DOWNLOADS", "MIRROR_ENV", "CHECKSUMS_ENV",
           "download_dataset", "md5sum"]

log = logging.getLogger(__name__)

MIRROR_ENV = "TAVAAL_DOWNLOAD_MIRROR"
CHECKSUMS_ENV = "TAVAAL_DOWNLOAD_CHECKSUMS"
RETRIES = 3
"""Resumptions of one interrupted file within a single call."""
TIMEOUT = 60.0
"""Seconds without data before a connection counts as dropped."""
_CHUNK = 1 << 20
_USER_AGENT = "tavaal-downloader"


class DownloadError(DataError, OSError):
    """A file could not be fetched (network unreachable, HTTP error, connection dropped
    more than :data:`RETRIES` times). Partial data stays in ``<target>.part`` for resuming."""


class ChecksumError(DataError, ValueError):
    """A downloaded or extracted file does not have its published MD5; it has been deleted.

    Attributes: ``path`` (the file), ``expected``, ``actual`` (hex digests)."""

    def __init__(self, path: str | os.PathLike, expected: str, actual: str, url: str | None = None):
        self.path, self.expected, self.actual, self.url = str(path), expected, actual, url
        source = f" (from {url})" if url else ""
        super().__init__(f"checksum mismatch for {self.path}{source}: expected MD5 {expected}, got {actual}; "
                         "the file was deleted (nothing was installed). Retry; if it persists the "
                         "server or a proxy serves different bytes")


@dataclass(frozen=True)
class Resource:
    """One file to fetch: ``filename`` (saved under ``<data_dir>/<subdir>``), its MD5,
    the URLs to try in order, and for archives the members (path relative to ``data_dir``
    -> MD5) that must exist after extraction."""

    filename: str
    md5: str
    urls: tuple[str, ...]
    subdir: str = ""
    members: Mapping[str, str] = field(default_factory=dict)

    @property
    def relpath(self) -> str:
        return f"{self.subdir}/{self.filename}" if self.subdir else self.filename


def _idx_resources(subdir: str, bases: Sequence[str], md5s: Sequence[str]) -> tuple[Resource, ...]:
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return tuple(Resource(n, m, tuple(b + n for b in bases), subdir) for n, m in zip(names, md5s))


# Official URLs and MD5 checksums. Sources: the data sets' home pages (CIFAR:
# https://www.cs.toronto.edu/~kriz/cifar.html, which publishes the archive MD5s; SVHN:
# http://ufldl.stanford.edu/housenumbers/; MNIST: http://yann.lecun.com/exdb/mnist/;
# Fashion-MNIST: https://github.com/zalandoresearch/fashion-mnist README) and the same
# values in torchvision's torchvision/datasets/{cifar,svhn,mnist}.py (archive, member and
# file MD5s; the ossci-datasets S3 mirror of MNIST).
DOWNLOADS: dict[str, tuple[Resource, ...]] = {
    "cifar10": (Resource(
        "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        members={"cifar-10-batches-py/data_batch_1": "c99cafc152244af753f735de768cd75f",
                 "cifar-10-batches-py/data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                 "cifar-10-batches-py/data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                 "cifar-10-batches-py/data_batch_4": "634d18415352ddfa80567beed471001a",
                 "cifar-10-batches-py/data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                 "cifar-10-batches-py/test_batch": "40351d587109b95175f43aff81a1287e"}),),
    "cifar100": (Resource(
        "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
        ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
        members={"cifar-100-python/train": "16019d7e3df5f24257cddd939b257f8d",
                 "cifar-100-python/test": "f0ef6b0ae62326f3e7ffdfab6717acfc"}),),
    "svhn": (
        Resource("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373",
                 ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",), "svhn"),
        Resource("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3",
                 ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",), "svhn"),
    ),
    "mnist": _idx_resources(
        "mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashionmnist": _idx_resources(
        "fashionmnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
}
_FILES_OF = {"cifar10-imb": "cifar10"}
"""Registry names that read another data set's files."""


def md5sum(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _load_checksum_overrides(checksums: Mapping[str, str] | None) -> dict[str, str]:
    data = {}
    env = os.environ.get(CHECKSUMS_ENV)
    if env:
        try:
            data = json.loads(Path(env).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"${CHECKSUMS_ENV}={env}: cannot read a JSON object of "
                             f"{{relative path: md5}} ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"${CHECKSUMS_ENV}={env}: expected a JSON object, got {type(data).__name__}")
    return {str(k): str(v).lower() for k, v in {**data, **(checksums or {})}.items()}


def _verified(path: Path, md5: str) -> bool:
    return path.is_file() and md5sum(path) == md5


# ----------------------------------------------------------------------------- transport
def _network_error(url: str, exc: BaseException, dest: Path) -> DownloadError:
    if isinstance(exc, urllib.error.HTTPError):
        what = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        what = f"cannot reach the server ({exc.reason})"
    else:
        what = f"{type(exc).__name__}: {exc}"
    return DownloadError(
        f"downloading {url} failed: {what}. Check the network connection (or the proxy settings: "
        f"$https_proxy / $http_proxy), set ${MIRROR_ENV} to a reachable mirror, or fetch the file "
        f"by hand into {dest.parent}")


def _fetch_urllib(url: str, part: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (resuming with Range when it is non-empty)."""
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file already holds everything
            return
        raise
    with response:
        if offset and response.status != 206:
            log.info("%s ignores Range requests: downloading from the start", url)
            offset = 0
        elif offset:
            start = (response.headers.get("Content-Range") or "").split(" ")[-1].split("-")[0]
            if start != str(offset):
                raise DownloadError(f"{url}: asked for bytes from {offset}, the server sent "
                                    f"Content-Range {response.headers.get('Content-Range')!r}")
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=part.name[:-len(".part")], disable=not progress, leave=False) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                f.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def _fetch_torchvision(url: str, part: Path, progress: bool) -> None:
    """Fresh download with torchvision's downloader into a private folder, moved to ``part``."""
    from torchvision.datasets.utils import download_url  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory(prefix=".tavaal-tv-", dir=part.parent) as tmp:
        download_url(url, tmp, filename="file", md5=None)
        os.replace(Path(tmp) / "file", part)


def _torchvision_available() -> bool:
    try:
        import torchvision.datasets.utils  # type: ignore[import-not-found]  # noqa: F401
    except Exception:  # torchvision missing or broken against this torch: never required
        return False
    return True


def _fetch(url: str, part: Path, dest: Path, *, progress: bool, backend: str) -> None:
    """Complete ``part`` from ``url``, resuming up to :data:`RETRIES` times after a drop."""
    for attempt in range(RETRIES + 1):
        resume = part.exists() and part.stat().st_size > 0
        use_tv = backend == "torchvision" or (backend == "auto" and not resume and _torchvision_available())
        if progress:
            print(f"{'resuming' if resume else 'downloading'} {url} -> {dest}", flush=True)
        try:
            (_fetch_torchvision if use_tv else _fetch_urllib)(url, part, progress)
            return
        except DownloadError:
            raise
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
            if attempt == RETRIES:
                raise DownloadError(
                    f"downloading {url} was interrupted {RETRIES + 1} times ({type(exc).__name__}); the "
                    f"partial file {part} is kept: run the same command again to resume") from exc
            log.warning("download of %s interrupted (%s); resuming", url, exc)
        except (OSError, http.client.HTTPException) as exc:  # URLError/HTTPError are OSErrors
            raise _network_error(url, exc, dest) from exc
        except Exception as exc:  # torchvision's downloader raises RuntimeError & co.
            if not use_tv:
                raise
            raise _network_error(url, exc, dest) from exc


def _download_file(urls: Sequence[str], dest: Path, md5: str, *, progress: bool, backend: str) -> None:
    """Fetch ``dest`` from the first URL that answers, verify ``md5``, then rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[DownloadError] = []
    for url in urls:
        try:
            _fetch(url, part, dest, progress=progress, backend=backend)
        except DownloadError as exc:
            errors.append(exc)
            continue
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise ChecksumError(dest, md5, actual, url)
        os.replace(part, dest)
        return
    if len(errors) == 1:
        raise errors[0]
    raise DownloadError(f"all {len(errors)} sources failed for {dest.name}:\n  " + "\n  ".join(map(str, errors)))


# ----------------------------------------------------------------------------- archives
def _safe_extract(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                root = into.resolve()
                for m in tar.getmembers():
                    target = (into / m.name).resolve()
                    if root not in target.parents and target != root or m.issym() or m.islnk():
                        raise tarfile.TarError(f"unsafe member {m.name!r}")
                tar.extractall(into)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot extract ({type(exc).__name__}: {exc})") from exc


def _install_archive(archive: Path, root: Path, md5s: Mapping[str, str]) -> None:
    """Extract ``archive`` into a temporary folder under ``root``, verify the members and
    move their top-level folders into ``root`` (replacing older copies)."""
    with tempfile.TemporaryDirectory(prefix=".tavaal-extract-", dir=root) as tmp:
        tmp_path = Path(tmp)
        _safe_extract(archive, tmp_path)
        for rel, md5 in md5s.items():
            path = tmp_path / rel
            if not path.is_file():
                raise DownloadError(f"{archive} does not contain {rel}: not the expected archive")
            actual = md5sum(path)
            if actual != md5:
                raise ChecksumError(root / rel, md5, actual)
        for top in sorted({Path(rel).parts[0] for rel in md5s}):
            final = root / top
            if final.exists():
                os.replace(final, tmp_path / (".old-" + top))
            os.replace(tmp_path / top, final)


# ----------------------------------------------------------------------------- public API
def download_dataset(name: str, data_dir: str | os.PathLike | None = None, *, mirror: str | None = None,
                     checksums: Mapping[str, str] | None = None, progress: bool = True,
                     backend: str = "auto") -> Path:
    """Make the files of data set ``name`` present and verified under ``data_dir``.

    ``name``: a registry name or alias (``cifar10``, ``cifar10-imb``, ``cifar100``, ``svhn``,
    ``mnist``, ``fashionmnist``...). ``data_dir``: as for :func:`tavaal.data.load_dataset`
    (default ``$TAVAAL_DATA_DIR`` or ``./data``). ``mirror`` / ``checksums``: see the module
    docstring. ``backend``: ``"auto"`` (torchvision if importable, urllib to resume),
    ``"urllib"`` or ``"torchvision"``. Files already present with the right checksum are
    kept. Returns the data folder.

    Raises ValueError (name not downloadable, bad backend), :class:`DownloadError`
    (unreachable / HTTP error / interrupted: partial data kept for resuming) and
    :class:`ChecksumError` (mismatch: the file deleted, nothing installed).
    """
    canonical = get_spec(name).name
    dataset = _FILES_OF.get(canonical, canonical)
    if dataset not in DOWNLOADS:
        raise ValueError(f"{canonical}: no download available (downloadable: {', '.join(sorted(DOWNLOADS))}); "
                         "put its files in --data-dir by hand")
    if backend not in ("auto", "urllib", "torchvision"):
        raise ValueError(f"backend must be 'auto', 'urllib' or 'torchvision', got {backend!r}")
    root = data_root(data_dir)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    overrides = _load_checksum_overrides(checksums)
    root.mkdir(parents=True, exist_ok=True)
    for res in DOWNLOADS[dataset]:
        md5 = overrides.get(res.relpath, res.md5)
        urls = (f"{mirror.rstrip('/')}/{dataset}/{res.filename}",) if mirror else res.urls
        members = {rel: overrides.get(rel, m) for rel, m in res.members.items()}
        dest = root / res.relpath
        if all(_verified(root / rel, m) for rel, m in (members or {res.relpath: md5}).items()):
            log.info("%s: %s already present and verified", canonical, ", ".join(members) or dest)
            continue
        _download_file(urls, dest, md5, progress=progress, backend=backend)
        if members:  # an archive
            try:
                _install_archive(dest, root, members)
            finally:
                dest.unlink(missing_ok=True)
    return root
