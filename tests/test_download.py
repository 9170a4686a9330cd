"""--download: official files fetched with MD5 verification, resumable, atomic.

Every test runs against a local HTTP server on 127.0.0.1 (a thread, loopback only) that
serves tiny files in the real formats (CIFAR python-pickle tarball, gzipped IDX, SVHN .mat);
the mirror base URL and the checksums of those tiny files are given through the documented
``mirror=`` / ``checksums=`` parameters or ``$TAVAAL_DOWNLOAD_MIRROR`` /
``$TAVAAL_DOWNLOAD_CHECKSUMS``.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import pickle
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tavaal.data import load_dataset
from tavaal.data.download import (CHECKSUMS_ENV, DOWNLOADS, MIRROR_ENV, ChecksumError, DownloadError,
                                  download_dataset, md5sum)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ----------------------------------------------------------------------------- a local server
class _Server:
    """Serves ``files`` (url path -> bytes); honours ``Range: bytes=a-`` unless told not to;
    the first ``truncate[path]`` responses for a path stop half-way and drop the connection."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}
        self.honour_range = True
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.truncate.get(self.path, 0) > 0:
                    server.truncate[self.path] -= 1
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def requests_for(self, name: str) -> list[tuple[str, str | None]]:
        return [entry for entry in self.log if entry[0].endswith("/" + name)]


@pytest.fixture
def server():
    s = _Server()
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()
        s.thread.join(timeout=5)


# ----------------------------------------------------------------------------- tiny real-format files
def _cifar10_archive(n: int = 4, seed: int = 0):
    """A cifar-10-python.tar.gz with the real layout and pickle keys; returns (bytes, members
    md5 {relpath: md5}, images (6n, 3, 32, 32), labels)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    members, xs, ys = {}, [], []
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, obj) -> None:
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            members[f"cifar-10-batches-py/{name}"] = _md5(data)

        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            y = [int(v) for v in rng.integers(0, 10, size=n)]
            add(name, {b"batch_label": name.encode(), b"labels": y, b"data": x,
                       b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]})
            xs.append(x.reshape(-1, 3, 32, 32))
            ys.append(np.asarray(y))
        add("batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                             b"num_cases_per_batch": n, b"num_vis": 3072})
    required = {k: v for k, v in members.items() if not k.endswith("batches.meta")}
    return buf.getvalue(), required, np.concatenate(xs), np.concatenate(ys)


def _idx_gz(array: np.ndarray) -> bytes:
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def _idx_files(seed: int = 0, n_train: int = 12, n_test: int = 6) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx_gz(rng.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(rng.integers(0, 10, n_test)),
    }


def _publish_cifar10(server: _Server, archive: bytes, members: dict[str, str]) -> dict[str, str]:
    server.files["/cifar10/cifar-10-python.tar.gz"] = archive
    return {"cifar-10-python.tar.gz": _md5(archive), **members}


def _publish_idx(server: _Server, dataset: str, files: dict[str, bytes]) -> dict[str, str]:
    for name, data in files.items():
        server.files[f"/{dataset}/{name}"] = data
    return {f"{dataset}/{name}": _md5(data) for name, data in files.items()}


def _leftovers(root: Path) -> list[str]:
    """Temporary names the downloader must never leave behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.endswith(".part") or p.name.startswith((".tavaal-", ".old-")) or p.suffix == ".gz"
                  and p.name.startswith("cifar"))


# ----------------------------------------------------------------------------- the official table
def test_every_benchmark_dataset_has_official_urls_and_md5s():
    assert set(DOWNLOADS) == {"cifar10", "cifar100", "svhn", "mnist", "fashionmnist"}
    for name, resources in DOWNLOADS.items():
        for res in resources:
            assert len(res.md5) == 32 and int(res.md5, 16) >= 0, (name, res.filename)
            assert res.urls and all(u.startswith(("http://", "https://")) and u.endswith(res.filename)
                                    for u in res.urls), (name, res.urls)
            assert all(len(m) == 32 for m in res.members.values())


# ----------------------------------------------------------------------------- download, then load
def test_cifar10_download_then_load_dataset_reads_it(server, tmp_path):
    archive, members, x, y = _cifar10_archive()
    sums = _publish_cifar10(server, archive, members)

    root = download_dataset("cifar10", tmp_path, mirror=server.url, checksums=sums, progress=False)

    assert root == tmp_path.resolve()
    bundle = load_dataset("cifar10", tmp_path, augment="none")
    assert bundle.num_train == 20 and bundle.num_test == 4
    assert np.array_equal(bundle.train.data.numpy(), x[:20]) and np.array_equal(bundle.train_targets, y[:20])
    assert bundle.classes == tuple(f"class{i}" for i in range(10))
    assert _leftovers(tmp_path) == []  # no .part, no archive, no extraction folder


@pytest.mark.parametrize("dataset", ["mnist", "fashionmnist"])
def test_idx_download_then_load_dataset_reads_it(server, tmp_path, dataset):
    files = _idx_files(seed=1)
    sums = _publish_idx(server, dataset, files)

    download_dataset(dataset, tmp_path, mirror=server.url, checksums=sums, progress=False)

    bundle = load_dataset(dataset, tmp_path)
    assert (bundle.num_train, bundle.num_test, bundle.input_shape) == (12, 6, (1, 28, 28))
    assert sorted(p.name for p in (tmp_path / dataset).iterdir()) == sorted(files)


def test_svhn_download_then_load_dataset_reads_it(server, tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(2)
    sums = {}
    for name, n in (("train_32x32.mat", 5), ("test_32x32.mat", 3)):
        buf = io.BytesIO()
        scipy_io.savemat(buf, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                               "y": rng.integers(1, 11, (n, 1), dtype=np.uint8)})
        server.files[f"/svhn/{name}"] = buf.getvalue()
        sums[f"svhn/{name}"] = _md5(buf.getvalue())

    download_dataset("svhn", tmp_path, mirror=server.url, checksums=sums, progress=False)

    bundle = load_dataset("svhn", tmp_path)
    assert (bundle.num_train, bundle.num_test) == (5, 3)
    assert set(np.unique(bundle.train_targets)) <= set(range(10))


def test_download_uses_the_documented_env_mirror_and_checksums(server, tmp_path, monkeypatch):
    sums = _publish_idx(server, "mnist", _idx_files(seed=3))
    (tmp_path / "sums.json").write_text(json.dumps(sums))
    monkeypatch.setenv(MIRROR_ENV, server.url)
    monkeypatch.setenv(CHECKSUMS_ENV, str(tmp_path / "sums.json"))
    data = tmp_path / "data"

    download_dataset("mnist", data, progress=False)
    bundle = load_dataset("mnist", data)

    assert bundle.num_train == 12
    assert len(server.log) == 4


def test_cifar10_imbalanced_downloads_the_cifar10_files(server, tmp_path):
    archive, members, _, _ = _cifar10_archive(n=20)
    sums = _publish_cifar10(server, archive, members)
    download_dataset("cifar10im", tmp_path, mirror=server.url, checksums=sums, progress=False)
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").is_file()


# ----------------------------------------------------------------------------- resuming
def test_interrupted_download_resumes_with_range_and_verifies(server, tmp_path):
    files = _idx_files(seed=4)
    sums = _publish_idx(server, "mnist", files)
    name = "train-images-idx3-ubyte.gz"
    server.truncate[f"/mnist/{name}"] = 1  # the first response drops half-way

    download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)

    first, second = server.requests_for(name)
    assert first[1] is None
    assert second[1] == f"bytes={len(files[name]) // 2}-"  # only the missing half asked for
    assert md5sum(tmp_path / "mnist" / name) == sums[f"mnist/{name}"]
    assert load_dataset("mnist", tmp_path).num_train == 12
    assert _leftovers(tmp_path) == []


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    files = _idx_files(seed=5)
    sums = _publish_idx(server, "fashionmnist", files)
    name = "t10k-images-idx3-ubyte.gz"
    (tmp_path / "fashionmnist").mkdir()
    (tmp_path / "fashionmnist" / (name + ".part")).write_bytes(files[name][:100])

    download_dataset("fashionmnist", tmp_path, mirror=server.url, checksums=sums, progress=False)

    assert server.requests_for(name) == [(f"/fashionmnist/{name}", "bytes=100-")]
    assert (tmp_path / "fashionmnist" / name).read_bytes() == files[name]


def test_a_server_ignoring_range_makes_the_download_start_over(server, tmp_path):
    files = _idx_files(seed=6)
    sums = _publish_idx(server, "mnist", files)
    name = "train-labels-idx1-ubyte.gz"
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / (name + ".part")).write_bytes(b"stale bytes from elsewhere")
    server.honour_range = False

    download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)

    assert (tmp_path / "mnist" / name).read_bytes() == files[name]


def test_a_connection_dropping_every_time_keeps_the_partial_file_for_later(server, tmp_path):
    files = _idx_files(seed=7)
    sums = _publish_idx(server, "mnist", files)
    name = "train-images-idx3-ubyte.gz"
    server.truncate[f"/mnist/{name}"] = 100

    with pytest.raises(DownloadError, match="interrupted .* run the same command again to resume"):
        download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)

    part = tmp_path / "mnist" / (name + ".part")
    assert 0 < part.stat().st_size < len(files[name])
    assert not (tmp_path / "mnist" / name).exists()
    server.truncate.clear()
    download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)
    assert (tmp_path / "mnist" / name).read_bytes() == files[name]


# ----------------------------------------------------------------------------- corruption
def test_corrupted_file_raises_checksum_error_and_leaves_nothing(server, tmp_path):
    files = _idx_files(seed=8)
    sums = _publish_idx(server, "mnist", files)
    name = "train-images-idx3-ubyte.gz"
    good = sums[f"mnist/{name}"]
    bad = bytearray(files[name])
    bad[len(bad) // 2] ^= 0xFF
    server.files[f"/mnist/{name}"] = bytes(bad)

    with pytest.raises(ChecksumError) as info:
        download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)

    err = info.value
    assert err.expected == good and err.actual == _md5(bytes(bad))
    assert name in str(err) and good in str(err) and err.actual in str(err)
    assert not (tmp_path / "mnist" / name).exists()
    assert _leftovers(tmp_path) == []


def test_corrupted_archive_leaves_no_half_written_dataset(server, tmp_path):
    archive, members, _, _ = _cifar10_archive()
    sums = _publish_cifar10(server, archive, members)
    server.files["/cifar10/cifar-10-python.tar.gz"] = archive[:-10] + b"0123456789"

    with pytest.raises(ChecksumError, match="cifar-10-python.tar.gz"):
        download_dataset("cifar10", tmp_path, mirror=server.url, checksums=sums, progress=False)

    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_archive_with_a_wrong_member_is_not_installed(server, tmp_path):
    archive, members, _, _ = _cifar10_archive()
    sums = _publish_cifar10(server, archive, members)
    sums["cifar-10-batches-py/test_batch"] = "0" * 32  # the archive verifies, one member does not

    with pytest.raises(ChecksumError, match="test_batch"):
        download_dataset("cifar10", tmp_path, mirror=server.url, checksums=sums, progress=False)

    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_damaged_existing_file_is_downloaded_again(server, tmp_path):
    files = _idx_files(seed=9)
    sums = _publish_idx(server, "mnist", files)
    download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(b"damaged")
    server.log.clear()

    download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False)

    assert [p for p, _ in server.log] == ["/mnist/t10k-labels-idx1-ubyte.gz"]
    assert target.read_bytes() == files["t10k-labels-idx1-ubyte.gz"]


# ----------------------------------------------------------------------------- nothing to do
def test_existing_verified_dataset_is_not_downloaded_again(server, tmp_path):
    archive, members, _, _ = _cifar10_archive()
    sums = _publish_cifar10(server, archive, members)
    download_dataset("cifar10", tmp_path, mirror=server.url, checksums=sums, progress=False)
    assert len(server.log) == 1

    download_dataset("cifar10", tmp_path, mirror=server.url, checksums=sums, progress=False)
    load_dataset("cifar10", tmp_path)

    assert len(server.log) == 1


# ----------------------------------------------------------------------------- network errors
def _closed_port() -> int:
    """A loopback port with nobody listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_network_gives_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach the server.*network connection"):
        download_dataset("mnist", tmp_path, mirror=f"http://127.0.0.1:{_closed_port()}", progress=False)
    assert _leftovers(tmp_path) == []


def test_missing_file_on_the_server_names_the_http_status(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_dataset("svhn", tmp_path, mirror=server.url, progress=False)


def test_datasets_without_a_download_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no download available"):
        download_dataset("caltech101", tmp_path)
    with pytest.raises(ValueError, match="no download available"):
        download_dataset("moons", tmp_path)


# ----------------------------------------------------------------------------- the command line
def test_train_cli_download_flag_fetches_before_the_run(server, tmp_path, monkeypatch):
    from tavaal.train import main

    sums = _publish_idx(server, "mnist", _idx_files(seed=10, n_train=40, n_test=10))
    (tmp_path / "sums.json").write_text(json.dumps(sums))
    monkeypatch.setenv(MIRROR_ENV, server.url)
    monkeypatch.setenv(CHECKSUMS_ENV, str(tmp_path / "sums.json"))

    code = main(["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--download", "--method", "random",
                 "--cycles", "1", "--initial", "10", "--budget", "5", "--epochs", "1", "--set", "width=4",
                 "--no-progress", "--no-plots", "--out", str(tmp_path / "run")])

    assert code == 0
    assert (tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_train_cli_reports_download_errors_without_a_traceback(tmp_path, monkeypatch, capsys):
    from tavaal.train import main

    port = _closed_port()
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")
    code = main(["--dataset", "mnist", "--data-dir", str(tmp_path), "--download", "--no-progress",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert f"error: downloading http://127.0.0.1:{port}/mnist/" in capsys.readouterr().err


def test_torchvision_backend_when_importable(server, tmp_path):
    pytest.importorskip("torchvision.datasets.utils")
    sums = _publish_idx(server, "mnist", _idx_files(seed=11))
    download_dataset("mnist", tmp_path, mirror=server.url, checksums=sums, progress=False, backend="torchvision")
    assert load_dataset("mnist", tmp_path).num_train == 12
