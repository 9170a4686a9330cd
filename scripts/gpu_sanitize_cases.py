"""Tiny cases of every tavaal op on one device, checked against the CPU op: the workload that
scripts/gpu_check.py runs under compute-sanitizer (memcheck, racecheck). Exit status 0 when
every case agrees; prints one line per case. Usage: python scripts/gpu_sanitize_cases.py
[--device cuda|cpu] (cpu: the dry run, exercising the same script without a GPU)."""
import argparse
import sys

import torch

import tavaal.ops as ops
from tavaal.models import Discriminator


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    dev = ap.parse_args().device
    failures = 0

    def case(name, ok):
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}", flush=True)

    g = torch.Generator().manual_seed(0)
    # top-b: all dtypes, masks (bool, indices), NaN policy, b = n
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        s = torch.randn(3001, generator=g).to(dtype)
        s[::17] = float("nan")
        m = torch.rand(3001, generator=g) < 0.4
        for kw in ({}, {"mask": m}, {"mask": torch.nonzero(m).flatten()[:50]}):
            for b in (1, 37):
                want = ops.topb(s, b, nan_policy="worst", **kw)
                got = ops.topb(s.to(dev), b, nan_policy="worst", **{k: v.to(dev) for k, v in kw.items()})
                case(f"topb {dtype} {list(kw)} b={b}", torch.equal(got[1].cpu(), want[1]))
        want = ops.topb(s, 3001, largest=True, nan_policy="worst")
        got = ops.topb(s.to(dev), 3001, largest=True, nan_policy="worst")
        case(f"topb {dtype} b=n largest", torch.equal(got[1].cpu(), want[1]))
    # k-center: dtypes, widths (incl. one above the staged-query limit), centers / first, cosine
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        # d = 20, 600: 16-byte rows (the vectorised per-pick update; 20: fp32 only); 12000: the
        # query too wide to stage in shared memory
        for n, d in ((300, 1), (257, 17), (100, 20), (130, 600), (40, 10241), (20, 12000)):
            x = torch.rand(n, d, generator=g).to(dtype)
            c = torch.randperm(n, generator=g)[: max(1, n // 9)]
            for kw in ({"centers": c}, {"first": n - 1}):
                for metric in ("euclidean", "cosine"):
                    b = min(9, n - (len(c) if "centers" in kw else 0))
                    want = ops.kcenter_greedy(x, b, metric=metric, **kw)
                    got = ops.kcenter_greedy(x.to(dev), b, metric=metric,
                                             **{k: (v.to(dev) if isinstance(v, torch.Tensor) else v)
                                                for k, v in kw.items()})
                    case(f"kcenter {dtype} {n}x{d} {list(kw)} {metric}",
                         torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1]))
    # fused scoring: fp32 / bf16, strided r, several chunks, return_scores
    torch.manual_seed(1)
    D = Discriminator(6, 40, 3)
    mu, table = torch.randn(999, 6), torch.rand(999, 2)
    for precision in ("fp32", "bf16"):
        for chunk in (0, 100):
            want = ops.score_topb(mu, table[:, 1], D, 20, precision=precision, chunk_size=chunk)
            got = ops.score_topb(mu.to(dev), table.to(dev)[:, 1], D.to(dev), 20, precision=precision,
                                 chunk_size=chunk, return_scores=True)
            D.cpu()
            shared = len(set(got[1].cpu().tolist()) & set(want[1].tolist()))
            case(f"score_topb {precision} chunk={chunk}", shared >= 18 and torch.equal(got[2][got[1]], got[0]))
    # k-means++: plain and outer-product points, every dtype, a pool above 65,536 rows (two
    # tree levels above the leaves); the same lane layout on both devices: the same picks
    for dtype, n, d, f, init in ((torch.float32, 500, 12, 0, "uniform"), (torch.float64, 300, 7, 5, "norm"),
                                 (torch.float16, 257, 3, 0, "norm"), (torch.bfloat16, 1000, 9, 17, "uniform"),
                                 (torch.float32, 70_000, 4, 3, "uniform")):
        x = torch.randn(n, d, generator=g).to(dtype)
        y = torch.randn(n, f, generator=g).to(dtype) if f else None
        b = min(12, n)
        want = ops.kmeanspp(x, b, y=y, init=init, seed=3)
        got = ops.kmeanspp(x.to(dev), b, y=None if y is None else y.to(dev), init=init, seed=3)
        case(f"kmeanspp {dtype} {n}x{d}{f' (x) {f}' if f else ''} {init}",
             torch.equal(got[0].cpu(), want[0]) and torch.allclose(got[1].cpu(), want[1], rtol=1e-12, atol=0))
    if dev == "cuda":
        torch.cuda.synchronize()
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
