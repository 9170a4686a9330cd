"""GPU fused scoring: 1e7 latents (d = 64) through the 5-layer 512-wide discriminator, b = 1000:
``tavaal.ops.score_topb`` (fp32 and bf16) against chunked eager torch on the GPU (the same
Discriminator module, fp32, chunks of 65536, an N-sized score buffer, then torch.topk). Also
records the peak GPU memory beyond the inputs (the op keeps no N-sized buffer)."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results, median_time, parse_args, record, scaled, sync  # noqa: E402

import tavaal.ops as ops  # noqa: E402
from tavaal.models import Discriminator  # noqa: E402


def eager(D, mu, r, b, chunk=65536):
    with torch.no_grad():
        scores = torch.empty(mu.shape[0], device=mu.device)
        for s in range(0, mu.shape[0], chunk):
            scores[s : s + chunk] = D(r[s : s + chunk], mu[s : s + chunk])
        return torch.topk(scores, b, largest=False)


def main():
    args = parse_args(__doc__)
    dev = args.device
    n, b = scaled(10_000_000, args.scale, 5000), 1000
    res = Results(args.out, "score_topb", dev, args.scale)
    torch.manual_seed(0)
    D = Discriminator(64, 512, 5).to(dev).eval()
    mu, r = torch.randn(n, 64, device=dev), torch.rand(n, device=dev)
    try:
        t_eager = median_time(lambda: eager(D, mu, r, b), dev, rounds=3)
        want = eager(D, mu, r, b)
        for precision in ("fp32", "bf16"):
            t = median_time(lambda p=precision: ops.score_topb(mu, r, D, b, precision=p), dev, rounds=3)
            _, idx = ops.score_topb(mu, r, D, b, precision=precision)
            agree = len(set(idx.tolist()) & set(want.indices.tolist())) / b
            extra = None
            if dev == "cuda":
                sync(dev)
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                ops.score_topb(mu, r, D, b, precision=precision)
                sync(dev)
                extra = torch.cuda.max_memory_allocated() - base
            res.add(record(f"score_topb {precision} n={n} d=64 5x512 b={b}", "seconds", t, t_eager,
                           "chunked eager fp32 + topk", picks_shared_with_eager=agree, peak_extra_bytes=extra,
                           n_sized_buffer_bytes=4 * n))
        # the L2-sized default chunks against the former fixed 131,072 rows (ours / that = the gain)
        for precision in ("bf16", "fp32"):
            t_l2 = median_time(lambda p=precision: ops.score_topb(mu, r, D, b, precision=p), dev, rounds=3)
            t_fixed = median_time(lambda p=precision: ops.score_topb(mu, r, D, b, precision=p, chunk_size=131072),
                                  dev, rounds=3)
            res.add(record(f"score_topb {precision} L2-sized chunks vs 131072 rows", "seconds", t_l2, t_fixed,
                           "chunk_size=131072 (the former default)"))
    except Exception:
        res.error("score_topb")


if __name__ == "__main__":
    main()
