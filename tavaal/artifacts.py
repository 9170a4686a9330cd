"""Exported artifacts: the manifest (``manifest.json``) -- write, read, version check, sha256.

An artifacts directory written by ``python -m tavaal.export`` holds one file per model and
format plus ``manifest.json``::

    ARTIFACTS_DIR/manifest.json
    ARTIFACTS_DIR/ranker.pt|.onnx         x -> (loss, r)          (task backbone + Ranker)
    ARTIFACTS_DIR/encoder.pt|.onnx        x -> mu                 (WAE posterior mean)
    ARTIFACTS_DIR/discriminator.pt|.onnx  (r, mu) -> score        (mu -> score for VAAL)
    ARTIFACTS_DIR/scorer.pt|.onnx         x -> (loss, r, mu, score)  (mu, score for VAAL)
    ARTIFACTS_DIR/features.pt|.onnx       x -> feature            (penultimate, core-set)
    ARTIFACTS_DIR/normalize.pt            uint8 x -> normalised float x (for the C++ scorer)
    ARTIFACTS_DIR/models.pt               state dicts + spec (the "eager" backend rebuilds from it)

Only the models the checkpoint has are written (a VAAL run has no Ranker, an lloss run no
WAE). The manifest says which files exist (``files``: name -> sha256 and size), which
graphs (``models``: name -> inputs/outputs/files) and which selection methods the artifacts
support (``methods``). See docs/export-and-scoring.md for every field.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from .rundir import write_json

__all__ = [
    "MANIFEST_NAME", "ARTIFACT_FORMAT", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "ArtifactError",
    "sha256_file", "write_manifest", "read_manifest", "verify_files", "load_manifest",
]

MANIFEST_NAME = "manifest.json"
ARTIFACT_FORMAT = "tavaal-artifacts"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)


class ArtifactError(ValueError):
    """An artifacts directory is missing, from an incompatible version, or tampered with."""


def sha256_file(path: os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: os.PathLike, manifest: Dict[str, Any], files: Iterable[str]) -> Dict[str, Any]:
    """Add ``format``/``format_version`` and the sha256 + size of every name in ``files``
    (relative to ``directory``) to ``manifest`` and write ``manifest.json`` atomically."""
    directory = Path(directory)
    out = dict(manifest, format=ARTIFACT_FORMAT, format_version=FORMAT_VERSION)
    out["files"] = {name: {"sha256": sha256_file(directory / name), "bytes": (directory / name).stat().st_size}
                    for name in sorted(set(files))}
    write_json(directory / MANIFEST_NAME, out)
    os.chmod(directory / MANIFEST_NAME, 0o644)
    return out


def read_manifest(directory: os.PathLike) -> Dict[str, Any]:
    """Read and version-check ``manifest.json``; :class:`ArtifactError` with a one-line reason."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise ArtifactError(f"artifacts directory {directory} does not exist (run `python -m tavaal.export RUN_DIR "
                            f"--out {directory}` first)")
    if not path.exists():
        raise ArtifactError(f"{directory} has no {MANIFEST_NAME}: not a tavaal artifacts directory")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({type(exc).__name__}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path}: not a tavaal artifacts manifest (format {manifest.get('format')!r})"
                            if isinstance(manifest, dict) else f"{path}: not a tavaal artifacts manifest")
    version = manifest.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise ArtifactError(f"{path}: artifacts format version {version!r} is not supported by this tavaal "
                            f"(supports {list(SUPPORTED_VERSIONS)}); re-export them with this version "
                            f"(exported by tavaal {manifest.get('versions', {}).get('tavaal', '?')})")
    return manifest


def verify_files(directory: os.PathLike, manifest: Dict[str, Any], names: Optional[Iterable[str]] = None) -> None:
    """Check the sha256 of ``names`` (default: every file in the manifest); ArtifactError on mismatch."""
    directory = Path(directory)
    files = manifest.get("files", {})
    for name in (sorted(files) if names is None else names):
        if name not in files:
            raise ArtifactError(f"{directory}: {name} is not listed in the manifest")
        path = directory / name
        if not path.exists():
            raise ArtifactError(f"{path} is missing (listed in the manifest)")
        digest = sha256_file(path)
        if digest != files[name]["sha256"]:
            raise ArtifactError(f"{path}: sha256 mismatch (file is corrupt or was modified after export: "
                                f"{digest[:12]}... != {files[name]['sha256'][:12]}...)")


def load_manifest(directory: os.PathLike, verify: bool = True) -> Dict[str, Any]:
    """:func:`read_manifest` + (optionally) :func:`verify_files` of every file."""
    manifest = read_manifest(directory)
    if verify:
        verify_files(directory, manifest)
    return manifest
