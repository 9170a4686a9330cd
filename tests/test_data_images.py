"""Image folders as people have them (issue 16): unreadable files are data, mixed images are
decided out loud, decoding scales with the cores. Every pool is real files written with Pillow."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tavaal.data.imagefiles import decode_image
from tavaal.data.sources import (ImageFolderSource, MaskSourceDataset, SourceDataset, SourceError, check_channels,
                                 choose_image_shape, decode_workers, find_unreadable, read_unreadable,
                                 write_unreadable)
from tavaal.data.imagefiles import identity_lookup

BROKEN = {"cut.jpg", "empty.png", "notes.jpg"}


def _save(path, size=(28, 28), mode="RGB", value=None, seed=0):
    """An image of ``size`` = (W, H) in ``mode``; random pixels unless ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    if value is not None:
        arr = np.full((h, w, 3), value, np.uint8)
    else:
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").convert(mode).save(path)
    return path


@pytest.fixture
def messy_pool(tmp_path):
    """12 readable files of mixed modes and sizes (most: 28x28 grayscale), unicode and space
    names, plus a truncated JPEG, a zero-byte PNG and a text file named like a JPEG."""
    root = tmp_path / "pool"
    for i in range(6):
        _save(root / "digits" / f"d{i}.png", mode="L", seed=i)
    _save(root / "digits" / "café ü.png", mode="L", seed=10)
    _save(root / "my images" / "two words.png", mode="L", seed=11)
    _save(root / "colour" / "rgb.jpg", mode="RGB", seed=12)
    _save(root / "colour" / "alpha.png", size=(40, 32), mode="RGBA", seed=13)
    _save(root / "colour" / "palette.png", size=(40, 32), mode="P", seed=14)
    _save(root / "UPPER.JPG", size=(28, 28), mode="RGB", seed=15)
    full = _save(root / "bad" / "cut.jpg", size=(64, 64), seed=16).read_bytes()
    (root / "bad" / "cut.jpg").write_bytes(full[: len(full) // 2])
    (root / "bad" / "empty.png").write_bytes(b"")
    (root / "bad" / "notes.jpg").write_text("this is not an image")
    return root


# ------------------------------------------------------------------ unreadable files
@pytest.mark.parametrize("workers", [0, 2])
def test_find_unreadable_names_each_broken_file_with_its_reason(messy_pool, workers):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    found = dict(find_unreadable(source, workers=workers, progress=False))
    assert set(found) == {f"bad/{name}" for name in BROKEN}
    assert "truncated" in found["bad/cut.jpg"]
    assert all(reason for reason in found.values())


def test_find_unreadable_checks_only_the_rows_asked(messy_pool):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    rows = source.rows_of(["bad/empty.png", "digits/d0.png"])
    assert [i for i, _ in find_unreadable(source, rows, workers=0, progress=False)] == ["bad/empty.png"]


def test_the_source_leaves_out_an_exclusion_list_and_renumbers_the_rest(messy_pool):
    everything = ImageFolderSource(messy_pool, (1, 28, 28))
    broken = find_unreadable(everything, workers=0, progress=False)
    source = ImageFolderSource(messy_pool, (1, 28, 28), exclude=[i for i, _ in broken] + ["gone/deleted.png"])
    assert len(source) == len(everything) - 3
    assert sorted(source.excluded) == sorted(f"bad/{n}" for n in BROKEN)
    assert "digits/café ü.png" in source.ids and "my images/two words.png" in source.ids
    assert source.ids == [i for i in everything.ids if i not in source.excluded]
    assert find_unreadable(source, workers=0, progress=False) == []
    x = source.read_rows(np.arange(len(source)))
    assert x.shape == (len(source), 1, 28, 28) and x.dtype == torch.uint8


def test_unreadable_list_round_trips_through_its_csv(tmp_path):
    entries = [("a b/c,d.jpg", "OSError: image file is truncated"), ("é/ü.png", 'said "no"')]
    write_unreadable(tmp_path / "unreadable.csv", entries)
    assert (tmp_path / "unreadable.csv").read_text(encoding="utf-8").splitlines()[0] == "id,reason"
    assert read_unreadable(tmp_path / "unreadable.csv") == entries
    assert read_unreadable(tmp_path / "missing.csv") == []
    (tmp_path / "other.csv").write_text("file,label\nx,y\n")
    with pytest.raises(SourceError, match="id,reason"):
        read_unreadable(tmp_path / "other.csv")


def test_training_view_skips_and_records_a_row_that_became_unreadable(messy_pool):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    view = SourceDataset(source, mean=[0.5], std=[0.25], targets=np.arange(len(source)) % 2)
    good = source.rows_of(["digits/d3.png", "digits/d1.png"])
    bad = source.rows_of(["bad/cut.jpg"])
    rows = np.array([good[0], bad[0], good[1], good[0]])  # unsorted, with a repeat
    x, y = view.get_batch(rows)
    assert x.shape == (3, 1, 28, 28)
    assert y.tolist() == view.labels_of(np.array([good[0], good[1], good[0]])).tolist()
    ref = (decode_image(messy_pool / "digits" / "d1.png", (28, 28), 1).float() / 255 - 0.5) / 0.25
    assert torch.allclose(x[1], ref, atol=1e-5)
    assert [(s["id"], s["row"]) for s in view.skipped] == [("bad/cut.jpg", int(bad[0]))]
    assert "truncated" in view.skipped[0]["error"]
    assert view.unreadable_rows.tolist() == [int(bad[0])]
    # known bad rows are not decoded again and never fail a later batch
    x2, _ = view.get_batch([bad[0], good[1]])
    assert x2.shape[0] == 1


def test_error_policy_names_the_file_instead(messy_pool):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    view = SourceDataset(source, on_unreadable="error")
    with pytest.raises(SourceError, match="bad/empty.png"):
        view.get_batch(source.rows_of(["digits/d0.png", "bad/empty.png"]))
    with pytest.raises(SourceError, match="on_unreadable must be one of"):
        SourceDataset(source, on_unreadable="ignore")


def test_drop_unreadable_finds_bad_rows_before_training_reads_them(messy_pool):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    view = SourceDataset(source)
    rows = np.arange(len(source))[::-1]
    kept = view.drop_unreadable(rows, workers=0)
    assert kept.tolist() == [r for r in rows.tolist() if source.id_of(r) not in {f"bad/{n}" for n in BROKEN}]
    assert {s["id"] for s in view.skipped} == {f"bad/{n}" for n in BROKEN}
    x, _ = view.get_batch(kept)
    assert x.shape[0] == kept.size
    with pytest.raises(SourceError, match="cannot read 3 training sample"):
        SourceDataset(source, on_unreadable="error").drop_unreadable(rows, workers=0)


def test_training_finishes_when_a_labeled_file_breaks_after_init(messy_pool):
    from tavaal.config import resolve_config
    from tavaal.training import build_task_models, train_task_models

    source = ImageFolderSource(messy_pool, (1, 28, 28), exclude=[f"bad/{n}" for n in BROKEN])
    labeled = np.arange(len(source))
    view = SourceDataset(source, targets=(labeled, labeled % 2))
    victim = messy_pool / "digits" / "d2.png"
    victim.write_bytes(victim.read_bytes()[:40])  # the file breaks after the pool was opened
    config = resolve_config("digits", {"epochs": 2, "batch_size": 4, "width": 4, "arch": "resnet18-cifar"})
    task = build_task_models(config, (1, 28, 28), 2, with_ranker=False)
    train_task_models(task, view, labeled, config, ranker_loss=None)
    assert [s["id"] for s in view.skipped] == ["digits/d2.png"]


def test_mask_view_skips_a_row_whose_mask_cannot_be_read(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for i in range(3):
        _save(images / f"{i}.png", size=(8, 6), seed=i)
        masks.mkdir(exist_ok=True)
        Image.fromarray(np.full((6, 8), i % 2, np.uint8), "L").save(masks / f"{i}.png")
    (masks / "1.png").write_bytes(b"\x89PNG broken")
    source = ImageFolderSource(images, (3, 6, 8))
    view = MaskSourceDataset(source, masks={r: masks / f"{r}.png" for r in range(3)}, lookup=identity_lookup(2))
    x, y = view.get_batch([2, 1, 0])
    assert x.shape == (2, 3, 6, 8) and y.shape == (2, 6, 8)
    assert y[0].eq(0).all() and y[1].eq(0).all()  # rows 2 and 0: masks of value 0
    assert [s["row"] for s in view.skipped] == [1]
    assert view.drop_unreadable([0, 1, 2], workers=0).tolist() == [0, 2]


# ------------------------------------------------------------------ mixed images, decided out loud
def test_the_shape_is_the_most_common_mode_and_size_not_the_first_file(messy_pool):
    source = ImageFolderSource(messy_pool)  # "UPPER.JPG" (RGB) sorts first
    assert source.ids[0] == "UPPER.JPG"
    assert source.sample_shape == (1, 28, 28)
    choice = choose_image_shape(source.files)
    assert choice.shape == (1, 28, 28) and not choice.given
    # headers only: the truncated JPEG's header is fine (64x64 RGB, so it differs); the empty
    # file and the text file have none
    assert choice.sampled == len(source.files) and choice.unreadable == 2
    assert choice.differ == 5  # UPPER.JPG, rgb.jpg, cut.jpg (RGB) and the two 40x32 colour files
    line = choice.describe()
    assert "1x28x28" in line and "5 of 15" in line and "aspect ratio not kept" in line


def test_a_given_shape_wins_and_every_mode_decodes_to_it(messy_pool):
    choice = choose_image_shape(ImageFolderSource(messy_pool).files, (3, 16, 20))
    assert choice.shape == (3, 16, 20) and choice.given
    source = ImageFolderSource(messy_pool, choice.shape, exclude=[f"bad/{n}" for n in BROKEN])
    for name in ("colour/alpha.png", "colour/palette.png", "digits/d0.png", "UPPER.JPG"):
        x = source.read_rows(source.rows_of([name]))
        assert x.shape == (1, 3, 16, 20)
    with pytest.raises(SourceError, match="--image-shape"):
        choose_image_shape([], (2, 8, 8))


def test_a_sample_of_a_large_folder_is_seeded(tmp_path):
    files = [_save(tmp_path / f"{i:03d}.png", size=(10 + i % 2, 10), mode="L", seed=i) for i in range(30)]
    a = choose_image_shape(files, sample=8, seed=1)
    assert a.sampled == 8 and a == choose_image_shape(files, sample=8, seed=1)
    assert a.shape[0] == 1 and a.shape[1] == 10


def test_a_channel_mismatch_names_image_shape(messy_pool):
    source = ImageFolderSource(messy_pool, (3, 28, 28))
    check_channels(source, 3)
    with pytest.raises(SourceError, match=r"1-channel inputs .* --image-shape 1,28,28"):
        check_channels(source, 1, what="the model")


# ------------------------------------------------------------------ decode workers
def test_decode_workers_follow_the_cores_unless_told(monkeypatch):
    import os

    monkeypatch.delenv("TAVAAL_DECODE_WORKERS", raising=False)
    assert decode_workers() == max(0, len(os.sched_getaffinity(0)) - 1)
    assert decode_workers(3) == 3 and decode_workers(0) == 0
    monkeypatch.setenv("TAVAAL_DECODE_WORKERS", "5")
    assert decode_workers() == 5 and decode_workers(2) == 2
    monkeypatch.setenv("TAVAAL_DECODE_WORKERS", "many")
    with pytest.raises(ValueError, match="TAVAAL_DECODE_WORKERS"):
        decode_workers()
    with pytest.raises(ValueError, match=">= 0"):
        decode_workers(-1)


@pytest.mark.parametrize("workers", [0, 1])
def test_selection_reads_skip_and_record_unreadable_files(messy_pool, workers):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    seen = []
    for rows, batch in source.iter_batches(4, num_workers=workers):
        assert batch.shape == (rows.size, 1, 28, 28)
        seen += rows.tolist()
    assert sorted(source.ids_of(set(range(len(source))) - set(seen))) == sorted(f"bad/{n}" for n in BROKEN)
    assert sorted(s["id"] for s in source.skipped) == sorted(f"bad/{n}" for n in BROKEN)


def test_read_available_keeps_the_order_and_repeats_of_the_readable_rows(messy_pool):
    source = ImageFolderSource(messy_pool, (1, 28, 28))
    a, b, bad = source.rows_of(["digits/d0.png", "digits/d4.png", "bad/notes.jpg"])
    rows, x = source.read_available([b, bad, a, b])
    assert rows.tolist() == [b, a, b]
    assert torch.equal(x[0], x[2]) and torch.equal(x[1], source.read_rows([a])[0])
