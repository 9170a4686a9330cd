"""Rank normalisation (issue 10): one mapping raw Ranker output -> r, held by the Ranker,
invariant to the Ranker's offset and scale when standardised, carried by checkpoints and
reproduced by the exported graphs."""
import json
import logging

import numpy as np
import pytest
import torch

from tavaal.checkpoint import load_cycle_models
from tavaal.config import resolve_config
from tavaal.experiment import run_experiment
from tavaal.models import Ranker
from tavaal.models.ranker import saturated_fraction, warn_if_saturated
from tavaal.rundir import RunDirectory
from tavaal.training.inference import rank_inputs


def stages(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 6, generator=g), torch.randn(n, 4, 3, 3, generator=g)]


def fitted(rank_norm, bias_shift=0.0, weight_scale=1.0, seed=0):
    torch.manual_seed(seed)
    ranker = Ranker([6, 4], interm_dim=5, rank_norm=rank_norm)
    with torch.no_grad():
        ranker.linear.weight.mul_(weight_scale)
        ranker.linear.bias.mul_(weight_scale).add_(bias_shift)
    labeled = stages(32, seed=1)
    ranker.fit_normalization(ranker(labeled))
    return ranker


def test_standardized_rank_is_invariant_to_the_rankers_offset_and_scale():
    x = stages()
    base = fitted("standardized")
    r = base.normalize(base(x)).detach()
    for shift, scale in [(25.0, 1.0), (-40.0, 1.0), (3.0, 7.5)]:
        moved = fitted("standardized", bias_shift=shift, weight_scale=scale)
        assert torch.allclose(moved.normalize(moved(x)), r, atol=1e-5)
    assert 0.0 < float(r.min()) and float(r.max()) < 1.0 and float(r.std()) > 0.1


def test_sigmoid_rank_saturates_when_the_offset_drifts_and_warns(caplog):
    x = stages()
    drifted = fitted("sigmoid", bias_shift=-30.0)
    r = drifted.normalize(drifted(x))
    assert saturated_fraction(r) == 1.0
    with caplog.at_level(logging.WARNING, logger="tavaal.models.ranker"):
        assert warn_if_saturated(r, "test") == 1.0
    assert "saturated" in caplog.text and "--rank-norm standardized" in caplog.text
    caplog.clear()
    spread = fitted("standardized", bias_shift=-30.0)
    with caplog.at_level(logging.WARNING, logger="tavaal.models.ranker"):
        assert warn_if_saturated(spread.normalize(spread(x)), "test") < 0.9
    assert caplog.text == ""


def test_modes_map_raw_outputs_as_documented():
    ranker = Ranker([3], rank_norm="standardized")
    ranker.fit_normalization(torch.tensor([1.0, 3.0]))  # mean 2, population std 1
    raw = torch.tensor([0.0, 2.0, 4.0])
    assert torch.allclose(ranker.normalize(raw), torch.sigmoid(torch.tensor([-2.0, 0.0, 2.0])))
    ranker.rank_norm = "sigmoid"
    assert torch.allclose(ranker.normalize(raw), torch.sigmoid(raw))
    ranker.rank_norm = "raw"
    assert torch.equal(ranker.normalize(raw), raw)
    # D's input: the Ranker's r ("normalized") or the raw output (official code, "raw")
    ranker.rank_norm = "standardized"
    assert torch.equal(rank_inputs(raw, "normalized", ranker), ranker.normalize(raw))
    assert torch.equal(rank_inputs(raw, "raw", ranker), raw)


def test_bad_settings_and_inputs_are_rejected():
    with pytest.raises(ValueError, match="rank_norm"):
        Ranker([3], rank_norm="minmax")
    with pytest.raises(ValueError, match="at least one"):
        Ranker([3]).fit_normalization(torch.empty(0))
    with pytest.raises(ValueError, match="diverged"):
        Ranker([3]).fit_normalization(torch.tensor([1.0, float("nan")]))
    ranker = Ranker([3])
    ranker.fit_normalization(torch.tensor([5.0, 5.0]))  # constant outputs: scale clamped, no division by 0
    assert torch.isfinite(ranker.normalize(torch.tensor([5.0, 6.0]))).all()


def test_statistics_travel_in_the_state_dict_and_old_checkpoints_still_load():
    ranker = fitted("standardized", bias_shift=4.0)
    copy = Ranker([6, 4], interm_dim=5, rank_norm="standardized")
    copy.load_state_dict(ranker.state_dict())
    x = stages()
    assert torch.equal(copy.normalize(copy(x)), ranker.normalize(ranker(x)))
    old = {k: v for k, v in ranker.state_dict().items() if not k.startswith("rank_")}
    legacy = Ranker([6, 4], interm_dim=5)
    legacy.load_state_dict(old)
    assert float(legacy.rank_center) == 0.0 and float(legacy.rank_scale) == 1.0


@pytest.fixture(scope="module")
def tavaal_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rank") / "run"
    config = resolve_config("moons", {"methods": ["tavaal"], "trials": 1, "cycles": 1, "steps": 40,
                                      "wae_iterations": 10, "rank_norm": "standardized"})
    run_experiment(config, out, progress=False)
    return out


def test_training_fits_the_statistics_on_the_labeled_set(tavaal_run):
    from tavaal.data import load_dataset

    models = load_cycle_models(RunDirectory(tavaal_run).latest_checkpoint("tavaal", 0))
    assert models.spec["rank_norm"] == "standardized" and models.task.ranker.rank_norm == "standardized"
    labeled = json.loads((tavaal_run / "tavaal" / "trial_0" / "labeled_cycle_00.json").read_text())
    bundle = load_dataset("moons", seed=0)
    x = torch.stack([bundle.train[i][0] for i in labeled])
    with torch.no_grad():
        raw = models.task.ranker(models.task.backbone(x)[2])
    assert float(models.task.ranker.rank_center) == pytest.approx(float(raw.mean()), abs=1e-5)
    assert float(models.task.ranker.rank_scale) == pytest.approx(float(raw.std(unbiased=False)), abs=1e-5)


def test_exported_graphs_reproduce_the_normalised_rank(tavaal_run, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from tavaal.export import export_run

    manifest = export_run(tavaal_run, tmp_path / "art", method="tavaal")
    assert manifest["rank"]["rank_norm"] == "standardized"
    models = load_cycle_models(RunDirectory(tavaal_run).latest_checkpoint("tavaal", 0))
    task, adv = models.task, models.adversarial
    assert manifest["rank"]["center"] == pytest.approx(float(task.ranker.rank_center))
    x = torch.randn(37, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        raw = task.ranker(task.backbone(x)[2])
        r = task.ranker.normalize(raw)
        mu = adv.wae.encode(x)[0]
        score = adv.discriminator(r, mu)
    files = manifest["models"]["scorer"]["files"]
    scripted = torch.jit.load(str(tmp_path / "art" / files["torchscript"]))
    loss_ts, r_ts, _, score_ts = scripted(x)
    session = ort.InferenceSession(str(tmp_path / "art" / files["onnx"]), providers=["CPUExecutionProvider"])
    loss_ox, r_ox, _, score_ox = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for got in (r_ts, torch.from_numpy(np.asarray(r_ox))):
        assert torch.allclose(got, r, atol=1e-5)
    for got in (score_ts, torch.from_numpy(np.asarray(score_ox))):
        assert torch.allclose(got.reshape(-1), score.reshape(-1), atol=1e-5)
    assert torch.allclose(loss_ts, raw, atol=1e-5)
