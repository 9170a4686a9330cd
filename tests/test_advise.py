"""``tavaal advise``: a retrospective comparison of methods inside a work directory's labeled set."""
import json

import pytest

from tavaal.advise import advise, plan_sizes, recommendation, retrospective_bundle, trial_estimate
from tavaal.loop import LoopError, Workdir
from tavaal.methods import Method, register_method, unregister_method

from loop_fixtures import digits_uint8, write_labels_csv, write_png_pool

FAST = {"steps": 60, "wae_iterations": 20, "num_threads": 1}


@pytest.fixture(scope="module")
def digits_workdir(tmp_path_factory):
    """Bundled digits as PNG files: 400 in the pool, 300 labeled (10% held out), 100 unlabeled."""
    tmp = tmp_path_factory.mktemp("advise")
    images, targets = digits_uint8(400)
    ids = write_png_pool(tmp / "pool", images)
    labels = write_labels_csv(tmp / "labels.csv", [(i, str(t)) for i, t in zip(ids[:300], targets[:300])])
    return Workdir.init(tmp / "wd", tmp / "pool", labels, preset="digits", overrides=FAST), ids, targets


@pytest.fixture
def random_twin():
    """A second registered copy of random (a uniform draw, no model)."""
    twin = register_method(Method("random_twin", "Random (twin)", "a second copy of random sampling", rule=None,
                                  compare=False))
    yield twin.name
    unregister_method(twin.name)


def test_sizes_leave_half_of_the_retrospective_pool_unlabeled():
    sizes = plan_sizes(270, 10, cycles=4)
    assert sizes == {"initial": 27, "budget": 27, "cycles": 4}
    assert sizes["initial"] + sizes["cycles"] * sizes["budget"] <= 270 * 0.5 + sizes["budget"]
    with pytest.raises(ValueError, match="too few"):
        plan_sizes(5, 2, cycles=4)


def test_the_retrospective_pool_is_the_labeled_set_and_the_holdout_is_the_test_set(digits_workdir):
    wd, ids, targets = digits_workdir
    bundle = retrospective_bundle(wd)
    holdout = set(wd.meta["holdout"])
    assert len(bundle.test) == len(holdout) == 30 and len(bundle.train) == 270
    # every training row is a labeled, non-held-out sample with its own label (no unlabeled sample is read)
    train_ids = sorted((i for i in wd.labels if i not in holdout), key=ids.index)
    expected = [int(targets[ids.index(i)]) for i in train_ids]
    assert bundle.train_targets.tolist() == expected


def test_advise_reports_every_method_with_an_interval_and_a_recommendation(digits_workdir, random_twin):
    wd, _, _ = digits_workdir
    result = advise(wd.root, methods=["random", random_twin, "margin", "tavaal"], trials=2, max_minutes=30,
                    cycles=3, progress=False)
    saved = json.loads((wd.root / "advice" / "advice.json").read_text())
    assert saved["summary"] == result.summary and saved["recommendation"] == result.recommendation
    assert saved["protocol"]["trials"] == 2 and saved["protocol"]["cycles"] == 3
    assert [r["method"] for r in saved["methods"]] == ["random", random_twin, "margin", "tavaal"]
    assert list(result.methods) == ["random", random_twin, "margin", "tavaal"]
    for name, r in result.methods.items():
        assert len(r["curve"]) == 3 and r["seconds_per_cycle"] > 0
        if name != "random":
            assert r["verdict"] in ("better", "worse", "n.s.") and r["low"] <= r["diff"] <= r["high"]
    twin = result.methods[random_twin]
    assert twin["verdict"] == "n.s." and twin["diff"] == 0.0, "random vs random under CRN: indistinguishable"
    indistinguishable = result.recommendation.split("not distinguishable from random: ")[1].split(";")[0]
    assert random_twin in indistinguishable.split(", ")
    assert [c["labeled"] for c in result.methods["tavaal"]["discriminator"]] == [33, 66, 99]
    for name in ("advice.csv", "advice.txt", "accuracy.png", "improvement.png"):
        assert (wd.root / "advice" / name).exists()
    assert result.recommendation in result.report


def test_recommendation_names_the_best_method_or_says_to_label_at_random():
    better = {"diff": 0.031, "low": 0.012, "high": 0.05, "verdict": "better"}
    same = {"diff": 0.002, "low": -0.01, "high": 0.014, "verdict": "n.s."}
    worse = {"diff": -0.05, "low": -0.08, "high": -0.02, "verdict": "worse"}
    rec = recommendation({"random": {"verdict": "baseline"}, "margin": better, "tavaal": same, "lloss": worse}, 300)
    assert rec == ("recommend margin: +3.1 [+1.2, +5.0] AUBC points over random; not distinguishable from random: "
                   "tavaal; worse than random: lloss")
    rec = recommendation({"random": {"verdict": "baseline"}, "tavaal": same}, 300)
    assert rec.startswith("no method beats random on these labels yet: label at random and advise again at 600")


def test_advise_refuses_unknown_methods_and_too_few_labels(digits_workdir, tmp_path):
    wd, _, _ = digits_workdir
    with pytest.raises(LoopError, match="unknown method"):
        advise(wd.root, methods=["random", "nosuch"], progress=False)
    images, targets = digits_uint8(20)
    ids = write_png_pool(tmp_path / "pool", images)
    labels = write_labels_csv(tmp_path / "l.csv", [(i, str(t)) for i, t in zip(ids[:6], targets[:6])])
    small = Workdir.init(tmp_path / "wd", tmp_path / "pool", labels, preset="digits", overrides=FAST)
    with pytest.raises(LoopError, match="too few"):
        advise(small.root, methods=["random", "margin"], progress=False)


def test_status_shows_the_discriminator_and_the_last_advice(tmp_path):
    images, targets = digits_uint8(200)
    ids = write_png_pool(tmp_path / "pool", images)
    labels = write_labels_csv(tmp_path / "l.csv", [(i, str(t)) for i, t in zip(ids[:100], targets[:100])])
    wd = Workdir.init(tmp_path / "wd", tmp_path / "pool", labels, preset="digits", method="tavaal",
                      overrides=dict(FAST, disc_diagnostics=True))
    record = wd.train()
    assert 0.0 <= record["disc_auc_train"] <= 1.0 and record["disc_score_max"] <= 1.0
    assert record["rank_std"] is not None
    assert "D AUC" in wd.status_text()
    assert wd.status()["advice"] is None
    sizes = plan_sizes(90, 10, cycles=2)
    plain, adversarial = trial_estimate(wd, ["random"], 90, sizes), trial_estimate(wd, ["random", "tavaal"], 90, sizes)
    assert 0 < 2 * plain < adversarial, "from the cycle the work directory trained: tavaal adds its WAE/D time"
    result = advise(wd.root, methods=["random", "margin"], trials=1, max_minutes=10, cycles=2, progress=False)
    assert wd.status()["advice"] == result.summary
    assert f"advice: {result.summary}" in wd.status_text()
    assert any("only 1 trial" in w for w in result.warnings)


def test_cli_advise_refuses_with_exit_2_and_one_error_line(digits_workdir, capsys):
    from tavaal import cli

    wd, _, _ = digits_workdir
    assert cli.main(["advise", str(wd.root), "--methods", "random,nosuch", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown method 'nosuch'")
