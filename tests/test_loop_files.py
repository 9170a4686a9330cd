"""Label files of the labeling loop: CSV id,label, Label Studio exports, to_label.csv, the Label
Studio import file -- what is accepted, and the one clear error for what is not."""
import json

import pytest

from tavaal.loop import LoopError, read_label_file
from tavaal.loop.classes import natural_order, parse_classes
from tavaal.loop.labels import label_studio_tasks, parse_csv_labels, parse_label_studio, to_label_csv


def test_csv_with_and_without_header_gives_id_label_pairs_with_line_numbers(tmp_path):
    with_header = parse_csv_labels("id,label\na.png,cat\nb.png, dog \n\n")
    assert [(e.id, e.label, e.where) for e in with_header.entries] == [("a.png", "cat", "line 2"),
                                                                        ("b.png", "dog", "line 3")]
    plain = parse_csv_labels("7,cat\n8,dog\n")
    assert [(e.id, e.label) for e in plain.entries] == [("7", "cat"), ("8", "dog")]


def test_a_returned_to_label_csv_with_a_label_column_is_read_by_its_header():
    parsed = parse_csv_labels("rank,id,score,label\n0,b.png,0.25,cat\n1,a.png,,dog\n")
    assert [(e.id, e.label) for e in parsed.entries] == [("b.png", "cat"), ("a.png", "dog")]
    with pytest.raises(LoopError, match="line 3: empty label"):
        parse_csv_labels("rank,id,score,label\n0,b.png,0.25,cat\n1,a.png,0.5,\n")


def test_csv_quoting_follows_rfc4180():
    parsed = parse_csv_labels('id,label\n"dir/a,b.png","big cat"\n')
    assert [(e.id, e.label) for e in parsed.entries] == [("dir/a,b.png", "big cat")]


def test_malformed_csv_lists_the_first_20_offending_lines_and_counts_the_rest():
    lines = ["id,label"] + [f"{k},a,extra" for k in range(25)] + ["ok,cat", ",empty-id", "empty-label,"]
    with pytest.raises(LoopError) as info:
        parse_csv_labels("\n".join(lines) + "\n", "bad.csv")
    err = info.value
    assert len(err.problems) == 27
    assert "line 2: expected 2 fields (id,label)" in str(err) and "line 21:" in str(err)
    assert "line 22:" not in str(err)  # only the first 20 are quoted ...
    assert "... and 7 more (27 in all)" in str(err)  # ... the rest is counted
    assert any("line 28: empty id" in p for p in err.problems)
    assert any("line 29: empty label" in p for p in err.problems)


@pytest.mark.parametrize("content", ["", "id,label\n", "\n\n"])
def test_a_labels_file_without_labels_is_an_error(tmp_path, content):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(LoopError, match="holds no labels"):
        read_label_file(path)


def test_missing_labels_file_is_an_error(tmp_path):
    with pytest.raises(LoopError, match="does not exist"):
        read_label_file(tmp_path / "nope.csv")


def _ls_task(task_id, data, choices, cancelled=False):
    return {"id": task_id, "data": data, "annotations": [
        {"id": 100 + task_id, "was_cancelled": cancelled,
         "result": [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": choices}}]}]}


def test_label_studio_json_export_is_read_by_tavaal_id_then_image():
    export = [_ls_task(1, {"tavaal_id": "a.png", "image": "/data/a.png"}, ["cat"]),
              _ls_task(2, {"image": "b.png"}, ["dog"]),
              {"id": 3, "data": {"tavaal_id": "c.png"}, "annotations": []},          # not annotated yet
              _ls_task(4, {"tavaal_id": "d.png"}, ["cat"], cancelled=True)]          # only a cancelled one
    parsed = parse_label_studio(json.dumps(export))
    assert [(e.id, e.label) for e in parsed.entries] == [("a.png", "cat"), ("b.png", "dog")]
    assert len(parsed.warnings) == 2 and all("not annotated" in w for w in parsed.warnings)


def test_label_studio_local_files_urls_give_the_relative_path():
    parsed = parse_label_studio(json.dumps([_ls_task(1, {"image": "/data/local-files/?d=cats/a%20b.png"}, ["cat"])]))
    assert [(e.id, e.label) for e in parsed.entries] == [("cats/a b.png", "cat")]


def test_label_studio_json_min_export_is_read():
    parsed = parse_label_studio(json.dumps([{"tavaal_id": "7", "rank": 0, "id": 12, "choice": "cat"},
                                            {"tavaal_id": "8", "id": 13, "choice": {"choices": ["dog"]}}]))
    assert [(e.id, e.label) for e in parsed.entries] == [("7", "cat"), ("8", "dog")]


def test_label_studio_tasks_with_two_choices_or_no_id_are_listed():
    export = [_ls_task(1, {"tavaal_id": "a.png"}, ["cat", "dog"]), _ls_task(2, {"text": "no id"}, ["cat"])]
    with pytest.raises(LoopError) as info:
        parse_label_studio(json.dumps(export), "export.json")
    assert len(info.value.problems) == 2
    assert "exactly one choice" in str(info.value) and "no sample id" in str(info.value)


def test_invalid_json_is_one_clear_error():
    with pytest.raises(LoopError, match="not valid JSON"):
        parse_label_studio("[{", "x.json")


def test_to_label_csv_lists_rank_id_score_most_informative_first():
    text = to_label_csv(["b.png", "a.png"], [0.25, float("nan")])
    assert text.splitlines() == ["rank,id,score", "0,b.png,0.25", "1,a.png,"]


def test_label_studio_import_file_round_trips_through_an_export():
    tasks = json.loads(label_studio_tasks(["x/a.png", "b.png"], [0.1, 0.2], "/pool", batch=3))
    assert tasks[0]["data"] == {"tavaal_id": "x/a.png", "rank": 0, "batch": 3, "score": 0.1, "image": "/pool/x/a.png"}
    # what Label Studio exports after an annotator picked a class for each imported task
    export = [dict(t, id=k, annotations=[{"result": [{"type": "choices", "value": {"choices": [c]}}]}])
              for k, (t, c) in enumerate(zip(tasks, ["cat", "dog"]))]
    parsed = parse_label_studio(json.dumps(export))
    assert [(e.id, e.label) for e in parsed.entries] == [("x/a.png", "cat"), ("b.png", "dog")]


def test_array_pool_import_file_has_no_image_field():
    tasks = json.loads(label_studio_tasks(["5"], [0.5], None, batch=0))
    assert tasks == [{"data": {"tavaal_id": "5", "rank": 0, "batch": 0, "score": 0.5}}]


def test_class_list_order_is_natural_and_explicit_lists_are_checked(tmp_path):
    assert natural_order(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert natural_order(["dog", "cat"]) == ["cat", "dog"]
    assert parse_classes("cat, dog,bird") == ["cat", "dog", "bird"]
    (tmp_path / "classes.txt").write_text("a\nb\n\nc\n")
    assert parse_classes(f"@{tmp_path / 'classes.txt'}") == ["a", "b", "c"]
    with pytest.raises(LoopError, match="more than once"):
        parse_classes("a,b,a")
    with pytest.raises(LoopError, match="empty class names"):
        parse_classes("a,,b")
