"""GPU pool scoring, CIFAR-sized (3 x 32 x 32 inputs, ResNet-18 + Ranker, WAE encoder, 5-layer
discriminator; randomly initialised: speed does not depend on the weights): tavaal's selection
path (``Scorer.from_models`` on the GPU + ``select_from_pool``, fp32 and bf16) against the
reference code's loop on the same GPU (eager fp32, batch 128, scores moved to the host per
batch, a full sort at the end). Issue 9 goal: >= 10x the reference loop."""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from common import Results, parse_args, record, scaled, sync  # noqa: E402


def reference_loop(models, x_all: np.ndarray, budget: int, device: str):
    backbone, ranker, wae, disc = models
    scores = []
    with torch.no_grad():
        for s in range(0, len(x_all), 128):
            x = torch.from_numpy(x_all[s : s + 128]).to(device)
            _, _, stages = backbone(x)
            r = torch.sigmoid(ranker(stages))
            mu = wae.encode(x)[0]
            scores.append(disc(r, mu).cpu())
    return torch.argsort(torch.cat(scores))[:budget].numpy()


def main():
    args = parse_args(__doc__)
    dev = args.device
    n = scaled(50_000, args.scale, 512)
    budget = max(10, n // 50)
    res = Results(args.out, "pool_scoring", dev, args.scale)
    try:
        from bench_score import cifar_spec, make_checkpoint
        from tavaal.checkpoint import load_cycle_models
        from tavaal.data.sources import ArraySource
        from tavaal.scoring import Scorer, select_from_pool

        tmp = tempfile.TemporaryDirectory()
        ckpt = make_checkpoint(Path(tmp.name) / "cifar.pt", cifar_spec())
        m = load_cycle_models(ckpt)
        models = (m.task.backbone, m.task.ranker, m.adversarial.wae, m.adversarial.discriminator)
        for module in models:  # moved in place: the containers see the same modules
            module.to(dev).eval()
        x_all = np.random.default_rng(0).standard_normal((n, 3, 32, 32), dtype=np.float32)
        pool_file, warm_file = Path(tmp.name) / "pool.npy", Path(tmp.name) / "warm.npy"
        np.save(pool_file, x_all)  # the product reads pools from files (memory-mapped)
        np.save(warm_file, x_all[: min(2048, n // 4)])  # (the dry run's CPU stand-in: a small warm-up)
        reference_loop(models, x_all[:256], 10, dev)  # warm-up (cuDNN autotune, allocations)
        sync(dev)
        t = time.perf_counter()
        ref_picks = reference_loop(models, x_all, budget, dev)
        t_ref = time.perf_counter() - t
        source = ArraySource(pool_file)
        for precision in ("fp32", "bf16"):
            scorer = Scorer.from_models(m.task, m.adversarial, input_shape=(3, 32, 32), device=dev,
                                        precision=precision)
            select_from_pool(scorer, ArraySource(warm_file), "tavaal", 10, batch_size=1024)  # warm-up
            sync(dev)
            t = time.perf_counter()
            sel = select_from_pool(scorer, source, "tavaal", budget, batch_size=1024)
            sync(dev)
            t_ours = time.perf_counter() - t
            agree = len(set(sel.rows.tolist()) & set(ref_picks.tolist())) / budget
            res.add(record(f"pool scoring {precision} n={n} CIFAR-sized", "seconds", t_ours, t_ref,
                           "reference loop (eager fp32, batch 128, per-batch .cpu(), full sort)",
                           goal=">= 10x the reference loop",
                           goal_met=(t_ref / t_ours >= 10) if (dev == "cuda" and args.scale >= 1) else None,
                           samples_per_s=n / t_ours, reference_samples_per_s=n / t_ref,
                           picks_shared_with_reference=agree))
    except Exception:
        res.error("pool scoring")


if __name__ == "__main__":
    main()
