"""Bring your own task model: any nn.Module classifier + the submodules the Ranker taps trains
through the usual training functions, selects through the one selection path, exports
(TorchScript + ONNX), and tavaal.score with those artifacts picks the same rows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tavaal.checkpoint import load_cycle_models, save_cycle_models
from tavaal.config import resolve_config
from tavaal.cycle import CycleData, select_batch, train_cycle
from tavaal.data import open_source
from tavaal.data.sources import ArraySource
from tavaal.export import export_models
from tavaal.models import TappedClassifier, build_user_model, load_initial_weights, resolve_model
from tavaal.scoring import Scorer, select_from_pool

from score_fixtures import digits_bundle, scratch
from user_model_fixture import TwoTapNet

FACTORY = "user_model_fixture:two_tap_net"


def test_tapped_classifier_probes_taps_feature_and_classes():
    net = TappedClassifier(TwoTapNet(num_classes=7, width=4), (1, 8, 8), ["block1", "block2"], "pool")
    logits, feature, stages = net(torch.randn(3, 1, 8, 8))
    assert logits.shape == (3, 7) and feature.shape == (3, 8)
    assert [tuple(s.shape) for s in stages] == [(3, 4, 8, 8), (3, 8, 4, 4)]
    assert net.stage_channels == [4, 8] and net.feature_dim == 8 and net.num_classes == 7


def test_default_feature_is_the_input_of_the_last_linear_layer():
    net = TappedClassifier(TwoTapNet(num_classes=3, width=4), (1, 8, 8), ["block2"])
    x = torch.randn(2, 1, 8, 8)
    _, feature, _ = net.eval()(x)
    torch.testing.assert_close(feature, net.module.pool(net.module.block2(net.module.block1(net.module.stem(x)))).flatten(1))


def test_unknown_tap_names_the_available_submodules():
    with pytest.raises(ValueError, match="no submodule named 'layer9'.*block1"):
        TappedClassifier(TwoTapNet(), (1, 8, 8), ["layer9"])
    with pytest.raises(ValueError, match="taps"):
        resolve_model(FACTORY, 10)


def test_initial_weights_skip_a_head_of_another_shape(tmp_path):
    src = TwoTapNet(num_classes=1000, width=4)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    dst = TwoTapNet(num_classes=10, width=4)
    report = load_initial_weights(dst, tmp_path / "w.pt")
    assert set(report["skipped"]) == {"head.weight", "head.bias"}
    torch.testing.assert_close(dst.block1[0].weight, src.block1[0].weight)
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="none of its 1 keys match"):
        load_initial_weights(dst, tmp_path / "bad.pt")


def test_spec_rebuilds_the_model_with_its_initial_weights(tmp_path):
    src = TwoTapNet(num_classes=10, width=4)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    spec = resolve_model(FACTORY, 10, taps=["block1", "block2"], kwargs={"width": 4}, weights=str(tmp_path / "w.pt"))
    assert spec["factory"] == FACTORY and spec["kwargs"] == {"width": 4, "num_classes": 10}
    net = build_user_model(spec, (1, 8, 8))
    torch.testing.assert_close(net.module.head.weight, src.head.weight)


class CountingSource(ArraySource):
    """An array source that records every row it reads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = set()

    def _read_rows(self, rows):
        self.read.update(int(r) for r in rows)
        return super()._read_rows(rows)


@pytest.fixture(scope="module")
def trained():
    bundle = digits_bundle()
    x, y = bundle.train.get_batch(None)
    path = scratch("user-model") / "pool.npy"
    np.save(path, x.numpy())
    source = CountingSource(path)
    rng = np.random.default_rng(0)
    labeled = np.sort(rng.choice(len(source), 60, replace=False))
    config = resolve_config("digits", {"epochs": 2, "wae_iterations": 4, "latent_dim": 8, "wae_width": 8,
                                       "disc_hidden": 16, "disc_layers": 2, "subset": 200, "batch_size": 32})
    spec = resolve_model(FACTORY, 10, taps=["block1", "block2"], feature_layer="pool", kwargs={"width": 4})
    data = CycleData(source, labeled, bundle.train_targets[labeled], 10, name="digits")
    cycle = train_cycle(data, config, "tavaal", seed=3, user_model=spec)
    return source, data, config, cycle


def test_training_reads_only_the_labeled_rows_and_the_unlabeled_subset(trained):
    source, data, _, cycle = trained
    assert cycle.candidates is not None and len(cycle.candidates) == 200
    assert not np.isin(cycle.candidates, data.labeled).any()
    assert source.read <= set(data.labeled.tolist()) | set(cycle.candidates.tolist())
    assert isinstance(cycle.models.task.backbone, TappedClassifier)
    assert cycle.models.task.ranker.stage_channels == [4, 8]


@pytest.mark.parametrize("method", ["tavaal", "coreset", "entropy"])
def test_user_model_selects_exports_and_scores_the_same(trained, method):
    source, data, config, cycle = trained
    live = select_batch(cycle.models, open_source(source.path), 12, method=method, labeled=data.labeled,
                        candidates=cycle.candidates, rng=np.random.default_rng(1), config=config)
    assert len(set(live.rows.tolist())) == 12 and not np.isin(live.rows, data.labeled).any()
    ckpt = save_cycle_models(scratch("user-model") / "checkpoint.pt", cycle.models)
    reloaded = load_cycle_models(ckpt)
    assert reloaded.spec["user_model"]["factory"] == FACTORY
    art = scratch("user-model") / "art"
    if not (art / "manifest.json").exists():
        export_models(reloaded, art, onnx_exporter="legacy")
    for backend in ("onnx", "torchscript"):
        scorer = Scorer.from_artifacts(art, backend=backend)
        sel = select_from_pool(scorer, open_source(source.path), method, 12, labeled=data.labeled,
                               indices=cycle.candidates, rng=np.random.default_rng(1))
        np.testing.assert_array_equal(sel.rows, live.rows)


def test_torchvision_model_by_name():
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - torchvision cannot load on every torch build
        pytest.skip(f"torchvision is not importable here: {exc}")
    spec = resolve_model("torchvision:resnet18", 5)
    assert spec["taps"] == ["layer1", "layer2", "layer3", "layer4"] and spec["feature_layer"] == "avgpool"
    net = build_user_model(spec, (3, 64, 64))
    assert net.num_classes == 5 and net.stage_channels == [64, 128, 256, 512] and net.feature_dim == 512


def test_simulated_run_with_a_user_model_exports_and_scores_its_picks(tmp_path):
    import json

    from tavaal.experiment import run_experiment
    from tavaal.export import export_run

    config = resolve_config("digits", {"methods": ["tavaal"], "trials": 1, "cycles": 1, "epochs": 1,
                                       "wae_iterations": 2, "latent_dim": 8, "wae_width": 8, "disc_hidden": 16,
                                       "disc_layers": 2, "initial": 40, "budget": 10, "subset": 0})
    spec = resolve_model(FACTORY, 10, taps=["block1", "block2"], kwargs={"width": 4})
    run_experiment(config, tmp_path / "run", progress=False, user_model=spec)
    trial = tmp_path / "run" / "tavaal" / "trial_0"
    labeled = np.asarray(json.loads((trial / "labeled_cycle_00.json").read_text()))
    picked = np.asarray(json.loads((trial / "selected_cycle_00.json").read_text()))
    export_run(tmp_path / "run", tmp_path / "art", onnx_exporter="legacy")
    bundle = digits_bundle()
    x, _ = bundle.train.get_batch(None)
    np.save(tmp_path / "pool.npy", x.numpy())
    sel = select_from_pool(Scorer.from_artifacts(tmp_path / "art"), open_source(tmp_path / "pool.npy"), "tavaal", 10,
                           labeled=labeled)
    np.testing.assert_array_equal(np.sort(sel.rows), np.sort(picked))
