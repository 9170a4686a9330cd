"""GPU top-b: 1e8 fp32 scores, b = 1000, ``tavaal.ops.topb`` against ``torch.topk(largest=False)``
on the same tensor (and with a 50% candidate mask against masked_fill + topk)."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results, median_time, parse_args, record, scaled  # noqa: E402

import tavaal.ops as ops  # noqa: E402


def main():
    args = parse_args(__doc__)
    dev = args.device
    n, b = scaled(100_000_000, args.scale, 10_000), 1000
    res = Results(args.out, "topb", dev, args.scale)
    g = torch.Generator().manual_seed(0)
    s = torch.randn(n, generator=g).to(dev)
    try:
        t_base = median_time(lambda: torch.topk(s, b, largest=False), dev, rounds=10, warmup=2)
        t_ours = median_time(lambda: ops.topb(s, b), dev, rounds=10, warmup=2)
        want, got = torch.topk(s, b, largest=False), ops.topb(s, b)
        same = bool(torch.equal(want.values, got[0]))
        res.add(record(f"topb fp32 n={n} b={b}", "seconds", t_ours, t_base, "torch.topk(largest=False)",
                       values_equal_to_topk=same))
    except Exception:
        res.error("topb all")
    try:
        mask = torch.rand(n, generator=g).to(dev) < 0.5
        t_base = median_time(lambda: torch.topk(s.masked_fill(~mask, float("inf")), b, largest=False), dev, rounds=10)
        t_ours = median_time(lambda: ops.topb(s, b, mask=mask), dev, rounds=10)
        res.add(record(f"topb fp32 n={n} b={b} mask 50%", "seconds", t_ours, t_base, "masked_fill + torch.topk"))
    except Exception:
        res.error("topb mask")


if __name__ == "__main__":
    main()
