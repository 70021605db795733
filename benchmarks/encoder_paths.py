"""The encoder's two ways through a BiLSTM on the CPU, forward + backward.

    .venv/bin/python benchmarks/encoder_paths.py [--batch-tokens 2000] [--rounds 10]

packed: `pack_padded_sequence` -> nn.LSTM -> `pad_packed_sequence` (what
`RNNEncoder` runs on a GPU, and ran on the CPU before 2026-11-23); padded:
`RNNEncoder` on the CPU (one fused oneDNN call per layer and direction, the
backward direction reversed within each length). The same module and weights,
batches of random lengths as `throughput.py` draws them; the two alternate within
each round. Prints the median milliseconds per batch and the median of the
per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import draw_lengths  # noqa: E402

from s2s.data.batching import make_batches  # noqa: E402
from s2s.models.encoder import RNNEncoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-tokens", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--emb", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256, help="per direction")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    args.src_len = args.tgt_len = 25  # what draw_lengths reads
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    S, T = draw_lengths(rng, args, 100_000)
    groups = make_batches(S, T - 1, args.batch_tokens, 1)
    groups.sort(key=lambda g: S[g].mean())
    k = args.batches
    picked = [groups[int((i + 0.5) * len(groups) / k)] for i in range(k)]
    batches = []
    for g in picked:
        lens = torch.from_numpy(S[g])
        x = torch.randn(len(g), int(lens.max()), args.emb, requires_grad=True)
        batches.append((x, lens))
    enc = RNNEncoder(args.emb, args.hidden, args.layers, dropout=0.3).train()

    def packed() -> None:
        for x, lens in batches:
            p = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(enc.lstm(p)[0], True, 0.0, x.size(1))
            out.sum().backward()

    def padded() -> None:
        for x, lens in batches:
            enc(x, lens)[0].sum().backward()

    runs = {"packed": packed, "padded": padded}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    for r in range(args.rounds):
        for name in list(runs)[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            runs[name]()
            times[name].append((time.perf_counter() - t0) / len(batches))
    ntok = sum(int(lens.sum()) for _, lens in batches) / len(batches)
    print(
        f"{args.layers} x {args.hidden} per direction, input {args.emb}, "
        f"{ntok:.0f} source tokens per batch, {args.threads} threads, "
        f"{args.rounds} rounds"
    )
    for name, v in times.items():
        print(f"{name:7s} {statistics.median(v) * 1e3:8.1f} ms per batch (fwd + bwd)")
    ratios = [a / b for a, b in zip(times["packed"], times["padded"], strict=True)]
    print(f"packed / padded: median {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
