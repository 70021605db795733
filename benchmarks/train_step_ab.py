"""Training step time of two s2s source trees on the same real batches, paired.

    .venv/bin/python benchmarks/train_step_ab.py DATA_DIR --a OLD_TREE --b NEW_TREE \\
        [--batches 40] [--sort-a tgt] [--sort-b tgt] [--threads 2]

Compares two versions of the code (e.g. `git worktree add /tmp/old REV` beside
this checkout) where a timing of each alone would drown in the host's drift: one
worker process per tree, each with s2s's default model (the same seed, so the same
weights) over the training split of DATA_DIR (a `s2s prep text` directory). They
take the same batches in lock step, one at a time (which goes first alternates),
so both see the same machine within seconds. A step is what the trainer does per
batch: collate, forward, backward, clip, fused AdamW. Prints the target tokens/s of
each and the median and quartiles of the per-batch time ratio A / B (> 1: B is
faster).

With different --sort-a/--sort-b the trees take their own epoch's batches (from
`make_batches(sort_by=...)`), not the same ones: then only the tokens/s compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

WARMUP = 5


def worker(data: str, sort_by: str, threads: int, batch_tokens: int) -> None:
    """Read batch numbers on stdin, answer "seconds tokens" per step."""
    import torch

    from s2s.config import load_config
    from s2s.data.batching import make_batches
    from s2s.train.translation_task import TranslationTask

    torch.set_num_threads(threads)
    try:
        from s2s.memory import keep_freed_memory
    except ImportError:  # trees older than it
        pass
    else:
        keep_freed_memory()
    cfg = load_config(None, [f"train.batch_tokens={batch_tokens}"])
    task = TranslationTask(cfg, data)
    torch.manual_seed(1)
    model = task.build_model().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), fused=True)
    tc = task.cfg.train
    d = task.data["train"]
    kw = {} if sort_by == "default" else {"sort_by": sort_by}
    batches = make_batches(
        d.src.lengths, d.tgt.lengths, tc.batch_tokens, 1, 0, True, **kw
    )

    def step(ids) -> int:
        b = task.collate("train", ids)
        opt.zero_grad(set_to_none=True)
        task.forward_backward(
            model, b, 1.0 / b.num_tokens, torch.Tensor.backward, nullcontext()
        )
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
        opt.step()
        return b.num_tokens

    for ids in batches[:WARMUP]:
        step(ids)
    print("ready", flush=True)
    for line in sys.stdin:
        t = time.perf_counter()
        tokens = step(batches[int(line)])
        print(f"{time.perf_counter() - t} {tokens}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--a", required=True, help="source tree A (the old code)")
    ap.add_argument("--b", required=True, help="source tree B (the new code)")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--sort-a", default="default", help="make_batches sort_by for A")
    ap.add_argument("--sort-b", default="default", help="make_batches sort_by for B")
    ap.add_argument("--batch-tokens", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", metavar="SORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.data, args.worker, args.threads, args.batch_tokens)
        return

    procs = {}
    for name, tree, sort_by in (("A", args.a, args.sort_a), ("B", args.b, args.sort_b)):
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            args.data,
            "--a",
            "-",
            "--b",
            "-",
            "--threads",
            str(args.threads),
            "--batch-tokens",
            str(args.batch_tokens),
            "--worker",
            sort_by,
        ]
        procs[name] = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
    for name, p in procs.items():
        if p.stdout.readline().strip() != "ready":
            sys.exit(f"worker {name} failed to start")
    times = {"A": [], "B": []}
    tokens = {"A": 0, "B": 0}
    for i in range(WARMUP, WARMUP + args.batches):
        for name in ("A", "B") if i % 2 else ("B", "A"):
            p = procs[name]
            p.stdin.write(f"{i}\n")
            p.stdin.flush()
            seconds, n = p.stdout.readline().split()
            times[name].append(float(seconds))
            tokens[name] += int(n)
    for p in procs.values():
        p.stdin.close()
        p.wait()

    print(
        f"{args.data}: {args.batches} batches of <= {args.batch_tokens} tokens after "
        f"{WARMUP} warm-up, {args.threads} threads, s2s's default model"
    )
    print("| tree | sort_by | target tokens/s | median step ms |")
    print("|---|---|---:|---:|")
    for name, tree, sort_by in (("A", args.a, args.sort_a), ("B", args.b, args.sort_b)):
        print(
            f"| {name}: {tree} | {sort_by} | {tokens[name] / sum(times[name]):,.0f} "
            f"| {1e3 * statistics.median(times[name]):.0f} |"
        )
    ratios = [a / b for a, b in zip(times["A"], times["B"], strict=True)]
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    print(f"\nper-batch time A / B: median {q2:.3f} (quartiles {q1:.3f}, {q3:.3f})")


if __name__ == "__main__":
    main()
