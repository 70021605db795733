"""Clip + AdamW step over the parameters of an s2s model: for-loop, foreach and fused.

    .venv/bin/python benchmarks/optimizer_step.py [--device cpu|cuda] [--threads 2]

Prints the median milliseconds of `clip_grad_norm_` + `step` for each AdamW
implementation, alternating them over --repeats rounds (gradients are random).
The model has s2s's default sizes (9.75M parameters at vocabulary 8000).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from s2s.config import ModelConfig
from s2s.models.seq2seq import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    model = build_model(ModelConfig(), args.vocab, args.vocab).to(dev)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    kinds = {
        "for-loop": dict(foreach=False),
        "foreach": dict(foreach=True),
        "fused": dict(fused=True),
    }
    opts = {k: torch.optim.AdamW(params, lr=1e-4, **kw) for k, kw in kinds.items()}
    times: dict[str, list[float]] = {k: [] for k in opts}
    for _ in range(args.repeats):
        for k, opt in opts.items():
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t0)
    n = sum(p.numel() for p in params)
    print(f"{n / 1e6:.2f}M parameters, {args.device}, {args.threads} threads")
    for k, v in times.items():
        print(f"{k:9s} {statistics.median(v[3:]) * 1e3:7.2f} ms (clip + step)")


if __name__ == "__main__":
    main()
