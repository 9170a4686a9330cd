"""``python -m tavaal.demo``: first the labeling loop on digits written as PNG files (the real
CLI, as subprocesses, with a stand-in annotator), then both comparisons (side by side) with the
tables printed at the end."""
import csv

import pytest

from tavaal import demo
from tavaal.loop import Workdir


@pytest.mark.slow
def test_quick_demo_walks_the_labeling_loop_then_prints_the_paired_comparison_at_the_end(tmp_path, capsys):
    assert demo.main(["--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    loop_part, tail = printed.split("=" * 100)
    for command in ("init work --pool digits_png --labels seed_labels.csv", "train work", "select work --budget",
                    "label work returned_labels_0.csv", "status work"):
        assert f"\n$ tavaal {command}" in loop_part
    assert "labeled 160 (20 held out" in loop_part
    for name in ("moons", "digits"):
        assert f"\n{name}: 2 trials" in tail
        assert (tmp_path / name / "summary.csv").exists() and (tmp_path / name / "improvement.png").exists()
    assert tail.count("beats random on AUBC") == 2 and "demo finished in" in tail


@pytest.mark.slow
def test_the_loop_walkthrough_labels_each_selected_batch_and_the_labeled_set_grows(tmp_path, capsys):
    work = demo.loop_walkthrough(tmp_path, quick=True)
    printed = capsys.readouterr().out
    root = tmp_path / "loop"
    assert len(list((root / "digits_png").glob("*.png"))) == 1797
    with open(root / "seed_labels.csv", newline="") as f:
        seed = [row["id"] for row in csv.DictReader(f)]
    assert len(seed) == 10 * demo.SEED_PER_CLASS
    state = Workdir(work).state()
    cycles = state["cycles"]
    assert [c["trained_on"] for c in cycles] == [len(seed) - 20 + c * demo.LOOP_BUDGET
                                                 for c in range(demo.LOOP_CYCLES)]
    asked = []
    for cycle in range(demo.LOOP_CYCLES):
        with open(root / f"returned_labels_{cycle}.csv", newline="") as f:
            asked += [row["id"] for row in csv.DictReader(f)]
    assert len(asked) == len(set(asked)) == demo.LOOP_CYCLES * demo.LOOP_BUDGET
    assert not set(asked) & set(seed)                              # never picks a labeled image
    assert set(state["labels"]) == set(seed) | set(asked)         # exactly the labels given, nothing else
    with open(work / "to_label.csv", newline="") as f:
        assert [row["id"] for row in csv.DictReader(f)] == asked[-demo.LOOP_BUDGET:]
    assert "\n$ head -4 work/to_label.csv\n  rank,id,score,predicted,probability,r,d\n  0," in printed
    assert f"labeled {len(seed) + len(asked)} (20 held out" in printed and "out for labeling: 0" in printed
