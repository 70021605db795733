"""Training throughput of the side-by-side toolkits, measured in interleaved rounds.

One 20- or 30-minute run per toolkit, one after the other, compares the host's
speed at two different times as much as the toolkits: this host drifts by 20% or
more within minutes. Each round here trains every toolkit for a few minutes with
`run.py` (the same matched settings and data; from scratch; log windows of
--log-every steps; only the first --max-test test sentences decoded, the BLEU of
such short runs means nothing), the toolkit order reversed every other round. The
table gives each toolkit's training target tokens/s per round (the median of its
own log windows, the first left out, as run.py reports it), their medians, and
each round's ratio of the first toolkit to the second.

    .venv/bin/python benchmarks/peers/train_rounds.py \\
        --work benchmarks/peers/work/m20-drop --toolkits s2s-fast,onmt \\
        --minutes 3 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--work",
        type=Path,
        required=True,
        help="a side-by-side's run.py --work: its prepared data is copied; the "
        "rounds run in WORK/train-rounds/work and leave its trained runs alone",
    )
    ap.add_argument("--toolkits", default="s2s-fast,onmt", help="two, comma-separated")
    ap.add_argument("--minutes", type=float, default=3.0, help="per toolkit and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--max-test", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    names = [t.strip() for t in a.toolkits.split(",")]
    if len(names) != 2:
        ap.error("--toolkits: give two, the ratio is the first's over the second's")
    # run.py wipes a toolkit's run directory before training it: the rounds run in
    # a directory of their own, on a copy of the side-by-side's prepared data.
    out = a.work / "train-rounds"
    work = out / "work"
    for d in ("data-bin", "pieces"):  # copy2 keeps the mtimes run.py checks
        if (a.work / d).is_dir() and not (work / d).exists():
            shutil.copytree(a.work / d, work / d)
    work.mkdir(parents=True, exist_ok=True)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(1, a.rounds + 1):
        order = names if r % 2 else names[::-1]
        cmd = [sys.executable, str(HERE / "run.py"), "--toolkits", ",".join(order)]
        cmd += ["--minutes", str(a.minutes), "--threads", str(a.threads)]
        cmd += ["--log-every", str(a.log_every), "--max-test", str(a.max_test)]
        cmd += ["--valid-every", "1000000", "--work", str(work)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"round {r}: run.py failed:\n{proc.stderr[-2000:]}")
        shutil.copy(work / "results.json", out / f"{r}.json")
        for row in json.loads((work / "results.json").read_text()):
            if row["toolkit"] in rates:
                rates[row["toolkit"]].append(row["tok_s"])
        print(f"round {r} ({' then '.join(order)}): done", file=sys.stderr, flush=True)
    first, second = (rates[n] for n in names)
    ratios = [x / y for x, y in zip(first, second, strict=True)]
    print(f"command: `{' '.join(sys.orig_argv)}`\n")
    print(f"| round | order | {names[0]} tok/s | {names[1]} tok/s | ratio |")
    print("|---:|---|---:|---:|---:|")
    for r, (x, y, q) in enumerate(zip(first, second, ratios, strict=True), 1):
        order = names if r % 2 else names[::-1]
        print(f"| {r} | {' then '.join(order)} | {x:,.0f} | {y:,.0f} | {q:.2f}x |")
    print(
        f"| median | | {statistics.median(first):,.0f} | "
        f"{statistics.median(second):,.0f} | {statistics.median(ratios):.2f}x |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
