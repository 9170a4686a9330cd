"""The disagreement policy every format shares (refuse | latest | majority), and skipped tasks."""
import json

import pytest

from tavaal.data.labelfiles import DISAGREEMENT_POLICIES, LabelFileError, parse_labels


def _ann(ident, choice, updated, user=1, cancelled=False):
    return {"id": ident, "completed_by": user, "was_cancelled": cancelled, "created_at": updated, "updated_at": updated,
            "result": [] if cancelled else [{"from_name": "choice", "to_name": "image", "type": "choices",
                                             "value": {"choices": [choice]}}]}


def _export(*tasks):
    return json.dumps([{"id": tid, "data": {"tavaal_id": sid}, "annotations": anns} for tid, sid, anns in tasks])


THREE = _export((1, "a.png", [_ann(10, "cat", "2026-12-01T10:00:00Z", 1), _ann(11, "dog", "2026-12-01T09:00:00Z", 2),
                              _ann(12, "cat", "2026-12-01T08:00:00Z", 3)]))


def test_the_policies_are_refuse_latest_majority_and_refuse_is_the_default():
    assert DISAGREEMENT_POLICIES == ("refuse", "latest", "majority")
    with pytest.raises(LabelFileError, match="disagreeing answers"):
        parse_labels(THREE, "e.json")
    with pytest.raises(LabelFileError, match="not a policy; choose from refuse, latest, majority"):
        parse_labels(THREE, "e.json", policy="first")


def test_latest_takes_the_newest_annotation_by_time_not_by_position():
    (entry,) = parse_labels(THREE, "e.json", policy="latest").entries
    assert (entry.label, entry.annotation) == ("cat", "10")


def test_latest_without_times_takes_the_last_answer_in_file_order():
    (entry,) = parse_labels("a,cat\na,dog\na,bird\n", policy="latest").entries
    assert entry.label == "bird"


def test_majority_takes_the_most_frequent_label_and_refuses_a_tie():
    parsed = parse_labels(THREE, "e.json", policy="majority")
    assert [e.label for e in parsed.entries] == ["cat"]
    assert parsed.resolved and "by majority" in parsed.resolved[0]
    tie = _export((1, "a.png", [_ann(10, "cat", "t1"), _ann(11, "dog", "t2")]))
    with pytest.raises(LabelFileError, match="(?s)--on-disagreement latest.*no majority"):
        parse_labels(tie, "e.json", policy="majority")


def test_duplicate_tasks_of_one_sample_are_answers_of_that_sample():
    dup = _export((1, "a.png", [_ann(10, "cat", "t1")]), (7, "a.png", [_ann(11, "cat", "t2")]),
                  (8, "b.png", [_ann(12, "dog", "t1")]), (9, "b.png", [_ann(13, "cat", "t2")]))
    with pytest.raises(LabelFileError) as info:
        parse_labels(dup, "e.json")
    assert info.value.problems == ["sample b.png: 'dog' (task 8, annotation 12, user 1, t1), "
                                   "'cat' (task 9, annotation 13, user 1, t2)"]
    assert [(e.id, e.label) for e in parse_labels(dup, "e.json", policy="latest").entries] == [("a.png", "cat"),
                                                                                                ("b.png", "cat")]


def test_skipped_tasks_are_reported_by_sample_and_task_id_and_a_skip_next_to_an_answer_is_no_skip():
    export = _export((5, "a.png", [_ann(10, None, "t1", cancelled=True)]),
                     (6, "b.png", [_ann(11, None, "t1", cancelled=True), _ann(12, "dog", "t2", user=2)]),
                     (9, "c.png", []))
    parsed = parse_labels(export, "e.json")
    assert [(e.id, e.label) for e in parsed.entries] == [("b.png", "dog")]
    assert [(t.id, t.task) for t in parsed.skipped] == [("a.png", "5")]
    assert [(t.id, t.task) for t in parsed.unannotated] == [("c.png", "9")]
    assert any("skipped" in w and "sample a.png (task 5)" in w for w in parsed.warnings)
    assert any("no label yet" in w and "sample c.png (task 9)" in w for w in parsed.warnings)


def test_a_file_of_only_skipped_tasks_is_not_an_error_but_has_no_entries():
    parsed = parse_labels(_export((5, "a.png", [_ann(10, None, "t1", cancelled=True)])), "e.json")
    assert parsed.entries == [] and [t.id for t in parsed.skipped] == ["a.png"]
