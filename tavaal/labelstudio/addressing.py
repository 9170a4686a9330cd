"""Image URLs Label Studio can serve, and the way back from a task's URL to the sample id.

Two ways, chosen at push time and recorded in the work directory (:mod:`.record`):

* ``--image-root DIR``: Label Studio's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``, a proper parent
  of the pool folder. Tasks get ``/data/local-files/?d=<path relative to DIR>``; Label Studio
  serves such a file only below a local-files storage of the project, so tavaal creates one for
  the pool folder (or reuses one that covers it) -- without syncing it (syncing would add a
  second task per image).
* ``--image-url-prefix URL``: the pool is served elsewhere (http, object storage): tasks get
  prefix + id (percent-encoded).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from ..data.labelfiles import SampleLocations
from .connection import Connection, LabelStudioError

__all__ = ["ImageAddressing", "LOCAL_FILES_URL", "IMAGES_HINT", "ensure_local_storage", "check_served"]

LOCAL_FILES_URL = "/data/local-files/?d="
IMAGES_HINT = ("say how Label Studio reaches the images: --image-root DIR (Label Studio's "
               "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, a parent folder of the pool) or --image-url-prefix URL")


@dataclass(frozen=True)
class ImageAddressing:
    """How tasks address the images of the pool at ``pool_root``: ``document_root`` (local
    files) or ``url_prefix``; exactly one of them."""

    pool_root: str
    document_root: Optional[str] = None
    url_prefix: Optional[str] = None

    @classmethod
    def for_pool(cls, pool_root: str, image_root: Optional[str] = None,
                 url_prefix: Optional[str] = None) -> "ImageAddressing":
        """Check and build the addressing; :class:`LabelStudioError` unless exactly one of
        ``image_root`` (a proper parent of the pool, as Label Studio requires) and ``url_prefix``
        is given."""
        if (image_root is None) == (url_prefix is None):
            raise LabelStudioError(f"{IMAGES_HINT} (the pool served over http), one of them")
        pool = Path(pool_root).resolve()
        if url_prefix is not None:
            return cls(str(pool), url_prefix=url_prefix)
        root = Path(image_root).resolve()
        if root == pool or root not in pool.parents:
            raise LabelStudioError(f"--image-root {image_root} must be a parent folder of the pool {pool} (Label Studio "
                                   "serves local files from a storage folder strictly below its "
                                   "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
        return cls(str(pool), document_root=str(root))

    def url(self, ident: str) -> str:
        """The URL of sample ``ident`` (a path relative to the pool)."""
        if self.url_prefix is not None:
            return self.url_prefix + quote(ident, safe="/")
        rel = Path(self.pool_root, ident).relative_to(self.document_root).as_posix()
        return LOCAL_FILES_URL + quote(rel, safe="/")

    def locations(self) -> SampleLocations:
        """The way back: task URLs (and ``?d=`` paths of storage-synced tasks) -> sample ids."""
        return SampleLocations(self.pool_root, self.document_root, self.url_prefix)

    def to_record(self) -> Dict[str, Any]:
        return {"pool_root": self.pool_root, "document_root": self.document_root, "url_prefix": self.url_prefix}

    @classmethod
    def from_record(cls, record: Dict[str, Any]) -> "ImageAddressing":
        return cls(record["pool_root"], record.get("document_root"), record.get("url_prefix"))


def _covers(storage_path: str, pool_root: str) -> bool:
    storage, pool = os.path.normpath(storage_path), os.path.normpath(pool_root)
    return pool == storage or pool.startswith(storage.rstrip(os.sep) + os.sep)


def ensure_local_storage(connection: Connection, project: int, addressing: ImageAddressing) -> Dict[str, Any]:
    """The project's local-files storage covering the pool folder: reused when one exists, else
    created (not synced). Returns ``{"id", "path", "created"}``; :class:`LabelStudioError` with
    Label Studio's reason when it refuses (e.g. local files serving disabled)."""
    storages: List[Any] = connection.call(f"listing the local-files storages of project {project}",
                                          connection.sdk.import_storage.local.list, project=project)
    for storage in storages:
        if storage.path and _covers(storage.path, addressing.pool_root):
            return {"id": storage.id, "path": storage.path, "created": False}
    try:
        storage = connection.call(f"creating a local-files storage for {addressing.pool_root}",
                                  connection.sdk.import_storage.local.create, project=project,
                                  path=addressing.pool_root, title="tavaal pool", use_blob_urls=True,
                                  description="created by tavaal select: serves the pool's images (not synced)")
    except LabelStudioError as exc:
        raise LabelStudioError(f"{exc}\nstart Label Studio with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
                               f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={addressing.document_root}") from None
    return {"id": storage.id, "path": storage.path, "created": True}


def check_served(connection: Connection, addressing: ImageAddressing, ident: str) -> str:
    """Fetch sample ``ident``'s image through the server and compare it with the file; returns
    the URL. :class:`LabelStudioError` saying what to fix when it is not served (or differs)."""
    url = addressing.url(ident)
    status, body = connection.fetch(url)
    expected = Path(addressing.pool_root, ident).read_bytes()
    if status == 200 and body == expected:
        return url
    if addressing.document_root is not None:
        how = (f"start Label Studio with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
               f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={addressing.document_root} (the --image-root given here)")
    else:
        how = f"check that --image-url-prefix {addressing.url_prefix} + the sample id serves the pool's files"
    got = f"HTTP {status}" if status != 200 else f"{len(body)} bytes that differ from the file ({len(expected)} bytes)"
    raise LabelStudioError(f"Label Studio does not serve the images: {url} gave {got}; {how}")
