"""A selection method from outside the package: one module written into ``tmp_path``,
registered through :func:`tavaal.methods.register_method` (or an entry point), runs through the
simulation, the labeling loop's ``select`` and ``tavaal.score`` on an export -- no package file
changes -- and picks what an independent computation on its models says it must."""
import csv
import os
import importlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from selection_oracles import highest, probabilities
from tavaal.checkpoint import load_cycle_models
from tavaal.config import resolve_config
from tavaal.data import load_dataset
from tavaal.experiment import run_experiment
from tavaal.export import export_run
from tavaal.loop import Workdir
from tavaal.methods import get_method, method_names, register_method, unregister_method
from tavaal.rundir import latest_checkpoint, read_json
from tavaal.score import main as score_main

PLUGIN = '''
"""Pick the rows the task learner finds most likely to be of class 0 (a toy method)."""
from tavaal.methods import Method, ScoreRule

METHOD = Method("classzero", "Most likely class 0", "highest softmax probability of class 0",
                rule=ScoreRule("classifier", lambda out: out["probs"][:, 0], largest=True), color="black")
'''
SMALL = {"trials": 1, "cycles": 2, "steps": 20, "initial": 20, "budget": 10, "wae_iterations": 6}


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plugin module written outside the package and registered through the public function."""
    (tmp_path / "plugin_src").mkdir()
    (tmp_path / "plugin_src" / "my_al_methods.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "plugin_src"))
    module = importlib.import_module("my_al_methods")
    register_method(module.METHOD)
    yield module.METHOD
    unregister_method(module.METHOD.name)
    sys.modules.pop("my_al_methods", None)


def class_zero_picks(checkpoint, dataset, candidates, budget):
    """What the plugin must select: the candidates of highest p(class 0) under the models."""
    models = load_cycle_models(checkpoint)
    return highest(candidates, probabilities(dataset, candidates, models.task)[:, 0], budget)


def test_the_plugin_is_registered_and_refused_twice(plugin):
    assert "classzero" in method_names() and get_method("classzero") is plugin
    assert plugin.training(resolve_config("moons")).key == get_method("random").training(resolve_config("moons")).key
    with pytest.raises(ValueError, match="already registered"):
        register_method(plugin)


def test_the_plugin_runs_in_the_simulation(plugin, tmp_path):
    config = resolve_config("moons", dict(SMALL, methods=["random", "classzero"]))
    records = run_experiment(config, tmp_path / "run", progress=False)
    mine = [r for r in records if r["method"] == "classzero"]
    assert [r["cycle"] for r in mine] == [0, 1] and mine[0]["shared_task"], "it shares random's plain learner"
    trial = tmp_path / "run" / "classzero" / "trial_0"
    labeled = read_json(trial / "labeled_cycle_01.json")
    unlabeled = np.setdiff1d(np.arange(len(load_dataset("moons", seed=0).train)), labeled)
    expected = class_zero_picks(latest_checkpoint(tmp_path / "run", "classzero", 0), load_dataset("moons", seed=0).train,
                                unlabeled, config.budget)
    assert read_json(trial / "selected_cycle_01.json") == expected.tolist()


def test_the_plugin_runs_in_the_loop_select_and_in_tavaal_score(plugin, tmp_path, capsys):
    data = load_dataset("moons", seed=0)
    x, y = data.train.get_batch(None)
    np.save(tmp_path / "pool.npy", x.numpy().astype(np.float32))
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("id", "label")] + [(str(i), str(int(y[i]))) for i in range(0, 400, 20)])
    wd = Workdir.init(tmp_path / "wd", tmp_path / "pool.npy", tmp_path / "labels.csv", preset="moons", holdout=0,
                      method="classzero", overrides={"steps": 20, "budget": 10})
    wd.train()
    batch = wd.select(10)
    assert batch.method == "classzero"
    candidates = np.setdiff1d(np.arange(len(x)), np.arange(0, 400, 20))
    expected = class_zero_picks(latest_checkpoint(wd.root), data.train, candidates, 10)
    assert [int(i) for i in batch.ids] == expected.tolist()

    export_run(wd.root, tmp_path / "art", onnx_exporter="legacy")
    assert "classzero" in json.loads((tmp_path / "art" / "manifest.json").read_text())["methods"]
    ids = tmp_path / "labeled.txt"
    ids.write_text("\n".join(str(i) for i in range(0, 400, 20)) + "\n")
    out = tmp_path / "selected.csv"
    assert score_main([str(tmp_path / "art"), "--pool", str(tmp_path / "pool.npy"), "--budget", "10", "--labeled",
                       str(ids), "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    selected = json.loads(out.with_suffix(".json").read_text())
    assert selected["summary"]["method"] == "classzero", "the artifacts' own method is the default"
    assert [r["id"] for r in selected["selected"]] == expected.tolist()


def installed_plugin(site, target: str):
    """A package directory ``site`` (for PYTHONPATH) with the plugin module and a distribution
    whose ``tavaal.methods`` entry point ``classzero`` is ``target``."""
    (site / "my_al_methods-1.0.dist-info").mkdir(parents=True)
    (site / "my_al_methods.py").write_text(textwrap.dedent(PLUGIN))
    (site / "my_al_methods-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: my-al-methods\n"
                                                                    "Version: 1.0\n")
    (site / "my_al_methods-1.0.dist-info" / "entry_points.txt").write_text(f"[tavaal.methods]\nclasszero = {target}\n")
    return {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}


def test_an_entry_point_makes_the_plugin_a_cli_method(tmp_path):
    """An installed package names its method in the ``tavaal.methods`` entry-point group:
    ``python -m tavaal.train --method classzero`` then runs it in a fresh process."""
    env = installed_plugin(tmp_path / "site", "my_al_methods:METHOD")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "tavaal.train", "--preset", "moons", "--method", "classzero",
                             "--trials", "1", "--cycles", "1", "--steps", "20", "--out", str(out), "--no-progress",
                             "--no-plots"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_json(out / "classzero" / "trial_0" / "state.json")["completed_cycles"] == 1


def test_a_broken_entry_point_is_skipped_with_a_warning_naming_it(tmp_path):
    env = installed_plugin(tmp_path / "site", "my_al_methods:NO_SUCH_NAME")
    result = subprocess.run([sys.executable, "-c", "from tavaal.methods import method_names; print(method_names())"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tavaal" in result.stdout and "classzero" not in result.stdout
    assert "classzero = my_al_methods:NO_SUCH_NAME" in result.stderr and "AttributeError" in result.stderr
