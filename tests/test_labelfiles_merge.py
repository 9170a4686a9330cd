"""Label files merged into a work directory: every label lands on its own sample whatever the
format (the array-pool CSV export whose task ids are valid row numbers), corrections need
--relabel and keep a history, skipped tasks are shown, header aliases are reported."""
import csv
import io
import json

import numpy as np
import pytest

from tavaal import cli
from tavaal.loop import LoopError, Workdir

from loop_fixtures import digits_uint8, fingerprint, write_labels_csv

CLASSES = [str(k) for k in range(10)]


@pytest.fixture
def array_workdir(tmp_path):
    images, targets = digits_uint8(40)
    np.save(tmp_path / "pool.npy", images[:, None])
    seed = write_labels_csv(tmp_path / "seed.csv", [(str(r), str(targets[r])) for r in range(10)])
    wd = Workdir.init(tmp_path / "wd", tmp_path / "pool.npy", seed, classes=CLASSES, holdout=0)
    return wd, [str(t) for t in targets]


def _ls_csv_export(rows, delimiter=","):
    """A Label Studio 1.23 CSV/TSV export (label-studio-sdk's converter: sorted columns,
    csv.QUOTE_NONNUMERIC) of tasks ``rows``: dicts with the task id, tavaal_id and choice."""
    fields = sorted({"annotation_id", "annotator", "batch", "choice", "created_at", "id", "lead_time", "rank", "score",
                     "tavaal_id", "updated_at"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, quoting=csv.QUOTE_NONNUMERIC, delimiter=delimiter)
    writer.writeheader()
    for k, row in enumerate(rows):
        writer.writerow({"annotation_id": 100 + k, "annotator": "annotator@example.com", "batch": 0,
                         "created_at": "2026-12-01T10:00:00.000000Z", "updated_at": "2026-12-01T10:00:00.000000Z",
                         "lead_time": 2.5, "rank": k, "score": 0.5, **row})
    return out.getvalue()


@pytest.mark.parametrize("delimiter, suffix", [(",", ".csv"), ("\t", ".tsv")])
def test_an_array_pool_csv_export_puts_every_label_on_its_tavaal_id_row_not_the_task_id_row(
        array_workdir, tmp_path, delimiter, suffix):
    wd, truth = array_workdir
    rows = list(range(20, 36))  # 16 samples of the batch; Label Studio's task ids 1..16 are rows of the pool too
    export = _ls_csv_export([{"id": task, "tavaal_id": str(row), "choice": truth[row]}
                             for task, row in enumerate(rows, start=1)], delimiter)
    path = tmp_path / f"project-1-export{suffix}"
    path.write_text(export)
    report = wd.label(path)
    assert report.added == 16
    labels = wd.labels
    assert {r: labels[str(r)] for r in rows} == {r: truth[r] for r in rows}
    assert all(str(task) not in labels for task in range(10, 17))  # task ids never became sample ids
    assert report.columns == "sample from 'tavaal_id', label from 'choice'"


def test_a_correction_is_refused_without_relabel_naming_the_flag_and_listing_the_changes(array_workdir, tmp_path):
    wd, truth = array_workdir
    wrong = "9" if truth[3] != "9" else "8"
    path = write_labels_csv(tmp_path / "fix.csv", [("3", wrong), ("4", truth[4]), ("30", truth[30])])
    before = fingerprint(wd.root)
    with pytest.raises(LoopError) as info:
        wd.label(path)
    assert "run again with --relabel" in str(info.value)
    assert info.value.problems == [f"line 2: id '3' is already labeled {truth[3]!r}; the file says {wrong!r} "
                                   "(a correction: --relabel applies it)"]
    assert fingerprint(wd.root) == before
    report = wd.label(path, relabel=True)
    assert (report.added, report.unchanged, report.corrected) == (1, 1, [f"3: {truth[3]} -> {wrong}"])
    state = wd.state()
    assert state["labels"]["3"] == wrong
    assert [(h["label"], h["round"]) for h in state["label_history"]["3"]] == [(truth[3], 0), (wrong, 1)]
    assert state["label_history"]["3"][1]["source"] == str(path)
    assert wd.status()["corrections"] == [{"round": 1, "corrected": 1}]
    assert "corrections (labels changed with --relabel): round 1: 1" in wd.status_text()
    assert wd.label(path, relabel=True).changed is False  # idempotent


def test_the_cli_refusal_names_relabel_and_the_flag_applies_it(array_workdir, tmp_path, capsys):
    wd, truth = array_workdir
    wrong = "9" if truth[5] != "9" else "8"
    path = write_labels_csv(tmp_path / "fix.csv", [("5", wrong)])
    assert cli.main(["label", str(wd.root), str(path)]) == 2
    assert "--relabel" in capsys.readouterr().err
    assert cli.main(["label", str(wd.root), str(path), "--relabel"]) == 0
    assert f"1 corrected (5: {truth[5]} -> {wrong})" in capsys.readouterr().out


def test_disagreeing_answers_follow_on_disagreement_in_the_cli(array_workdir, tmp_path, capsys):
    wd, truth = array_workdir
    export = [{"id": 7, "data": {"tavaal_id": "30"}, "annotations": [
        {"id": 1, "was_cancelled": False, "updated_at": "2026-12-01T10:00:00Z", "completed_by": 1,
         "result": [{"from_name": "choice", "type": "choices", "value": {"choices": ["1"]}}]},
        {"id": 2, "was_cancelled": False, "updated_at": "2026-12-01T11:00:00Z", "completed_by": 2,
         "result": [{"from_name": "choice", "type": "choices", "value": {"choices": ["2"]}}]}]},
              {"id": 8, "data": {"tavaal_id": "31"}, "annotations": [{"id": 3, "was_cancelled": True, "result": []}]}]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    assert cli.main(["label", str(wd.root), str(path)]) == 2
    err = capsys.readouterr().err
    assert "sample 30: '1' (task 7, annotation 1, user 1" in err and "'2' (task 7, annotation 2, user 2" in err
    assert cli.main(["label", str(wd.root), str(path), "--on-disagreement", "latest"]) == 0
    out = capsys.readouterr().out
    assert wd.labels["30"] == "2"
    assert "1 skipped by the annotators (still out for labeling): 31" in out
    assert wd.status()["skipped"] == ["31"]
    assert "skipped by the annotators (still out for labeling): 1: 31" in wd.status_text()


def test_a_spreadsheet_with_aliases_nfd_names_and_empty_rows_merges_and_says_which_columns(tmp_path):
    import unicodedata
    from PIL import Image

    pool = tmp_path / "pool"
    (pool / "café").mkdir(parents=True)
    images, targets = digits_uint8(12)
    names = [f"café/é {k}.png" for k in range(12)]
    for name, img in zip(names, images):
        Image.fromarray(img, mode="L").save(pool / name)
    nfd = [unicodedata.normalize("NFD", n) for n in names]
    seed = tmp_path / "seed.csv"
    seed.write_text("filename,class\n" + "".join(f"{n},{t}\n" for n, t in zip(nfd[:6], targets[:6])))
    wd = Workdir.init(tmp_path / "wd", pool, seed, classes=CLASSES, holdout=0)
    assert len(wd.labels) == 6
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("File,Category\n" + f".\\{nfd[6].replace('/', chr(92))},{targets[6]}\n{nfd[7]},\n")
    report = wd.label(sheet)
    assert report.added == 1 and wd.labels[names[6]] == str(targets[6])
    assert report.columns == "sample from 'File', label from 'Category'"
    assert any("no label yet" in w for w in report.warnings)
