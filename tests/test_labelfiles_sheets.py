"""Plain label sheets as people make them (CSV or TSV): header aliases, normalised ids, half-filled
sheets, RFC 4180 quoting, and the one clear error for what cannot be read."""
import unicodedata

import pytest

from tavaal.data.labelfiles import LabelFileError, normalise_sample_id, parse_labels, read_label_file


def test_csv_with_and_without_header_gives_sample_label_pairs_with_line_numbers():
    with_header = parse_labels("id,label\na.png,cat\nb.png, dog \n\n")
    assert [(e.id, e.label, e.where) for e in with_header.entries] == [("a.png", "cat", "line 2"),
                                                                        ("b.png", "dog", "line 3")]
    assert with_header.format == "csv" and with_header.columns == {"sample": "id", "label": "label"}
    plain = parse_labels("7,cat\n8,dog\n")
    assert [(e.id, e.label) for e in plain.entries] == [("7", "cat"), ("8", "dog")] and plain.columns == {}


@pytest.mark.parametrize("sample", ["id", "filename", "File", "path", "IMAGE", "tavaal_id"])
@pytest.mark.parametrize("label", ["label", "class", "Category"])
def test_header_aliases_name_the_sample_and_label_columns_and_the_report_says_which(sample, label):
    parsed = parse_labels(f"note,{sample},{label}\nx,a.png,cat\n")
    assert [(e.id, e.label) for e in parsed.entries] == [("a.png", "cat")]
    assert parsed.describe_columns() == f"sample from {sample!r}, label from {label!r}"


def test_tavaal_id_wins_over_the_other_sample_aliases():
    parsed = parse_labels("id,tavaal_id,label\n1,b.png,cat\n")
    assert [(e.id, e.label) for e in parsed.entries] == [("b.png", "cat")]


@pytest.mark.parametrize("header, what", [("id,filename,label", "several columns could name the sample (id, filename)"),
                                          ("id,label,class", "several columns could hold the label (label, class)"),
                                          ("rank,id,score", "no label column"),
                                          ("name,class", "no sample column")])
def test_a_header_whose_sample_or_label_column_is_ambiguous_or_missing_is_refused(header, what):
    with pytest.raises(LabelFileError, match=r"line 1 \(header") as info:
        parse_labels(f"{header}\na,b,c\n", "sheet.csv")
    assert what in str(info.value)


def test_ids_are_normalised_nfc_forward_slashes_no_leading_dot_slash():
    nfd = unicodedata.normalize("NFD", "café/é.png")
    parsed = parse_labels(f"filename,class\n{nfd},cat\n.\\dir\\b.png,dog\n./././c.png,cat\n")
    assert [e.id for e in parsed.entries] == [unicodedata.normalize("NFC", "café/é.png"), "dir/b.png", "c.png"]
    assert normalise_sample_id("  ./x\\y.png ") == "x/y.png" and normalise_sample_id("12") == "12"


def test_a_half_filled_sheet_keeps_the_labeled_lines_and_warns_about_the_empty_ones():
    parsed = parse_labels("rank,id,score,label\n0,b.png,0.25,cat\n1,a.png,0.5,\n2,c.png,0.1,  \n")
    assert [(e.id, e.label) for e in parsed.entries] == [("b.png", "cat")]
    assert [(t.id, t.where) for t in parsed.unannotated] == [("a.png", "line 3"), ("c.png", "line 4")]
    assert any("2 task(s) or line(s) have no label yet" in w and "sample a.png (line 3)" in w for w in parsed.warnings)


def test_tab_separated_sheets_are_read():
    assert [(e.id, e.label) for e in parse_labels("filename\tclass\na,b.png\tcat\n").entries] == [("a,b.png", "cat")]
    assert [(e.id, e.label) for e in parse_labels("x.png\tcat\n", suffix=".tsv").entries] == [("x.png", "cat")]


def test_csv_quoting_follows_rfc4180():
    parsed = parse_labels('id,label\n"dir/a,b.png","big cat"\n')
    assert [(e.id, e.label) for e in parsed.entries] == [("dir/a,b.png", "big cat")]


def test_malformed_lines_are_all_listed_the_first_20_quoted_and_the_rest_counted():
    lines = ["id,label"] + [f"{k},a,extra" for k in range(25)] + ["ok,cat", ",empty-id"]
    with pytest.raises(LabelFileError) as info:
        parse_labels("\n".join(lines) + "\n", "bad.csv")
    err = info.value
    assert len(err.problems) == 26
    assert "line 2: expected 3 fields" not in str(err) and "line 2: expected 2 fields (as the header)" in str(err)
    assert "line 22:" not in str(err) and "... and 6 more (26 in all)" in str(err)
    assert err.problems[-1].startswith("line 28: empty id")


def test_repeated_lines_for_a_sample_follow_the_disagreement_policy():
    assert [(e.id, e.label) for e in parse_labels("a,cat\nb,dog\na,cat\n").entries] == [("a", "cat"), ("b", "dog")]
    with pytest.raises(LabelFileError, match=r"sample a: 'cat' \(line 1\), 'dog' \(line 2\)"):
        parse_labels("a,cat\na,dog\n", "s.csv")
    assert [(e.label, e.where) for e in parse_labels("a,cat\na,dog\n", policy="latest").entries] == [("dog", "line 2")]


@pytest.mark.parametrize("content", ["", "id,label\n", "\n\n"])
def test_a_labels_file_without_any_line_is_an_error(tmp_path, content):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(LabelFileError, match="holds no labels"):
        read_label_file(path)


def test_missing_or_undecodable_files_are_clear_errors(tmp_path):
    with pytest.raises(LabelFileError, match="does not exist"):
        read_label_file(tmp_path / "nope.csv")
    (tmp_path / "latin1.csv").write_bytes("id,label\ncaf\xe9.png,cat\n".encode("latin-1"))
    with pytest.raises(LabelFileError, match="cannot read it as UTF-8"):
        read_label_file(tmp_path / "latin1.csv")


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    (tmp_path / "excel.csv").write_bytes("\ufefffilename,class\na.png,cat\n".encode("utf-8"))
    assert read_label_file(tmp_path / "excel.csv").columns == {"sample": "filename", "label": "class"}
