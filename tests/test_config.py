"""RunConfig, the paper's presets and their resolution."""
import pytest

from tavaal.config import PRESETS, RunConfig, resolve_config
from tavaal.methods import method_names


def test_cifar10_preset_follows_table_1():
    c = resolve_config("cifar10")
    assert (c.latent_dim, c.lr, c.wae_lr, c.disc_lr, c.eta, c.adversary_weight, c.beta) == (64, 0.1, 5e-4, 5e-4, 1, 1, 1)
    assert (c.batch_size, c.epochs, c.initial, c.budget) == (128, 200, 1000, 1000)
    assert c.milestones == [160] and c.resolved_subset() == 10000


def test_caltech101_preset_follows_table_1():
    c = resolve_config("caltech101")
    assert (c.latent_dim, c.lr, c.wae_lr, c.eta, c.adversary_weight, c.batch_size, c.initial, c.budget) == \
        (128, 0.01, 1e-4, 0.2, 15, 16, 1000, 500)


def test_flags_override_presets_and_none_is_ignored():
    c = resolve_config("cifar10", {"budget": 500, "epochs": None, "subset": 0})
    assert c.budget == 500 and c.epochs == 200 and c.resolved_subset() == 0


def test_dataset_name_selects_its_preset_when_no_preset_is_given():
    assert resolve_config(None, {"dataset": "moons"}).arch == "mlp"


def test_default_subset_is_ten_budgets():
    assert RunConfig(budget=7).resolved_subset() == 70


@pytest.mark.parametrize("overrides, message", [
    ({"methods": ["nope"]}, "unknown method"),
    ({"budget": 0}, "--budget must be >= 1"),
    ({"subset": 5, "budget": 10}, "smaller than --budget"),
    ({"disc_rank_input": "sigmoid"}, "disc_rank_input"),
    ({"ranker_detach_fraction": 1.5}, "ranker-detach-fraction"),
])
def test_inconsistent_settings_are_rejected_with_the_flag_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_config("moons", overrides)


def test_unknown_preset_and_key_are_rejected():
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_config("imagenet")
    with pytest.raises(ValueError, match="unknown config key"):
        RunConfig.from_dict({"not_a_field": 1})


def test_every_preset_is_valid_and_round_trips_through_json():
    import json

    for name in PRESETS:
        c = resolve_config(name)
        assert RunConfig.from_dict(json.loads(c.to_json())) == c


def test_every_registered_method_can_be_configured():
    for name in method_names():
        assert resolve_config("moons", {"methods": [name]}).methods == [name]


def test_stable_presets_train_for_fixed_steps_and_the_paper_toy_stays_available():
    assert resolve_config("moons").steps and resolve_config("digits").steps
    paper = resolve_config("moons-paper")
    assert paper.steps is None and paper.lr == 0.1 and paper.optimizer == "adam" and paper.epochs == 100
    # an explicit --epochs on a steps preset trains for epochs
    assert resolve_config("moons", {"epochs": 7}).steps is None
    assert resolve_config("moons", {"epochs": 7, "steps": 9}).steps == 9
    assert resolve_config("moons").rank_norm == "standardized"
    with pytest.raises(ValueError, match="steps"):
        resolve_config("moons", {"steps": 0})
    with pytest.raises(ValueError, match="rank_norm"):
        resolve_config("moons", {"rank_norm": "minmax"})
