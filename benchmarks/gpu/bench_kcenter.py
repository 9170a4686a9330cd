"""GPU k-center: 1M x 512 features, b = 1000 picks (issue 9 goal: fp32 <= 1 s on an H200).

Side by side in one process: ``tavaal.ops.kcenter_greedy`` (fp32 and bf16 features; and with
1000 initial centers, which times the tiled initial pass) against
(a) the memory floor: one read of the features per pick at the bandwidth a large reduction
    achieves on this GPU (efficiency = floor / ours per pick, <= 1), and
(b) a vectorised torch greedy on the GPU (one GEMV per pick with precomputed squared norms,
    argmax on the device, no host sync), timed on a few picks and scaled per pick.
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results, hbm_bandwidth, median_time, parse_args, record, scaled, sync  # noqa: E402

import tavaal.ops as ops  # noqa: E402


def torch_greedy_per_pick(x: torch.Tensor, picks: int, device: str) -> float:
    """Seconds per pick of the GEMV-based torch greedy (first pick 0)."""
    xf = x.float() if x.dtype != torch.float32 else x
    sq = (xf * xf).sum(1)
    mind = torch.full((x.shape[0],), float("inf"), device=x.device)
    p = torch.zeros((), dtype=torch.long, device=x.device)

    def step():
        nonlocal p, mind
        q = xf[p]
        d2 = sq - 2 * (xf @ q) + (q * q).sum()
        mind = torch.minimum(mind, d2)
        p = torch.argmax(mind)

    step()
    sync(device)
    t = time.perf_counter()
    for _ in range(picks):
        step()
    sync(device)
    return (time.perf_counter() - t) / picks


def main():
    args = parse_args(__doc__)
    dev = args.device
    n, d, b = scaled(1_000_000, args.scale, 2000), 512, scaled(1000, args.scale, 20)
    res = Results(args.out, "kcenter", dev, args.scale)
    bw = hbm_bandwidth(dev, nbytes=min(2 << 30, n * d * 4))
    g = torch.Generator().manual_seed(0)
    x32 = torch.rand(n, d, generator=g).to(dev)
    cases = [("fp32", x32, None), ("bf16", x32.to(torch.bfloat16), None),
             ("fp32, 1000 initial centers", x32, torch.randperm(n, generator=g)[: scaled(1000, args.scale, 10)].to(dev))]
    for label, x, centers in cases:
        try:
            call = (lambda x=x, c=centers: ops.kcenter_greedy(x, b, centers=c)) if centers is not None else (
                lambda x=x: ops.kcenter_greedy(x, b, first=0))
            t = median_time(call, dev, rounds=3, warmup=1)
            floor = n * d * x.element_size() / bw
            per_pick = t / b
            base = torch_greedy_per_pick(x, min(b, 50), dev)
            goal = "<= 1 s (fp32, 1M x 512, b = 1000, H200)" if label == "fp32" else None
            met = (t <= 1.0) if (label == "fp32" and args.scale >= 1 and dev == "cuda") else None
            res.add(record(f"kcenter {label} {n}x{d} b={b}", "seconds for b picks", t, base * b,
                           "torch GEMV greedy (per pick x b)", goal=goal, goal_met=met,
                           ms_per_pick=per_pick * 1e3, hbm_floor_ms_per_pick=floor * 1e3,
                           efficiency_vs_hbm_floor=floor / per_pick, measured_bandwidth_gbs=bw / 1e9))
        except Exception:
            res.error(label)
    if dev == "cuda":  # peak memory beyond the (bf16) features: O(N), no N x D copy
        try:
            xb = x32.to(torch.bfloat16)
            x32 = x = cases = None  # noqa: F841  (free the fp32 features)
            torch.cuda.empty_cache()
            sync(dev)
            torch.cuda.reset_peak_memory_stats()
            base_alloc = torch.cuda.memory_allocated()
            ops.kcenter_greedy(xb, b, first=0)
            sync(dev)
            extra = torch.cuda.max_memory_allocated() - base_alloc
            res.add(record(f"kcenter bf16 {n}x{d} peak extra memory", "bytes beyond the inputs", extra, None, "",
                           unit="bytes", goal="O(N): about 13 bytes per point", bytes_per_point=extra / n,
                           features_bytes=xb.numel() * 2))
        except Exception:
            res.error("memory")

if __name__ == "__main__":
    main()
