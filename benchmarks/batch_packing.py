"""How full the training batches of a `s2s prep text` directory are, per sort order.

    .venv/bin/python benchmarks/batch_packing.py DATA_DIR [--batch-tokens 2000]

For each `make_batches(sort_by=...)`: the number of batches of one epoch, target
tokens per batch (EOS counted, as the trainer counts them) and the share of padded
steps on each side (source with EOS, target with BOS/EOS). The encoder runs over
every padded source step and the decoder LSTM over every padded target step, so
padding is work that trains nothing.
"""

from __future__ import annotations

import argparse
import sys

from s2s.data.batching import ParallelData, make_batches
from s2s.errors import S2SError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="a `s2s prep text` output directory")
    ap.add_argument("--split", default="train")
    ap.add_argument("--batch-tokens", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    try:
        data = ParallelData(args.data, args.split)
    except S2SError as e:
        sys.exit(f"error: {e}")
    src, tgt = data.src.lengths, data.tgt.lengths
    s_steps, t_steps = src + 1, tgt + 1  # EOS; BOS/EOS
    print(f"{args.data} ({args.split}: {len(src)} pairs), {args.batch_tokens} tokens")
    print("| sort_by | batches | tgt tokens / batch | src padding | tgt padding |")
    print("|---|---:|---:|---:|---:|")
    for sort_by in ("size", "tgt", "src"):
        batches = make_batches(src, tgt, args.batch_tokens, args.seed, 0, True, sort_by)
        s_pad = sum(len(b) * int(s_steps[b].max()) for b in batches)
        t_pad = sum(len(b) * int(t_steps[b].max()) for b in batches)
        print(
            f"| {sort_by} | {len(batches)} | {t_steps.sum() / len(batches):,.0f} "
            f"| {1 - s_steps.sum() / s_pad:.1%} | {1 - t_steps.sum() / t_pad:.1%} |"
        )


if __name__ == "__main__":
    main()
