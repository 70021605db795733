"""Training steps in fp32 against bf16 autocast, on a config's real batches.

    .venv/bin/python benchmarks/train_precision.py recipes/asr-cs/config.cpu.yaml \\
        recipes/asr-cs/exp/data-bin-sp [--steps 60] [--threads 2] \\
        [--set model.enc_layers=4 ...]

For any task (`s2s prep` directory and the config `s2s train` would take): two
copies of the model from the same seed, one per precision, take the same
training batches in turns (which goes first alternates), so both see the same
machine within seconds. A step is what the trainer does per batch: collate,
forward under `s2s.precision.autocast_for`, backward, clipping and fused AdamW.
The first `WARMUP` steps are not timed. Prints one markdown table: median step
time, units (target tokens or frames, as the task counts them) per second, the
ratio fp32 / bf16 of the paired step times (median and quartiles), and the mean
training loss of the last 10 steps of each (the copies diverge only by rounding,
so their losses should agree).

On a CPU without AVX-512 BF16 instructions bf16 is emulated and far slower; the
header says which CPU this is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

WARMUP = 3
PRECISIONS = ("fp32", "bf16")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="the YAML config s2s train would take")
    ap.add_argument("data", help="its s2s prep directory")
    ap.add_argument("--steps", type=int, default=60, help="timed steps each")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE override")
    args = ap.parse_args()

    from throughput import cpu_info  # benchmarks/ is on the path of its scripts

    from s2s.config import load_config
    from s2s.precision import autocast_for, train_precision
    from s2s.train.task_loading import load_task

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, ["train.device=cpu", *args.set])
    # A task per copy: a task may carry state from batch to batch (the LM's
    # hidden state across segments), which must not pass from one copy to the other.
    tasks = {p: load_task(cfg, args.data) for p in PRECISIONS}
    device = torch.device("cpu")
    runs = {}
    for p in PRECISIONS:
        torch.manual_seed(cfg.train.seed)
        model = tasks[p].build_model().to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, fused=True)
        runs[p] = (model, opt, autocast_for(device, p))
    batches = tasks["fp32"].batches("train", seed=cfg.train.seed)  # both take these
    n = min(len(batches), WARMUP + args.steps)
    times = {p: [] for p in PRECISIONS}
    losses = {p: [] for p in PRECISIONS}
    units = []
    for i in range(n):
        ids = batches[i]
        order = PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]
        for p in order:
            model, opt, amp = runs[p]
            torch.manual_seed(cfg.train.seed + i)  # same dropout and masks for both
            t0 = time.perf_counter()
            batch = tasks[p].collate("train", ids).to(device)
            count = tasks[p].units("train", ids)
            loss, _ = tasks[p].forward_backward(
                model, batch, 1.0 / count, lambda x: x.backward(), amp
            )
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            if i >= WARMUP:
                times[p].append(dt)
                losses[p].append(loss / count)
        if i >= WARMUP:
            units.append(tasks["fp32"].units("train", batches[i]))

    native = train_precision("auto", device) == "bf16"
    n_params = sum(q.numel() for q in runs["fp32"][0].parameters())
    print(f"command: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print(
        f"torch {torch.__version__}; {cpu_info()[0]}; AVX-512 BF16: "
        f"{'yes' if native else 'no (bf16 emulated)'}; {args.threads} "
        f"threads; {n_params / 1e6:.2f}M parameters; {len(units)} timed steps "
        f"after {WARMUP}; {statistics.mean(units):.0f} units per batch"
    )
    ratios = sorted(a / b for a, b in zip(times["fp32"], times["bf16"], strict=True))
    q1, med, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print()
    print("| precision | median step (s) | units/s | loss, last 10 steps |")
    print("|---|---:|---:|---:|")
    for p in PRECISIONS:
        step = statistics.median(times[p])
        rate = sum(units) / sum(times[p])
        last = statistics.mean(losses[p][-10:])
        print(f"| {p} | {step:.3f} | {rate:,.0f} | {last:.4f} |")
    print()
    print(
        f"step time fp32 / bf16, paired: median {med:.2f} (quartiles {q1:.2f} to "
        f"{q3:.2f})"
    )


if __name__ == "__main__":
    main()
