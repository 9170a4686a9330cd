"""The files tavaal writes for annotators read back through the registry: to_label.csv (filled in),
labels.csv, and the Label Studio import tasks after Label Studio exported them annotated."""
import json

import pytest

from tavaal.data.labelfiles import (ChoicePrediction, label_studio_task, label_studio_tasks, labels_csv, parse_labels,
                                    to_label_csv)


def test_to_label_csv_lists_rank_id_score_most_informative_first_with_extra_columns():
    text = to_label_csv(["b.png", "a.png"], [0.25, float("nan")], {"predicted": ["cat", "dog"], "probability": [0.9, None]})
    assert text.splitlines() == ["rank,id,score,predicted,probability", "0,b.png,0.25,cat,0.9", "1,a.png,,dog,"]


def test_to_label_csv_refuses_extra_columns_that_would_read_back_as_the_label_or_sample():
    with pytest.raises(ValueError, match="collide"):
        to_label_csv(["a"], [0.1], {"class": ["cat"]})
    with pytest.raises(ValueError, match="1 ids"):
        to_label_csv(["a"], [0.1], {"predicted": []})


def test_a_to_label_csv_with_a_label_column_filled_in_reads_back_by_its_header():
    text = to_label_csv(["b.png", "a.png"], [0.25, 0.5], {"predicted": ["cat", "dog"]}).splitlines()
    filled = [text[0] + ",label", text[1] + ",dog", text[2] + ","]
    parsed = parse_labels("\n".join(filled) + "\n")
    assert [(e.id, e.label) for e in parsed.entries] == [("b.png", "dog")]
    assert [t.id for t in parsed.unannotated] == ["a.png"]


def test_labels_csv_round_trips():
    labels = {"x/a,b.png": "big cat", "7": "dog"}
    assert {e.id: e.label for e in parse_labels(labels_csv(labels)).entries} == labels


def test_a_label_studio_task_carries_the_sample_its_batch_and_why_it_was_picked():
    prediction = ChoicePrediction("cat", 0.8, "choice", "image", "cycle 2 tavaal")
    task = label_studio_task("x/a.png", 0, 0.1, 3, cycle=2, method="tavaal", image="/data/local-files/?d=pool/x/a.png",
                             predicted="cat", probability=0.8, components={"r": 0.3, "d": float("nan")},
                             predictions=[prediction.as_prediction()])
    assert task["data"] == {"tavaal_id": "x/a.png", "rank": 0, "batch": 3, "score": 0.1, "cycle": 2, "method": "tavaal",
                            "predicted": "cat", "probability": 0.8, "score_r": 0.3, "score_d": None,
                            "image": "/data/local-files/?d=pool/x/a.png"}
    assert task["predictions"] == [{"model_version": "cycle 2 tavaal", "score": 0.8, "result": [
        {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]}]
    assert label_studio_task("5", 1, None, 0) == {"data": {"tavaal_id": "5", "rank": 1, "batch": 0, "score": None}}


def test_label_studio_tasks_round_trip_through_an_export_by_tavaal_id():
    tasks = json.loads(label_studio_tasks([label_studio_task(i, k, 0.5, 0, image=f"/pool/{i}", predicted="dog")
                                           for k, i in enumerate(["x/a.png", "b.png"])]))
    # what Label Studio exports after an annotator picked a class for each imported task
    export = [dict(t, id=40 + k, annotations=[{"id": k, "result": [{"from_name": "choice", "type": "choices",
                                                                    "value": {"choices": [c]}}]}])
              for k, (t, c) in enumerate(zip(tasks, ["cat", "dog"]))]
    parsed = parse_labels(json.dumps(export), "export.json")
    assert [(e.id, e.label, e.task) for e in parsed.entries] == [("x/a.png", "cat", "40"), ("b.png", "dog", "41")]
