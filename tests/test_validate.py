"""benchmarks/validate.py: the data settings and the resumable per-configuration runs."""
import math

import numpy as np
import pytest

validate = pytest.importorskip("benchmarks.validate")


def test_imbalanced_setting_cuts_classes_0_to_4_to_a_tenth_and_keeps_the_test_split():
    balanced = validate.digits_bundle("balanced")
    cut = validate.digits_bundle("imbalanced")
    full = np.bincount(balanced.train_targets, minlength=10)
    counts = np.bincount(cut.train_targets, minlength=10)
    assert list(counts[:5]) == [math.ceil(n / 10) for n in full[:5]]
    assert list(counts[5:]) == list(full[5:])
    assert np.array_equal(cut.test_targets, balanced.test_targets)
    x_b, _ = balanced.test.get_batch(None)
    x_c, _ = cut.test.get_batch(None)
    assert np.array_equal(x_b.numpy(), x_c.numpy())
    again = validate.digits_bundle("imbalanced")
    assert np.array_equal(again.train.get_batch(None)[0].numpy(), cut.train.get_batch(None)[0].numpy())


def test_validation_split_is_balanced_and_disjoint_from_the_pool_and_the_test_split():
    balanced = validate.digits_bundle("balanced")
    val = validate.digits_bundle("imbalanced", validation=True)

    def rows(dataset):
        x = dataset.get_batch(None)[0]
        return {tuple(r) for r in x.reshape(len(dataset), -1).numpy().round(5)}

    pool_x, val_x, test_x, train_x = rows(val.train), rows(val.test), rows(balanced.test), rows(balanced.train)
    assert val_x <= train_x and pool_x <= train_x
    assert not (val_x & pool_x) and not (val_x & test_x)
    assert len(val.test) == round(validate.VALIDATION_FRACTION * len(balanced.train))
    counts = np.bincount(val.test_targets, minlength=10)
    assert counts.max() - counts.min() <= 2  # balanced like the test split
    pool = np.bincount(val.train_targets, minlength=10)
    assert pool[:5].max() * 5 < pool[5:].min()  # the pool is cut


def test_run_directories_are_named_by_the_configuration(tmp_path):
    a = validate.config_for("tavaal", 5)
    b = validate.config_for("tavaal", 5, {"rank_norm": "sigmoid"})
    assert validate.run_dir_for(tmp_path, "g", "tavaal", a) == validate.run_dir_for(tmp_path, "g", "tavaal", a)
    assert validate.run_dir_for(tmp_path, "g", "tavaal", a) != validate.run_dir_for(tmp_path, "g", "tavaal", b)


@pytest.mark.slow
def test_quick_benchmark_writes_both_tables_and_resumes(tmp_path, capsys):
    args = ["--quick", "--trials", "2", "--ablation-trials", "2", "--methods", "random,entropy,nosuchmethod",
            "--settings", "imbalanced", "--jobs", "1", "--out", str(tmp_path)]
    assert validate.main(args) == 0
    printed = capsys.readouterr().out
    assert "skipped (not registered): nosuchmethod" in printed
    table = (tmp_path / "validate.md").read_text()
    assert "| entropy | 2 |" in table and "Measured" in table
    assert (tmp_path / "ablation.md").exists() and (tmp_path / "validate_imbalanced" / "improvement.png").exists()
    assert validate.main(args) == 0  # everything done: resumes, trains nothing new
    assert table.split("wall time")[1].split("Command")[1] == (tmp_path / "validate.md").read_text().split(
        "wall time")[1].split("Command")[1]
