"""How close a CPU training step is to this host's matrix-product speed.

    .venv/bin/python benchmarks/roofline.py DATA_DIR [--batches 40] [--threads 2] \\
        [--peer-tok-s 1610]

Counts, for real batches of DATA_DIR (a `s2s prep text` directory, s2s's default
model and 2,000-token batches), the floating-point operations of every matrix
product of a training step (forward and backward) for two architectures with the
same layer sizes: s2s's default (no input feeding, output layer tied through a
projection) and the matched model of the side-by-side (input feeding, untied: the
architecture of OpenNMT-py's `brnn` there). It times the products at the batches'
median shapes on this host (the best of 9 timings each), in two kinds:

- batched: one product over all positions of a batch (input projections, output
  layer, weight gradients);
- sequential: one product per time step with only the batch's B rows (the
  recurrent h W_hh and, with input feeding, everything the fed vector reaches).

The ceiling is the target tokens/s a step would reach if it did nothing but these
products at those rates: elementwise work, softmax, dropout and the optimizer are
taken as free. Each kind's rate is the median over its main shapes (each shape the
best of its timings), so the ceiling estimates what this host's fp32 products allow;
it is not a proof that nothing could beat it. It then times s2s's real training
step (collate, forward, backward, clip, fused AdamW) on the same batches and prints
tokens/s and GFLOP/s achieved.
With --peer-tok-s (a peer's measured rate on the matched model), it prints what 2x
that rate would need.

Counted per product: 2 * M * K * N operations; backward = gradient of the input
plus gradient of the weight (twice the forward), with the recurrent input-gradient
sequential and the recurrent weight-gradient batched. Attention's batched products
(scores and context) count as batched.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from contextlib import nullcontext

import torch

WARMUP = 5


def step_flops(
    B: int, S: int, T: int, N: int, V: int, feed: bool, sizes: dict[str, int]
) -> dict[str, float]:
    """Operations of one training step (forward + backward) by kind.

    B sentences, S padded source steps, T padded target steps, N real target
    tokens (the output layer runs on those only), V target vocabulary."""
    E, He, Hd, layers = sizes["emb"], sizes["enc"], sizes["dec"], sizes["layers"]
    mem = 2 * He
    f: dict[str, float] = defaultdict(float)

    def mm(kind: str, m: int, k: int, n: int, times: int = 1) -> None:
        f[kind] += 2.0 * m * k * n * times

    # encoder: per layer and direction an input product and S recurrent steps
    for layer in range(layers):
        fin = E if layer == 0 else mem
        mm("batched", B * S, fin, 4 * He, 2 * 3)  # fwd, d input, d weight; 2 dirs
        mm("sequential", B, He, 4 * He, 2 * S * 2)  # fwd and d h, per step
        mm("batched", B * S, He, 4 * He, 2)  # d W_hh over all steps
    mm("batched", B, mem, 2 * Hd, 3)  # bridge
    mm("batched", B * S, mem, Hd, 3)  # attention keys (general)
    if not feed:
        mm("batched", B * T, E, 4 * Hd, 3)
        mm("sequential", B, Hd, 4 * Hd, 2 * T)
        mm("batched", B * T, Hd, 4 * Hd, 1)
        mm("batched", B * T * S, Hd, 1, 3)  # scores
        mm("batched", B * T * S, mem, 1, 3)  # context
        mm("batched", B * T, mem + Hd, Hd, 3)  # combine
        mm("batched", N, Hd, E, 3)  # projection to the tied embedding
        mm("batched", N, E, V, 3)  # output layer
    else:  # everything a_{t-1} reaches runs per step; embeddings hoisted
        mm("batched", B * T, E, 4 * Hd, 3)
        mm("sequential", B, 2 * Hd, 4 * Hd, 2 * T)  # [a_{t-1}; h] -> gates
        mm("batched", B * T, 2 * Hd, 4 * Hd, 1)
        mm("sequential", B * S, Hd, 1, 2 * T)  # scores, one query per row
        mm("sequential", B * S, mem, 1, 2 * T)  # context
        mm("batched", B * T * S, Hd + mem, 1, 1)  # their weight-side gradients
        mm("sequential", B, mem + Hd, Hd, 2 * T)  # combine
        mm("batched", B * T, mem + Hd, Hd, 1)
        mm("batched", N, Hd, V, 3)  # output layer, untied
    return f


def gemm_rate(m: int, k: int, n: int, repeats: int = 9) -> float:
    """GFLOP/s of (m, k) @ (k, n) in fp32, the best of `repeats` timings (a
    ceiling should not suffer the host's slow moments)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    inner = max(1, int(2e9 / (2 * m * k * n)))  # ~2 GFLOP per timing
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            a @ b
        times.append((time.perf_counter() - t) / inner)
    return 2 * m * k * n / min(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-tokens", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peer-tok-s", type=float, help="a peer's rate, matched model")
    args = ap.parse_args()

    from s2s.config import load_config
    from s2s.data.batching import make_batches
    from s2s.memory import keep_freed_memory
    from s2s.train.translation_task import TranslationTask

    torch.set_num_threads(args.threads)
    keep_freed_memory()
    cfg = load_config(None, [f"train.batch_tokens={args.batch_tokens}"])
    task = TranslationTask(cfg, args.data)
    mc, tc = task.cfg.model, task.cfg.train
    sizes = dict(
        emb=mc.emb_dim, enc=mc.enc_hidden_size, dec=mc.hidden_size, layers=mc.enc_layers
    )
    if mc.dec_layers != 1 or mc.attention != "general":
        raise SystemExit("counts only one decoder layer with general attention")
    torch.manual_seed(tc.seed)
    model = task.build_model().train()
    V = model.decoder.output.out_features
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), fused=True)
    d = task.data["train"]
    batches = make_batches(d.src.lengths, d.tgt.lengths, tc.batch_tokens, 1, 0, True)
    batches = batches[: WARMUP + args.batches]

    def step(b) -> None:
        opt.zero_grad(set_to_none=True)
        task.forward_backward(
            model, b, 1.0 / b.num_tokens, torch.Tensor.backward, nullcontext()
        )
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
        opt.step()

    for ids in batches[:WARMUP]:
        step(task.collate("train", ids))
    seconds, tokens, shapes = 0.0, 0, []
    for ids in batches[WARMUP:]:
        t = time.perf_counter()
        b = task.collate("train", ids)
        step(b)
        seconds += time.perf_counter() - t
        B, S = b.src.shape
        T, N = b.tgt_out.size(1), b.num_tokens
        tokens += N
        shapes.append((B, S, T, N))

    Bm = int(statistics.median(s[0] for s in shapes))
    BT = int(statistics.median(s[0] * s[2] for s in shapes))
    rate = {  # GFLOP/s at the median shapes, the main products of each kind
        "batched": statistics.median(
            [
                gemm_rate(BT, sizes["emb"], 4 * sizes["enc"]),
                gemm_rate(BT, 2 * sizes["enc"], 4 * sizes["enc"]),
                gemm_rate(BT, sizes["emb"], V),
                gemm_rate(BT, 2 * sizes["dec"], sizes["dec"]),
            ]
        ),
        "sequential": statistics.median(
            [
                gemm_rate(Bm, sizes["enc"], 4 * sizes["enc"]),
                gemm_rate(Bm, sizes["dec"], 4 * sizes["dec"]),
                gemm_rate(Bm, 2 * sizes["dec"], 4 * sizes["dec"]),
            ]
        ),
    }
    print(
        f"{args.data}: {args.batches} batches of <= {args.batch_tokens} tokens "
        f"(median {Bm} sentences, {BT} padded target positions), "
        f"{args.threads} threads, fp32, {tokens} target tokens"
    )
    print(
        f"matrix products on this host at those shapes: batched "
        f"{rate['batched']:.0f} GFLOP/s, sequential (M = {Bm}) "
        f"{rate['sequential']:.0f} GFLOP/s\n"
    )
    print(
        "| architecture | MFLOP per target token | of it sequential "
        "| ceiling tok/s | measured tok/s | achieved GFLOP/s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    ceilings = {}
    archs = (("s2s default (no feeding, tied)", False), ("matched (feeding)", True))
    for name, feed in archs:
        total: dict[str, float] = defaultdict(float)
        for B, S, T, N in shapes:
            for k, v in step_flops(B, S, T, N, V, feed, sizes).items():
                total[k] += v
        flops = sum(total.values())
        ideal_s = sum(total[k] / (rate[k] * 1e9) for k in total)
        ceilings[feed] = tokens / ideal_s
        measured = achieved = "-"
        if not feed:
            measured = f"{tokens / seconds:,.0f}"
            achieved = f"{flops / seconds / 1e9:.0f}"
        print(
            f"| {name} | {flops / tokens / 1e6:.1f} | "
            f"{100 * total['sequential'] / flops:.0f}% | {ceilings[feed]:,.0f} | "
            f"{measured} | {achieved} |"
        )
    if args.peer_tok_s:
        need = 2 * args.peer_tok_s
        print(
            f"\n2x the peer's {args.peer_tok_s:,.0f} tok/s on the matched model is "
            f"{need:,.0f} tok/s: {need / ceilings[False]:.2f} of the s2s default's "
            f"ceiling, {need / (tokens / seconds):.2f}x its measured rate; the peer "
            f"runs at {args.peer_tok_s / ceilings[True]:.2f} of the matched ceiling"
        )


if __name__ == "__main__":
    main()
