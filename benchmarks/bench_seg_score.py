"""Segmentation scoring throughput at 412x412 (paper Table 1 crops): the one selection path
(``select_from_pool`` over exported artifacts) vs the reference-code style eager loop, same run.

Run:  python benchmarks/bench_seg_score.py [--images 24] [--budget 4] [--out benchmarks/results/seg-score-cpu]

Models (randomly initialised: speed does not depend on the weights), as the ``cityscapes``
preset: DRN-D-22 (width 64, 19 classes) + Ranker (interm 128) on its four stages, the conv64
WAE encoder at 412x412 (base 128 channels, six stride-2 stages, d = 128) and the 5-layer
512-wide discriminator on (mu, r). Pool: ``--images`` generated 3x412x412 float32 images in a
memory-mapped ``.npy``.

* reference: eager fp32 modules, batch 4 (the paper's batch size), scores moved to the CPU per
  batch, one full ``argsort`` at the end (what the authors' code does, minus its train-mode
  scoring bug);
* ``select_from_pool`` with the onnx, torchscript and eager backends (fp32), batch 4:
  streaming top-b through the fused ``ops.score_topb``.

Each row records samples/s, the ratio to the reference measured in the same process, and the
share of the reference's picks it also picks. The machine (``lscpu``) and the load average
(``uptime``) before and after are recorded beside the numbers; on a shared machine compare
ratios, not absolute speeds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZE = 412


def seg_spec() -> dict:
    return {"format": 1, "dataset": "synthetic-cityscapes", "input_shape": [3, SIZE, SIZE], "num_classes": 19,
            "task": "segmentation", "arch": "drn-d-22", "width": 64, "ranker_interm_dim": 128, "dropout": 0.0,
            "with_ranker": True, "adversarial": "rank", "latent_dim": 128, "wae_width": 128, "wae_input_size": None,
            "disc_hidden": 512, "disc_layers": 5, "rank_mode": "normalized", "rank_norm": "sigmoid",
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """A run-directory checkpoint of randomly initialised segmentation models."""
    from tavaal.models import Discriminator, Ranker, build_task_learner, build_wae
    from tavaal.training import AdversarialModels, TaskModels

    spec = seg_spec()
    torch.manual_seed(seed)
    shape = tuple(spec["input_shape"])
    backbone = build_task_learner(shape, spec["num_classes"], arch=spec["arch"], width=spec["width"],
                                  task="segmentation")
    task = TaskModels(backbone, Ranker(backbone.stage_channels, spec["ranker_interm_dim"], rank_norm="sigmoid"))
    wae = build_wae(shape, spec["latent_dim"], rank_conditioned=True, base_channels=spec["wae_width"])
    disc = Discriminator(spec["latent_dim"], hidden_dim=spec["disc_hidden"], num_layers=spec["disc_layers"])
    adversarial = AdversarialModels(wae, disc, rank_mode=spec["rank_mode"])
    torch.save({"format": 1, "spec": spec, "method": "tavaal", "trial": 0, "cycle": 0, "task": task.state_dict(),
                "adversarial": adversarial.state_dict()}, path)
    return path


def reference_loop(models, pool: Path, budget: int, batch: int = 4) -> np.ndarray:
    """The reference code's scoring: eager fp32, per-batch .cpu(), full sort at the end."""
    backbone, ranker, wae, disc = models
    x_all = np.load(pool, mmap_mode="r")
    scores = []
    with torch.no_grad():
        for s in range(0, len(x_all), batch):
            x = torch.from_numpy(np.array(x_all[s:s + batch]))
            _, _, stages = backbone(x)
            r = torch.sigmoid(ranker(stages))
            mu = wae.encode(x)[0]
            scores.append(disc(r, mu).cpu())
    order = torch.argsort(torch.cat(scores))
    return order[:budget].numpy()


def _shell(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24, help="pool size (412x412 images)")
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--backends", default="onnx,torchscript,eager")
    parser.add_argument("--out", default="benchmarks/results/seg-score-cpu", help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)

    from tavaal.checkpoint import load_cycle_models
    from tavaal.export import export_run
    from tavaal.scoring import Scorer, open_source, select_from_pool

    torch.set_num_threads(os.cpu_count() or 1)
    machine = {"lscpu": _shell("lscpu | head -20"), "uptime_before": _shell("uptime"),
               "torch": torch.__version__, "threads": torch.get_num_threads()}
    results: dict = {"machine": machine, "images": args.images, "budget": args.budget, "batch_size": args.batch_size,
                     "image_size": [SIZE, SIZE], "rows": {}}
    with tempfile.TemporaryDirectory(prefix="tavaal-bench-seg-") as d:
        d = Path(d)
        ckpt = make_checkpoint(d / "seg.pt")
        started = time.perf_counter()
        export_run(d, d / "art", checkpoint=ckpt, onnx_exporter="legacy")
        results["export_seconds"] = time.perf_counter() - started
        pool = d / "pool.npy"
        mm = np.lib.format.open_memmap(pool, mode="w+", dtype=np.float32, shape=(args.images, 3, SIZE, SIZE))
        rng = np.random.default_rng(0)
        for i in range(args.images):
            mm[i] = rng.standard_normal((3, SIZE, SIZE), dtype=np.float32)
        del mm

        m = load_cycle_models(ckpt)
        models = (m.task.backbone.eval(), m.task.ranker.eval(), m.adversarial.wae.eval(),
                  m.adversarial.discriminator.eval())
        with torch.no_grad():  # first-call warm-up outside the timing, as for the scorers
            x = torch.from_numpy(np.array(np.load(pool, mmap_mode="r")[:2]))
            models[3](torch.sigmoid(models[1](models[0](x)[2])), models[2].encode(x)[0])
        started = time.perf_counter()
        ref_picks = reference_loop(models, pool, args.budget, args.batch_size)
        seconds = time.perf_counter() - started
        ref = {"samples_per_s": args.images / seconds, "seconds": seconds, "picks": ref_picks.tolist(),
               "load_average": os.getloadavg()}
        results["rows"]["reference eager loop"] = ref
        print(f"reference: {ref['samples_per_s']:.3f} images/s ({seconds:.1f} s)", flush=True)

        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            scorer = Scorer.from_artifacts(d / "art", backend=backend, method="tavaal")
            scorer.score_batch(torch.from_numpy(np.array(np.load(pool, mmap_mode="r")[:2])))  # load + compile
            source = open_source(pool)
            started = time.perf_counter()
            sel = select_from_pool(scorer, source, "tavaal", args.budget, batch_size=args.batch_size)
            seconds = time.perf_counter() - started
            row = {"samples_per_s": args.images / seconds, "seconds": seconds, "picks": sel.rows.tolist(),
                   "ratio_vs_reference": (args.images / seconds) / ref["samples_per_s"],
                   "agreement_with_reference_picks": len(set(ref["picks"]) & set(sel.rows.tolist())) / args.budget,
                   "load_average": os.getloadavg(), "timings_s": sel.timings}
            results["rows"][f"select_from_pool {backend}/fp32"] = row
            print(f"{backend}: {row['samples_per_s']:.3f} images/s ({seconds:.1f} s), "
                  f"{row['ratio_vs_reference']:.2f}x reference, agreement {row['agreement_with_reference_picks']:.2f}",
                  flush=True)
    machine["uptime_after"] = _shell("uptime")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return results


def markdown(results: dict) -> str:
    machine = results["machine"]
    cpu = next((line.split(":", 1)[1].strip() for line in machine["lscpu"].splitlines()
                if line.startswith("Model name")), "unknown CPU")
    lines = [f"# Segmentation scoring throughput at {SIZE}x{SIZE} ({cpu})", "",
             f"`python benchmarks/bench_seg_score.py --images {results['images']} --budget {results['budget']}`; "
             f"torch {machine['torch']}, {machine['threads']} threads, no GPU. DRN-D-22 + Ranker, conv64 WAE encoder "
             f"(d = 128), 5x512 discriminator (TA-VAAL, the `cityscapes` preset's models), batch "
             f"{results['batch_size']}, randomly initialised.", "",
             f"Load before: `{machine['uptime_before']}`  ", f"Load after: `{machine['uptime_after']}`", "",
             "| path | images/s | seconds | ratio vs reference | picks shared with reference | load avg (1 min) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in results["rows"].items():
        ratio = row.get("ratio_vs_reference")
        agree = row.get("agreement_with_reference_picks")
        lines.append(f"| {name} | {row['samples_per_s']:.3f} | {row['seconds']:.1f} | "
                     f"{'1.00 (baseline)' if ratio is None else f'{ratio:.2f}x'} | "
                     f"{'-' if agree is None else f'{agree:.2f}'} | {row['load_average'][0]:.1f} |")
    lines += ["", "```", machine["lscpu"], "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
