"""What noise on training batches (`model.noise_prob`) costs: the time to make a
training batch (`collate_speech`) without noise and with noise on every utterance,
over the first batches of a `s2s prep speech` directory, one thread. Prints a table
of medians.

    .venv/bin/python benchmarks/noise_cost.py recipes/asr-cs/exp/data-bin-sp \
        --batch-tokens 8000 --batches 60
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from s2s.data.batching import make_batches
from s2s.data.speech import Noise, SpeechData, collate_speech


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="a `s2s prep speech` output directory")
    ap.add_argument("--batch-tokens", type=int, default=8000, help="frames a batch")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3, help="timed passes (medians)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = SpeechData(args.data, "train")
    batches = make_batches(
        data.feats.lengths, data.tgt.lengths, args.batch_tokens, sort_by="src"
    )[: args.batches]
    rows = {"no noise": None, "noise on every utterance": Noise(1.0, 10.0, 30.0)}
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        for name, noise in rows.items():
            for ids in batches:
                t = time.perf_counter()
                collate_speech(data, ids, noise)
                times[name].append(time.perf_counter() - t)
    frames = statistics.median(int(data.feats.lengths[b].sum()) for b in batches)
    print(
        f"{len(batches)} batches of {args.batch_tokens} frames (median {frames:.0f}"
        f" real frames), {args.repeats} passes, 1 thread"
    )
    print("| batch | median ms |\n|---|---:|")
    med = {name: 1000 * statistics.median(t) for name, t in times.items()}
    for name, ms in med.items():
        print(f"| {name} | {ms:.1f} |")
    print(
        f"noise adds {med['noise on every utterance'] - med['no noise']:.1f} ms a batch"
    )


if __name__ == "__main__":
    main()
