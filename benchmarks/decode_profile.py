"""Time, or profile with torch.profiler, beam search over a file with a checkpoint.

    .venv/bin/python benchmarks/decode_profile.py CKPT SRC [--sents N] [--beam 5]
        [--threads 2] [--repeats 3] [--profile]

Translates the first N lines of SRC (raw text) as `s2s translate` does (the
checkpoint's decode settings, with --beam, --lenpen and --batch-tokens replaced),
after a warm-up on 50 lines. Prints the median time and sentences/s, or with
--profile the operators that took the most time in one pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from s2s.checkpoint import load_model
from s2s.decode.translate import Translator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("src")
    ap.add_argument("--sents", type=int, default=0, help="first N lines (0: all)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--lenpen", type=float, default=0.6)
    ap.add_argument("--batch-tokens", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", default="fp32", help="fp32, bf16 or int8")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg, src_vocab, tgt_vocab = load_model(args.checkpoint)
    dcfg = dataclasses.replace(
        cfg.decode, beam=args.beam, lenpen=args.lenpen, batch_tokens=args.batch_tokens
    )
    cpu = torch.device("cpu")
    tr = Translator(model, src_vocab, tgt_vocab, dcfg, cpu, args.precision)
    with open(args.src, encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines = lines[: args.sents or None]
    tr.translate(lines[:50])  # warm-up
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            tr.translate(lines)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
        return
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        tr.translate(lines)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(
        f"{len(lines)} sentences, beam {args.beam}, {args.threads} threads, "
        f"{args.precision}: "
        f"median {t:.2f} s of {args.repeats}, {len(lines) / t:.1f} sentences/s"
    )


if __name__ == "__main__":
    main()
