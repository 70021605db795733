"""Dropout on the CPU: `F.dropout` against `s2s.models.dropout.dropout`, fwd + bwd.

    .venv/bin/python benchmarks/dropout.py [--rows 2000] [--rounds 15] [--threads 2]

The activations a 2,000-token batch drops out in the mt-de-en models (embeddings
256, encoder outputs 512, decoder outputs 512). The two alternate within each round;
prints the median milliseconds of each and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from s2s.models.dropout import dropout


def timed(fn, x: torch.Tensor, g: torch.Tensor, p: float) -> float:
    t = time.perf_counter()
    fn(x, p, True).backward(g)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--p", type=float, default=0.3)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(
        f"{args.rows} rows, p={args.p}, {args.threads} threads, fwd + bwd, "
        f"medians of {args.rounds} rounds; torch {torch.__version__}"
    )
    print("| features | F.dropout ms | s2s ms | ratio |")
    print("|---:|---:|---:|---:|")
    for width in (256, 512):
        x = torch.randn(args.rows, width, requires_grad=True)
        g = torch.randn(args.rows, width)
        for fn in (F.dropout, dropout):  # warm-up
            timed(fn, x, g, args.p)
        ref, ours = [], []
        for _ in range(args.rounds):
            ref.append(timed(F.dropout, x, g, args.p))
            ours.append(timed(dropout, x, g, args.p))
        ratio = statistics.median(a / b for a, b in zip(ref, ours, strict=True))
        print(
            f"| {width} | {1e3 * statistics.median(ref):.2f} "
            f"| {1e3 * statistics.median(ours):.2f} | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    main()
