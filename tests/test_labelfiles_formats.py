"""The label-file registry reads every Label Studio export format as Label Studio 1.23.2 writes it
(label-studio-sdk 2.1.2's converter: JSON, JSON_MIN, CSV, TSV) and refuses what it cannot tell.

The export texts below were produced by that converter from one JSON export (``EXPORT``): task
11 annotated "cat", task 12 skipped (cancelled), task 13 annotated twice ("dog" by user 1, later
"cat" by user 2), task 14 not annotated. The flat exports drop the cancelled-only task and hold
one row per annotation, newest first."""
import json

import pytest

from tavaal.data.labelfiles import LabelFileError, SampleLocations, detect_format, parse_labels
from tavaal.data.labelfiles.registry import Content


def _annotation(ident, user, choice, minute, cancelled=False):
    return {"id": ident, "completed_by": user, "was_cancelled": cancelled, "ground_truth": False, "lead_time": 2.0,
            "created_at": f"2026-12-01T10:{minute:02d}:00.000000Z", "updated_at": f"2026-12-01T10:{minute:02d}:00.000000Z",
            "result": [] if choice is None else [{"value": {"choices": [choice]}, "id": f"r{ident}", "from_name": "choice",
                                                   "to_name": "image", "type": "choices", "origin": "manual"}]}


def _task(ident, data, annotations):
    return {"id": ident, "annotations": annotations, "drafts": [], "predictions": [], "data": data, "meta": {},
            "inner_id": ident - 10, "total_annotations": len(annotations), "project": 1}


EXPORT = [
    _task(11, {"tavaal_id": "3", "rank": 0, "batch": 0, "score": 0.5, "cycle": 0, "predicted": "dog",
               "probability": 0.6}, [_annotation(21, 1, "cat", 0)]),
    _task(12, {"tavaal_id": "1", "rank": 1, "batch": 0, "score": 0.4}, [_annotation(22, 1, None, 1, cancelled=True)]),
    _task(13, {"tavaal_id": "12", "rank": 2, "batch": 0, "score": 0.3},
          [_annotation(23, 1, "dog", 2), _annotation(24, 2, "cat", 5)]),
    _task(14, {"tavaal_id": "0", "rank": 3, "batch": 0, "score": 0.2}, []),
]

CSV_EXPORT = '''"annotation_id","annotator","batch","choice","created_at","cycle","id","lead_time","predicted","probability","rank","score","tavaal_id","updated_at"
21,"1",0,"cat","2026-12-01T10:00:00.000000Z",0,11,3.5,"dog",0.6,0,0.5,"3","2026-12-01T10:00:00.000000Z"
24,"2",0,"cat","2026-12-01T10:05:00.000000Z","",13,2.0,"","",2,0.3,"12","2026-12-01T10:05:00.000000Z"
23,"1",0,"dog","2026-12-01T10:02:00.000000Z","",13,2.0,"","",2,0.3,"12","2026-12-01T10:02:00.000000Z"
"","",0,"","","",14,"","","",3,0.2,"0",""
'''
TSV_EXPORT = CSV_EXPORT.replace(",", "\t")
JSON_MIN_EXPORT = [
    {"tavaal_id": "3", "rank": 0, "batch": 0, "score": 0.5, "cycle": 0, "predicted": "dog", "probability": 0.6,
     "id": 11, "choice": "cat", "annotator": 1, "annotation_id": 21, "created_at": "2026-12-01T10:00:00.000000Z",
     "updated_at": "2026-12-01T10:00:00.000000Z", "lead_time": 3.5},
    {"tavaal_id": "12", "rank": 2, "batch": 0, "score": 0.3, "id": 13, "choice": "cat", "annotator": 2,
     "annotation_id": 24, "created_at": "2026-12-01T10:05:00.000000Z", "updated_at": "2026-12-01T10:05:00.000000Z",
     "lead_time": 2.0},
    {"tavaal_id": "12", "rank": 2, "batch": 0, "score": 0.3, "id": 13, "choice": "dog", "annotator": 1,
     "annotation_id": 23, "created_at": "2026-12-01T10:02:00.000000Z", "updated_at": "2026-12-01T10:02:00.000000Z",
     "lead_time": 2.0},
    {"tavaal_id": "0", "rank": 3, "batch": 0, "score": 0.2, "id": 14, "annotator": None, "annotation_id": None,
     "created_at": None, "updated_at": None, "lead_time": None},
]
TEXTS = {"label-studio-json": (json.dumps(EXPORT), ".json"), "label-studio-json-min": (json.dumps(JSON_MIN_EXPORT), ".json"),
         "label-studio-csv": (CSV_EXPORT, ".csv"), "label-studio-tsv": (TSV_EXPORT, ".tsv")}


@pytest.mark.parametrize("fmt", sorted(TEXTS))
def test_each_export_format_is_detected_from_its_content_whatever_the_file_is_called(fmt):
    text, _ = TEXTS[fmt]
    for suffix in ("", ".json", ".csv", ".txt"):
        assert detect_format(Content(text, suffix)).name == fmt


@pytest.mark.parametrize("fmt", sorted(TEXTS))
def test_every_export_format_gives_the_same_labels_by_tavaal_id_never_by_task_id(fmt):
    text, suffix = TEXTS[fmt]
    parsed = parse_labels(text, f"export{suffix}", suffix=suffix, policy="latest")
    assert parsed.format == fmt
    assert [(e.id, e.label, e.task) for e in parsed.entries] == [("3", "cat", "11"), ("12", "cat", "13")]
    assert [(t.id, t.task) for t in parsed.unannotated] == [("0", "14")]
    first = parsed.entries[0]
    assert (first.annotation, first.author, first.time) == ("21", "user 1", "2026-12-01T10:00:00.000000Z")


def test_only_the_json_export_knows_skipped_tasks_and_names_them_by_sample_and_task():
    parsed = parse_labels(json.dumps(EXPORT), "export.json", policy="latest")
    assert [(t.id, t.task) for t in parsed.skipped] == [("1", "12")]
    warning = next(w for w in parsed.warnings if "skipped" in w)
    assert "sample 1 (task 12)" in warning and "item" not in warning


@pytest.mark.parametrize("fmt", sorted(TEXTS))
def test_disagreeing_annotations_are_refused_by_default_in_every_format_listing_tasks_and_answers(fmt):
    text, suffix = TEXTS[fmt]
    with pytest.raises(LabelFileError) as info:
        parse_labels(text, "export", suffix=suffix)
    (problem,) = info.value.problems
    assert problem.startswith("sample 12:")
    assert "'dog' (task 13, annotation 23, user 1" in problem and "'cat' (task 13, annotation 24, user 2" in problem
    assert "--on-disagreement" in str(info.value)


def test_a_storage_synced_task_without_tavaal_id_is_resolved_against_the_recorded_document_root(tmp_path):
    pool = tmp_path / "root" / "pools" / "digits"
    locations = SampleLocations(pool_root=str(pool), document_root=str(tmp_path / "root"))
    export = [_task(31, {"image": "/data/local-files/?d=pools/digits/cats/a%20b.png"}, [_annotation(41, 1, "cat", 0)]),
              _task(32, {"image": "/data/local-files/?d=elsewhere/x.png"}, [_annotation(42, 1, "dog", 0)])]
    parsed = parse_labels(json.dumps(export), "export.json", locations=locations)
    assert [e.id for e in parsed.entries] == ["cats/a b.png", str(tmp_path / "root" / "elsewhere" / "x.png")]
    assert parsed.columns["sample"] == "data.tavaal_id, else data.image"
    # without a recorded document root a ?d= path is taken as relative to the pool
    parsed = parse_labels(json.dumps(export[:1]), "export.json")
    assert [e.id for e in parsed.entries] == ["pools/digits/cats/a b.png"]


def test_a_csv_export_row_of_a_storage_synced_task_uses_its_image_when_tavaal_id_is_empty(tmp_path):
    text = ('"annotation_id","annotator","choice","created_at","id","image","lead_time","tavaal_id","updated_at"\n'
            '21,"1","cat","t",11,"/data/local-files/?d=pool/a.png",1.0,"a.png","t"\n'
            '22,"1","dog","t",12,"/data/local-files/?d=pool/sub/b%20c.png",1.0,"","t"\n')
    locations = SampleLocations(pool_root=str(tmp_path / "pool"), document_root=str(tmp_path))
    parsed = parse_labels(text, "export.csv", locations=locations)
    assert [(e.id, e.label, e.task) for e in parsed.entries] == [("a.png", "cat", "11"), ("sub/b c.png", "dog", "12")]
    assert parsed.columns == {"sample": "tavaal_id, else image", "label": "choice"}


def test_image_urls_with_the_push_prefix_and_absolute_paths_in_the_pool_map_to_sample_ids(tmp_path):
    locations = SampleLocations(pool_root=str(tmp_path / "pool"), url_prefix="https://cdn.example/pool/")
    assert locations.sample_id("https://cdn.example/pool/x/%C3%A9.png") == "x/é.png"
    assert locations.sample_id(str(tmp_path / "pool" / "x" / "a.png")) == "x/a.png"


def test_a_task_with_tavaal_id_ignores_its_image_reference():
    export = [_task(5, {"tavaal_id": "7", "image": "/data/local-files/?d=other.png"}, [_annotation(1, 1, "cat", 0)])]
    assert [e.id for e in parse_labels(json.dumps(export), "e.json").entries] == ["7"]


def test_a_csv_export_without_tavaal_id_or_with_two_references_is_refused_not_guessed():
    no_sample = '"annotation_id","annotator","choice","created_at","id","lead_time","updated_at"\n21,"1","cat","t",11,1.0,"t"\n'
    with pytest.raises(LabelFileError, match="no sample column.*task 'id' is not a sample id"):
        parse_labels(no_sample, "export.csv")
    two = ('"annotation_id","annotator","choice","created_at","id","image","lead_time","path","updated_at"\n'
           '21,"1","cat","t",11,"a.png",1.0,"a.png","t"\n')
    with pytest.raises(LabelFileError, match=r"several \(image, path\) sample column"):
        parse_labels(two, "export.csv")


def test_a_csv_export_with_two_controls_needs_the_control_named():
    text = ('"annotation_id","annotator","choice","created_at","id","lead_time","quality","tavaal_id","updated_at"\n'
            '21,"1","cat","t",11,1.0,"good","3","t"\n')
    with pytest.raises(LabelFileError, match=r"several \(choice, quality\) label column"):
        parse_labels(text, "export.csv")
    assert [(e.id, e.label) for e in parse_labels(text, "export.csv", control="choice").entries] == [("3", "cat")]


def test_multiple_choices_or_a_non_choice_result_are_listed_per_task():
    two = [_task(1, {"tavaal_id": "a"}, [dict(_annotation(2, 1, "cat", 0), result=[
        {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["cat", "dog"]}}])]),
           _task(3, {"text": "no id"}, [_annotation(4, 1, "cat", 0)])]
    with pytest.raises(LabelFileError) as info:
        parse_labels(json.dumps(two), "e.json")
    assert len(info.value.problems) == 2
    assert "task 1 annotation 2 (a): expected exactly one choice" in info.value.problems[0]
    assert info.value.problems[1].startswith("task 3: no sample id")
    csv_two = CSV_EXPORT.replace('"cat","2026-12-01T10:00', '"[""cat"", ""dog""]","2026-12-01T10:00')
    with pytest.raises(LabelFileError, match="line 2 \\(task 11\\) \\(3\\): choice is .*expected exactly one choice"):
        parse_labels(csv_two, "e.csv")


def test_the_import_file_tavaal_writes_is_refused_with_a_hint_to_export():
    with pytest.raises(LabelFileError, match="Label Studio import file.*export the project"):
        parse_labels(json.dumps([{"data": {"tavaal_id": "1", "rank": 0}}]), "label_studio_tasks.json")


@pytest.mark.parametrize("text", ['[{"tavaal_id": "1", "choice": "cat"}]', '{"tasks": []}', '["a", "b"]',
                                  '[{"data": {"tavaal_id": "1"}, "annotations": []}, {"tavaal_id": "2"}]'])
def test_json_that_is_not_a_known_export_is_refused_never_read_as_label_studio(text):
    with pytest.raises(LabelFileError, match="no known label format"):
        parse_labels(text, "x.json")


def test_invalid_json_is_one_clear_error():
    with pytest.raises(LabelFileError, match="not valid JSON"):
        parse_labels("[{", "x.json")


def test_a_format_claimed_twice_is_refused_as_ambiguous():
    from tavaal.data.labelfiles import LabelFormat, label_formats, register_format, unregister_format

    json_min = label_formats()["label-studio-json-min"]
    register_format(LabelFormat("twin-json-min", "a second reader of the same structure", json_min.sniff,
                                json_min.read))
    try:
        with pytest.raises(LabelFileError, match="ambiguous: it reads as label-studio-json-min and as twin-json-min"):
            parse_labels(json.dumps(JSON_MIN_EXPORT), "x.json")
    finally:
        unregister_format("twin-json-min")


def test_fixtures_match_what_the_label_studio_converter_writes(tmp_path):
    """Regenerates the flat exports with label-studio-sdk's own converter (when installed)."""
    converter = pytest.importorskip("label_studio_sdk.converter")
    config = ('<View><Image name="image" value="$image"/><Choices name="choice" toName="image">'
              '<Choice value="cat"/><Choice value="dog"/></Choices></View>')
    export = json.loads(json.dumps(EXPORT))
    export[0]["annotations"][0]["lead_time"] = 3.5
    (tmp_path / "export.json").write_text(json.dumps(export))
    c = converter.Converter(config, project_dir=None)
    for fmt in ("JSON_MIN", "CSV", "TSV"):
        c.convert(str(tmp_path / "export.json"), str(tmp_path / fmt), fmt, is_dir=False)
        out = next((tmp_path / fmt).iterdir()).read_text()
        expected = {"JSON_MIN": JSON_MIN_EXPORT, "CSV": CSV_EXPORT, "TSV": TSV_EXPORT}[fmt]
        assert (json.loads(out) if fmt == "JSON_MIN" else out) == expected


def test_a_new_annotation_tool_is_one_format_registered_from_outside_the_package():
    from tavaal.data.labelfiles import LabelEntry, LabelFormat, Reading, register_format, unregister_format

    def sniff(content):
        return isinstance(content.json, dict) and set(content.json) == {"toy_tool_labels"}

    def read(content, name, options):
        reading = Reading("toy-tool", columns={"sample": "key", "label": "value"})
        for k, (ident, label) in enumerate(content.json["toy_tool_labels"].items()):
            reading.answers.append(LabelEntry(f"pair {k}", options.locations.sample_id(ident), label))
        return reading

    register_format(LabelFormat("toy-tool", "{'toy_tool_labels': {id: label}}", sniff, read))
    try:
        parsed = parse_labels(json.dumps({"toy_tool_labels": {"./a.png": "cat", "b.png": "dog"}}), "toy.json")
        assert parsed.format == "toy-tool" and [(e.id, e.label) for e in parsed.entries] == [("a.png", "cat"),
                                                                                             ("b.png", "dog")]
    finally:
        unregister_format("toy-tool")
