"""Row sources (tavaal.data.sources): stable ids and their inverse, reads in any order, the
torch Dataset view training reads (only the rows asked for, normalised, labels by row), and
the benchmark datasets as row sources."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tavaal.data import load_dataset, open_source
from tavaal.data.sources import (ArraySource, DatasetSource, ImageFolderSource, SourceDataset, SourceError,
                                 channel_stats, write_sharded_pool)


@pytest.fixture()
def uint8_pool(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(40, 3, 4, 4), dtype=np.uint8)
    path = tmp_path / "pool.npy"
    np.save(path, x)
    return path, x


def test_array_ids_are_row_numbers_and_map_back(uint8_pool):
    path, _ = uint8_pool
    src = open_source(path)
    assert src.ids_of([3, 0]) == [3, 0]
    np.testing.assert_array_equal(src.rows_of([5, "7", 0]), [5, 7, 0])
    with pytest.raises(SourceError, match=r"2 id\(s\) are not in the pool.*40.*'x'"):
        src.rows_of([1, 40, "x"])


def test_read_rows_in_any_order_with_repeats(uint8_pool):
    path, x = uint8_pool
    src = open_source(path)
    got = src.read_rows([9, 2, 9, 30])
    np.testing.assert_array_equal(got.numpy(), x[[9, 2, 9, 30]])
    with pytest.raises(SourceError, match="rows must lie in"):
        src.read_rows([41])


def test_dataset_view_normalises_and_labels_only_given_rows(uint8_pool):
    path, x = uint8_pool
    src = open_source(path)
    ds = SourceDataset(src, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.25], targets=([7, 3], [1, 2]))
    assert len(ds) == 40 and isinstance(ds, SourceDataset)
    xb, yb = ds.get_batch([3, 5, 7])
    expect = (x[[3, 5, 7]] / 255.0 - np.array([0.5, 0.4, 0.3])[:, None, None]) / np.array([0.2, 0.2, 0.25])[:, None, None]
    np.testing.assert_allclose(xb.numpy(), expect, rtol=1e-5, atol=1e-5)
    assert xb.dtype == torch.float32 and yb.tolist() == [2, -1, 1]
    x0, y0 = ds[7]
    assert x0.shape == (3, 4, 4) and y0 == 1
    with pytest.raises(SourceError, match="distinct"):
        ds.set_targets(([1, 1], [0, 0]))
    with pytest.raises(SourceError, match="3 values"):
        SourceDataset(src, mean=[0.5, 0.5], std=[1, 1])


def test_training_through_the_view_reads_only_the_labeled_rows(uint8_pool):
    from tavaal.config import resolve_config
    from tavaal.training import build_task_models, train_task_models

    path, _ = uint8_pool

    class Counting(ArraySource):
        seen: set = set()

        def _read_rows(self, rows):
            Counting.seen.update(int(r) for r in rows)
            return super()._read_rows(rows)

    src = Counting(path)
    labeled = np.array([1, 4, 9, 16, 25, 36])
    ds = SourceDataset(src, targets=(labeled, np.array([0, 1, 0, 1, 0, 1])))
    config = resolve_config("digits", {"epochs": 1, "batch_size": 4, "width": 4, "arch": "resnet18-cifar"})
    task = build_task_models(config, (3, 4, 4), 2, with_ranker=True)
    train_task_models(task, ds, labeled, config, ranker_loss="ranking")
    assert Counting.seen == set(labeled.tolist())


def test_channel_stats_of_uint8_images(uint8_pool):
    path, x = uint8_pool
    mean, std = channel_stats(open_source(path))
    np.testing.assert_allclose(mean, (x / 255.0).mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, (x / 255.0).std(axis=(0, 2, 3)), rtol=1e-5)
    sub_mean, _ = channel_stats(open_source(path), rows=[0, 1], max_rows=10)
    np.testing.assert_allclose(sub_mean, (x[:2] / 255.0).mean(axis=(0, 2, 3)), rtol=1e-6)


def test_sharded_source_reads_the_same_rows(tmp_path, uint8_pool):
    _, x = uint8_pool
    write_sharded_pool(tmp_path / "sh", x, shard_rows=7)
    src = open_source(tmp_path / "sh")
    np.testing.assert_array_equal(src.read_rows([20, 6, 7]).numpy(), x[[20, 6, 7]])
    np.testing.assert_array_equal(src.rows_of([39]), [39])


def test_image_folder_ids_are_relative_posix_paths(tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for name in ("b/2.png", "a/1.png", "a/deep/3.png"):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), 7, np.uint8), mode="L").save(p)
    (root / "a" / "broken.png").write_bytes(b"not a png")
    src = open_source(root, image_shape=(1, 4, 4))
    assert isinstance(src, ImageFolderSource)
    assert src.ids_of(range(len(src))) == ["a/1.png", "a/broken.png", "a/deep/3.png", "b/2.png"]
    assert src.rows_of(["b/2.png", str(root / "a" / "1.png"), str(root.resolve() / "a/deep/3.png")]).tolist() == [3, 0, 2]
    with pytest.raises(SourceError, match="'c/9.png'"):
        src.rows_of(["c/9.png"])
    ds = SourceDataset(src)
    x, _ = ds.get_batch([3, 0])
    assert x.shape == (2, 1, 4, 4) and torch.allclose(x, torch.full_like(x, 7 / 255))
    strict = SourceDataset(src, on_unreadable="error")
    with pytest.raises(SourceError, match="a/broken.png"):
        strict.get_batch([1])


def test_benchmark_datasets_are_row_sources():
    bundle = load_dataset("digits", seed=0)
    src = bundle.train_source
    assert isinstance(src, DatasetSource) and len(src) == bundle.num_train
    x, _ = bundle.train.get_batch([5, 2])
    torch.testing.assert_close(src.read_rows([5, 2]), x)
    assert len(bundle.test_source) == bundle.num_test
    assert len(open_source("dataset:digits:test")) == bundle.num_test
