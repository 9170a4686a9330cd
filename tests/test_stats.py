"""tavaal.stats: AUBC, Student-t intervals and paired comparisons against hand-worked values."""
import csv
import math

import pytest

from tavaal.stats import aubc, format_table, summarize, t_interval, verdict, write_summary

T_975_2DF = 4.302652729911275  # t quantile 0.975 with 2 degrees of freedom (tables)


def test_aubc_is_the_trapezoid_over_labeled_sizes_divided_by_the_labeled_range():
    # 10 * (0.5 + 0.7) / 2 + 10 * (0.7 + 0.6) / 2 = 12.5, over a range of 20
    assert aubc([20, 30, 40], [0.5, 0.7, 0.6]) == pytest.approx(0.625)
    # unequal steps, given out of order
    assert aubc([40, 10, 20], [1.0, 0.0, 0.5]) == pytest.approx((10 * 0.25 + 20 * 0.75) / 30)
    assert aubc([100], [0.8]) == pytest.approx(0.8)
    assert aubc([1, 2], [0.3, 0.3]) == pytest.approx(0.3)


@pytest.mark.parametrize("labeled, accuracy", [([], []), ([1, 2], [0.5]), ([10, 10], [0.1, 0.2])])
def test_aubc_rejects_malformed_curves(labeled, accuracy):
    with pytest.raises(ValueError):
        aubc(labeled, accuracy)


def test_t_interval_matches_the_hand_computation():
    got = t_interval([1.0, 2.0, 3.0])
    half = T_975_2DF * 1.0 / math.sqrt(3)
    assert (got.mean, got.std, got.n) == (pytest.approx(2.0), pytest.approx(1.0), 3)
    assert got.low == pytest.approx(2.0 - half) and got.high == pytest.approx(2.0 + half)
    assert t_interval([1.0, 2.0, 3.0], confidence=0.5).high < got.high


def test_t_interval_has_no_bounds_below_two_values():
    one = t_interval([0.4])
    assert one.mean == 0.4 and math.isnan(one.low) and math.isnan(one.high) and not one.excludes_zero()
    assert t_interval([]).n == 0
    with pytest.raises(ValueError, match="non-finite"):
        t_interval([1.0, float("nan")])


def test_verdict_needs_the_whole_interval_on_one_side_of_zero():
    assert verdict(t_interval([0.10, 0.11, 0.12])) == "better"
    assert verdict(t_interval([-0.10, -0.11, -0.12])) == "worse"
    # every difference positive, but the interval with 3 trials still reaches below 0
    assert verdict(t_interval([0.10, 0.05, 0.05])) == "n.s."
    assert verdict(t_interval([0.3])) == "n.s."


def records(method, per_trial):
    """per_trial: list over trials of [(labeled, accuracy), ...]."""
    out = []
    for trial, curve in enumerate(per_trial):
        for cycle, (size, acc) in enumerate(curve):
            out.append({"method": method, "trial": trial, "cycle": cycle, "labeled": size, "accuracy": acc})
    return out


def test_summary_pairs_each_trial_with_the_same_trial_of_random():
    rand = records("random", [[(10, 0.70), (20, 0.80)], [(10, 0.85), (20, 0.80)], [(10, 0.80), (20, 0.90)]])
    ent = records("entropy", [[(10, 0.70), (20, 0.90)], [(10, 0.85), (20, 0.91)], [(10, 0.80), (20, 1.02)]])
    rows = summarize(rand + ent, methods=["random", "entropy"])
    by = {(r["method"], r["cycle"]): r for r in rows}
    assert by[("random", 0)]["verdict"] == "baseline"
    cycle0 = by[("entropy", 0)]
    assert cycle0["diff_mean"] == pytest.approx(0.0) and cycle0["verdict"] == "n.s."
    cycle1 = by[("entropy", 1)]  # paired diffs 0.10, 0.11, 0.12
    assert cycle1["diff_mean"] == pytest.approx(0.11)
    assert cycle1["diff_low"] == pytest.approx(0.11 - T_975_2DF * 0.01 / math.sqrt(3))
    assert cycle1["verdict"] == "better" and cycle1["paired_trials"] == 3
    assert cycle1["accuracy_mean"] == pytest.approx((0.90 + 0.91 + 1.02) / 3)
    # AUBC per trial over 10..20 = mean of the two points; differences 0.05, 0.055, 0.06
    area = by[("entropy", "AUBC")]
    assert area["accuracy_mean"] == pytest.approx((0.80 + 0.88 + 0.91) / 3)
    assert area["diff_mean"] == pytest.approx(0.055)
    assert area["diff_high"] == pytest.approx(0.055 + T_975_2DF * 0.005 / math.sqrt(3))
    assert area["verdict"] == "better"
    assert [r["cycle"] for r in rows][-2:] == ["AUBC", "AUBC"]


def test_unpaired_trials_are_left_out_of_the_difference():
    rand = records("random", [[(10, 0.5)], [(10, 0.6)]])
    other = records("coreset", [[(10, 0.7)], [(10, 0.9)], [(10, 0.1)]])  # trial 2 has no random partner
    row = next(r for r in summarize(rand + other) if r["method"] == "coreset" and r["cycle"] == 0)
    assert row["trials"] == 3 and row["paired_trials"] == 2 and row["diff_mean"] == pytest.approx(0.25)


def test_summary_without_random_has_no_verdicts(tmp_path):
    rows = summarize(records("tavaal", [[(10, 0.5), (20, 0.6)]]))
    assert all(r["verdict"] == "" and math.isnan(r["diff_mean"]) for r in rows)
    assert "(no random)" in format_table(rows)
    path = write_summary(tmp_path / "summary.csv", rows)
    with open(path) as f:
        read = list(csv.DictReader(f))
    assert [r["cycle"] for r in read] == ["0", "1", "AUBC"]
    assert read[-1]["accuracy_mean"] == "0.550000" and read[-1]["diff_mean"] == ""


def test_table_names_only_methods_whose_interval_excludes_zero():
    rand = records("random", [[(10, 0.5)], [(10, 0.6)], [(10, 0.7)]])
    good = records("margin", [[(10, 0.60)], [(10, 0.71)], [(10, 0.82)]])
    noisy = records("badge", [[(10, 0.9)], [(10, 0.5)], [(10, 0.7)]])
    text = format_table(summarize(rand + good + noisy))
    assert "beats random on AUBC (interval excludes 0): margin" in text
    assert "badge" in text.splitlines()[-2] and "n.s." in text.splitlines()[-2]


def test_table_names_the_metric_it_summarises():
    rand = records("random", [[(10, 0.5)], [(10, 0.6)]])
    text = format_table(summarize(rand), metric="mIoU")
    assert text.splitlines()[0].startswith("mIoU (%) per cycle")
    assert "mIoU-vs-labels" in text and "accuracy" not in text
