"""The default recipe (tavaal.training.recipe): what it picks from the data, and that it trains."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tavaal.config import RunConfig
from tavaal.models import build_task_learner
from tavaal.training.recipe import (MAX_STEPS, MIN_STEPS, RECIPE_HELP, TASK_MACS_BUDGET, crop_padding, default_recipe,
                                    task_macs)

FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 48, 48), (3, 64, 64), (3, 96, 96), (3, 224, 224), (64,)]


def recipe(shape, labeled=300, classes=10, pool=2000):
    return default_recipe(labeled=labeled, input_shape=shape, num_classes=classes, pool_size=pool)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_choice_is_a_valid_run_config_field_with_a_reason(shape):
    r = recipe(shape)
    assert set(r.overrides) <= FIELDS
    assert set(r.reasons) == set(r.overrides)
    assert all(r.reasons[k].strip() for k in r.overrides)
    config = r.config()  # validates
    for key, value in r.overrides.items():
        assert getattr(config, key) == value
    text = r.text()
    for key, value in r.overrides.items():
        assert f"{key} = {value}" in text


def test_it_replaces_the_papers_sgd_epochs_with_adam_cosine_and_a_step_budget():
    config = recipe((1, 28, 28)).config()
    assert (config.optimizer, config.lr_schedule, config.milestones) == ("adam", "cosine", [])
    assert config.steps is not None and MIN_STEPS <= config.steps <= MAX_STEPS
    assert config.lr < RunConfig().lr


def test_the_step_budget_grows_with_the_labels_and_stays_bounded():
    steps = [recipe((1, 28, 28), labeled=n, pool=10 ** 6).overrides["steps"] for n in (10, 300, 3000, 10 ** 5)]
    assert steps == sorted(steps)
    assert steps[0] == MIN_STEPS and steps[-1] == MAX_STEPS
    assert MIN_STEPS < steps[2] < MAX_STEPS


def test_small_images_keep_full_resolution_and_large_ones_get_the_strided_stem():
    assert recipe((1, 28, 28)).overrides["arch"] == "resnet18-cifar"
    assert recipe((3, 32, 32)).overrides["arch"] == "resnet18-cifar"
    assert recipe((3, 64, 64)).overrides["arch"] == "resnet18-imagenet"
    assert recipe((3, 224, 224)).overrides["arch"] == "resnet18-imagenet"


@pytest.mark.parametrize("shape", [s for s in SHAPES if len(s) == 3 and s[1] <= 96])
def test_the_task_learner_fits_the_compute_budget_and_is_narrower_than_the_papers(shape):
    o = recipe(shape).overrides
    assert task_macs(o["arch"], o["width"], shape) <= TASK_MACS_BUDGET
    assert o["width"] < RunConfig().width
    assert o["wae_width"] < RunConfig().wae_width


def test_images_beyond_the_budget_get_the_narrowest_learner_and_say_so():
    r = recipe((3, 224, 224))
    assert r.overrides["width"] == min(recipe(s).overrides["width"] for s in SHAPES if len(s) == 3)
    assert "over budget" in r.reasons["arch"]


@pytest.mark.parametrize("arch,width,shape", [("resnet18-cifar", 16, (1, 28, 28)), ("resnet18-cifar", 32, (3, 8, 8)),
                                              ("resnet18-imagenet", 32, (3, 64, 64))])
def test_the_cost_estimate_matches_the_convolutions_of_the_built_model(arch, width, shape):
    model = build_task_learner(shape, 10, arch=arch, width=width)
    counted = []

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        counted.append(output.numel() * module.in_channels // module.groups * k)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    assert task_macs(arch, width, shape) == pytest.approx(sum(counted), rel=0.15)


def test_colour_images_are_flipped_and_grayscale_ones_only_translated():
    assert recipe((3, 32, 32)).overrides["augment"] == "crop+flip"
    assert recipe((1, 28, 28)).overrides["augment"] == "crop"
    assert "flip" not in recipe((1, 64, 64)).overrides["augment"]


def test_vectors_get_an_mlp_and_no_image_augmentation():
    o = recipe((64,)).overrides
    assert (o["arch"], o["augment"], o["wae_variant"]) == ("mlp", "none", "mlp")


def test_the_wae_is_bounded_by_a_fixed_iteration_count_whatever_the_pool():
    small, large = recipe((1, 28, 28), pool=500), recipe((1, 28, 28), pool=10 ** 6)
    assert small.overrides["wae_iterations"] == large.overrides["wae_iterations"] is not None


def test_crop_padding_is_an_eighth_of_the_shorter_side():
    assert crop_padding((3, 32, 32)) == 4
    assert crop_padding((1, 8, 8)) == 1
    assert crop_padding((3, 64, 48)) == 6
    with pytest.raises(ValueError, match="C, H, W"):
        crop_padding((64,))


@pytest.mark.parametrize("kwargs,match", [(dict(labeled=0), "labeled"), (dict(num_classes=1), "2 classes"),
                                          (dict(input_shape=(1, 28)), "input_shape"),
                                          (dict(input_shape=(0, 28, 28)), "input_shape"),
                                          (dict(pool_size=10), "pool_size")])
def test_bad_inputs_are_refused(kwargs, match):
    args = dict(labeled=300, input_shape=(1, 28, 28), num_classes=10, pool_size=1000)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        default_recipe(**args)


def test_the_help_text_states_the_defaults():
    for piece in ("Adam", "cosine", str(MIN_STEPS), str(MAX_STEPS), "--set"):
        assert piece in RECIPE_HELP


def test_user_settings_are_marked_when_printed():
    r = recipe((1, 28, 28))
    marked = [line for line in r.lines(overridden=["lr"]) if "overridden" in line]
    assert len(marked) == 1 and "lr = " in marked[0]


def test_the_recipe_trains_through_the_loop(tmp_path):
    from loop_fixtures import digits_uint8, write_labels_csv, write_png_pool
    from tavaal.loop import Workdir

    images, targets = digits_uint8(160)
    ids = write_png_pool(tmp_path / "pool", images)
    seed = write_labels_csv(tmp_path / "seed.csv", [(ids[i], f"d{targets[i]}") for i in range(60)])
    r = default_recipe(labeled=50, input_shape=(1, 8, 8), num_classes=10, pool_size=len(ids))
    quick = {**r.overrides, "steps": 4, "wae_iterations": 2, "num_threads": 1}
    wd = Workdir.init(tmp_path / "wd", tmp_path / "pool", seed, holdout=10, overrides=quick)
    for key, value in r.overrides.items():
        if key not in ("steps", "wae_iterations"):
            assert getattr(wd.config, key) == value
    record = wd.train()
    assert record["trained_on"] == 50 and record["holdout"] == 10
    assert 0.0 <= record["holdout_accuracy"] <= 1.0
    assert np.isfinite(record["seconds"])
