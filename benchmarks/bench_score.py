"""Pool-scoring throughput and peak memory (issue: export and high-throughput pool scoring).

Run:  python -m pytest benchmarks/bench_score.py --benchmark-only -s \
          --benchmark-json=benchmarks/results/score-cpu.json

* throughput: CIFAR-sized generated inputs (3x32x32 float32, memory-mapped .npy), ResNet-18
  (width 64) + Ranker, conv32 WAE encoder (128 base channels, d=64) and a 5-layer 512-wide
  discriminator, randomly initialised (speed does not depend on the weights).
  (a) the reference-code style loop: eager fp32, batch 128, scores moved to CPU per batch,
  full sort at the end; (b) ``select_from_pool`` with each backend x precision. Every
  (b) records ``ratio`` = its samples/s over (a)'s and ``agreement`` = share of (a)'s picks
  it also picks. Target (asserted in ``test_targets``): best ratio >= 3, agreement >= 0.99.
* peak memory: a 100k- and a 1M-row memory-mapped pool scored in subprocesses (small MLP
  artifacts so 1M rows take seconds); VmHWM must not grow with the pool size.

Environment: ``TAVAAL_BENCH_SCALE`` (default 1) scales the sample counts (e.g. 0.1 for a
smoke run); ``TAVAAL_BENCH_ASSERT=0`` records without asserting the targets.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

SCALE = float(os.environ.get("TAVAAL_BENCH_SCALE", "1"))
ASSERT = os.environ.get("TAVAAL_BENCH_ASSERT", "1") not in ("0", "", "false")
N_THROUGHPUT = max(256, int(2048 * SCALE))
BUDGET = max(10, N_THROUGHPUT // 20)
MEMORY_SIZES = (max(1000, int(100_000 * SCALE)), max(10_000, int(1_000_000 * SCALE)))
CONFIGS = [("onnx", "fp32"), ("torchscript", "fp32"), ("torchscript", "bf16"), ("eager", "fp32"), ("eager", "bf16")]
RESULTS: dict = {}


def cifar_spec(width: int = 64, wae_width: int = 128, latent_dim: int = 64) -> dict:
    return {"format": 1, "dataset": "synthetic-cifar", "input_shape": [3, 32, 32], "num_classes": 10,
            "arch": "resnet18-cifar", "width": width, "ranker_interm_dim": 128, "dropout": 0.0, "with_ranker": True,
            "adversarial": "rank", "latent_dim": latent_dim, "wae_width": wae_width, "disc_hidden": 512,
            "disc_layers": 5, "rank_mode": "normalized", "mean": [0.4914, 0.4822, 0.4465],
            "std": [0.2470, 0.2435, 0.2616]}


def vector_spec(dim: int = 128) -> dict:
    return {"format": 1, "dataset": "synthetic-vectors", "input_shape": [dim], "num_classes": 2, "arch": "mlp",
            "width": 32, "ranker_interm_dim": 32, "dropout": 0.0, "with_ranker": True, "adversarial": "rank",
            "latent_dim": 8, "wae_width": 32, "disc_hidden": 32, "disc_layers": 2, "rank_mode": "normalized",
            "mean": None, "std": None}


def make_checkpoint(path: Path, spec: dict | None = None, seed: int = 0) -> Path:
    """A checkpoint in the run-directory format with randomly initialised models."""
    from tavaal.models import Discriminator, Ranker, build_task_learner, build_wae
    from tavaal.training import AdversarialModels, TaskModels

    spec = spec or cifar_spec()
    torch.manual_seed(seed)
    shape = tuple(spec["input_shape"])
    backbone = build_task_learner(shape, spec["num_classes"], arch=spec["arch"], width=spec["width"])
    task = TaskModels(backbone, Ranker(backbone.stage_channels, spec["ranker_interm_dim"]))
    wae = build_wae(shape, spec["latent_dim"], rank_conditioned=True, base_channels=spec["wae_width"],
                    hidden_dim=spec["wae_width"])
    disc = Discriminator(spec["latent_dim"], hidden_dim=spec["disc_hidden"], num_layers=spec["disc_layers"])
    adv = AdversarialModels(wae, disc, rank_mode=spec["rank_mode"])
    torch.save({"format": 1, "spec": spec, "method": "tavaal", "trial": 0, "cycle": 0,
                "task": task.state_dict(), "adversarial": adv.state_dict()}, path)
    return Path(path)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="tavaal-bench-score-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def cifar(workdir):
    from tavaal.export import export_run

    ckpt = make_checkpoint(workdir / "cifar.pt")
    art = workdir / "art-cifar"
    export_run(workdir, art, checkpoint=ckpt, onnx_exporter="legacy")
    pool = workdir / "cifar-pool.npy"
    mm = np.lib.format.open_memmap(pool, mode="w+", dtype=np.float32, shape=(N_THROUGHPUT, 3, 32, 32))
    rng = np.random.default_rng(0)
    for s in range(0, N_THROUGHPUT, 1024):
        mm[s:s + 1024] = rng.standard_normal((min(1024, N_THROUGHPUT - s), 3, 32, 32), dtype=np.float32)
    del mm
    return ckpt, art, pool


def load_reference_models(ckpt: Path):
    from tavaal.checkpoint import load_cycle_models

    m = load_cycle_models(ckpt)
    return m.task.backbone.eval(), m.task.ranker.eval(), m.adversarial.wae.eval(), m.adversarial.discriminator.eval()


def reference_loop(models, pool: Path, budget: int):
    """The reference code's scoring: eager fp32, batch 128, per-batch .cpu(), full sort at the end."""
    backbone, ranker, wae, disc = models
    x_all = np.load(pool, mmap_mode="r")
    scores = []
    with torch.no_grad():
        for s in range(0, len(x_all), 128):
            x = torch.from_numpy(np.array(x_all[s:s + 128]))
            _, _, stages = backbone(x)
            r = torch.sigmoid(ranker(stages))
            mu = wae.encode(x)[0]
            scores.append(disc(r, mu).cpu())
    scores = torch.cat(scores)
    order = torch.argsort(scores)  # full sort, as the reference code
    return order[:budget].numpy()


def test_reference_loop(benchmark, cifar):
    ckpt, _, pool = cifar
    torch.set_num_threads(os.cpu_count() or 1)
    models = load_reference_models(ckpt)
    with torch.no_grad():  # first-call warm-up outside the timing, as for the scorers
        x = torch.from_numpy(np.array(np.load(pool, mmap_mode="r")[:8]))
        models[3](torch.sigmoid(models[1](models[0](x)[2])), models[2].encode(x)[0])
    started = time.perf_counter()
    picks = benchmark.pedantic(reference_loop, args=(models, pool, BUDGET), rounds=1, iterations=1, warmup_rounds=0)
    seconds = time.perf_counter() - started
    RESULTS["reference"] = {"samples_per_s": N_THROUGHPUT / seconds, "seconds": seconds, "picks": picks.tolist()}
    benchmark.extra_info.update({"samples": N_THROUGHPUT, "samples_per_s": N_THROUGHPUT / seconds,
                                 "load_average": os.getloadavg()})


@pytest.mark.parametrize("backend, precision", CONFIGS)
def test_scorer(benchmark, cifar, backend, precision):
    from tavaal.scoring import Scorer, open_source, select_from_pool

    _, art, pool_path = cifar
    scorer = Scorer.from_artifacts(art, backend=backend, precision=precision, method="tavaal")
    warm = torch.from_numpy(np.array(np.load(pool_path, mmap_mode="r")[:8]))
    scorer.score_batch(warm)  # load + first-call compilation outside the timing
    pool = open_source(pool_path)
    sel = benchmark.pedantic(lambda: select_from_pool(scorer, pool, "tavaal", BUDGET, batch_size=256),
                             rounds=1, iterations=1, warmup_rounds=0)
    ref = RESULTS.get("reference")
    info = {"samples": N_THROUGHPUT, "samples_per_s": sel.throughput, "timings_s": sel.timings,
            "load_average": os.getloadavg()}
    if ref is not None:
        info["ratio_vs_reference"] = sel.throughput / ref["samples_per_s"]
        info["agreement_with_reference_picks"] = len(set(ref["picks"]) & set(sel.rows.tolist())) / BUDGET
    benchmark.extra_info.update(info)
    RESULTS[f"{backend}/{precision}"] = info
    print(f"\n{backend}/{precision}: {sel.summary()}; ratio {info.get('ratio_vs_reference', float('nan')):.2f}x, "
          f"agreement {info.get('agreement_with_reference_picks', float('nan')):.3f}")


_MEMORY_SCRIPT = r"""
import sys, time, numpy as np
from tavaal.scoring import Scorer, open_source, select_from_pool
art, pool = sys.argv[1], sys.argv[2]
scorer = Scorer.from_artifacts(art, backend="onnx", method="tavaal")
started = time.perf_counter()
sel = select_from_pool(scorer, open_source(pool), "tavaal", 100, batch_size=4096)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(int(hwm), sel.scored, time.perf_counter() - started)
"""


def test_peak_memory(benchmark, workdir):
    from tavaal.export import export_run

    ckpt = make_checkpoint(workdir / "vec.pt", vector_spec())
    art = workdir / "art-vec"
    export_run(workdir, art, checkpoint=ckpt, onnx_exporter="legacy")
    rng = np.random.default_rng(0)
    peaks = {}

    def measure():
        for n in MEMORY_SIZES:
            pool = workdir / f"vec-{n}.npy"
            mm = np.lib.format.open_memmap(pool, mode="w+", dtype=np.float32, shape=(n, 128))
            for s in range(0, n, 65536):
                mm[s:s + 65536] = rng.standard_normal((min(65536, n - s), 128), dtype=np.float32)
            del mm
            res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(art), str(pool)], capture_output=True,
                                 text=True, timeout=1200, env=dict(os.environ, TAVAAL_QUIET_FALLBACK="1"))
            assert res.returncode == 0, res.stderr[-2000:]
            hwm_kb, scored, seconds = res.stdout.split()
            peaks[n] = {"vmhwm_mib": int(hwm_kb) / 1024, "scored": int(scored), "seconds": float(seconds),
                        "pool_file_mib": pool.stat().st_size / 2**20}
            pool.unlink()
        return peaks

    benchmark.pedantic(measure, rounds=1, iterations=1, warmup_rounds=0)
    small, large = (peaks[n]["vmhwm_mib"] for n in MEMORY_SIZES)
    benchmark.extra_info.update({"peaks": {str(k): v for k, v in peaks.items()}, "growth_mib": large - small})
    RESULTS["memory"] = {str(k): v for k, v in peaks.items()}
    print(f"\npeak memory: {json.dumps(RESULTS['memory'])}")
    if ASSERT:
        assert large - small < 64, f"peak memory grew by {large - small:.0f} MiB from {MEMORY_SIZES[0]} to {MEMORY_SIZES[1]}"


def test_targets(benchmark):
    """The issue's targets: best backend >= 3x the reference loop, >= 99% pick agreement."""
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    ref = RESULTS.get("reference")
    if ref is None:
        pytest.skip("run the whole module")
    scored = {k: v for k, v in RESULTS.items() if "ratio_vs_reference" in v}
    best = max(scored, key=lambda k: scored[k]["ratio_vs_reference"])
    print("\nsummary:", json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "picks"} for k, v in RESULTS.items()},
                                   indent=1, default=float))
    benchmark.extra_info.update({"best": best, "best_ratio": scored[best]["ratio_vs_reference"],
                                 "results": {k: {kk: vv for kk, vv in v.items() if kk != "picks"}
                                             for k, v in RESULTS.items()}})
    for k, v in scored.items():
        if ASSERT:
            assert v["agreement_with_reference_picks"] >= 0.99, (k, v)
    if ASSERT:
        assert scored[best]["ratio_vs_reference"] >= 3.0, f"best {best}: {scored[best]['ratio_vs_reference']:.2f}x < 3x"
