"""Decoding speed of trained side-by-side runs, measured in interleaved rounds.

A shared host's speed drifts by 20% or more within minutes, so one decode per
toolkit compares luck as much as code. Each round runs `run.py --skip-train` once
per s2s decoding precision (each also decodes the peers again); the table gives
every configuration's median sentences/s over the rounds and each round's value.

    .venv/bin/python benchmarks/peers/decode_rounds.py \\
        --work benchmarks/peers/work/m30-fast --toolkits s2s-fast,onmt \\
        --precisions fp32,int8 --rounds 4
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
    ap.add_argument("--work", type=Path, required=True, help="run.py's --work")
    ap.add_argument("--toolkits", default="s2s-fast,onmt")
    ap.add_argument("--precisions", default="fp32,int8", help="s2s's, comma list")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    out = a.work / "decode-rounds"
    out.mkdir(exist_ok=True)
    speeds: dict[str, list[float]] = {}
    scores: dict[str, tuple[float, float]] = {}
    for r in range(1, a.rounds + 1):
        for p in a.precisions.split(","):
            cmd = [sys.executable, str(HERE / "run.py"), "--skip-train"]
            cmd += ["--toolkits", a.toolkits, "--threads", str(a.threads)]
            cmd += ["--s2s-precision", p, "--work", str(a.work)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"round {r}, {p}: run.py failed:\n{proc.stdout[-2000:]}")
            shutil.copy(a.work / "results.json", out / f"{r}-{p}.json")
            for row in json.loads((a.work / "results.json").read_text()):
                name = row["toolkit"]
                key = f"{name} ({p})" if name.startswith("s2s") else name
                speeds.setdefault(key, []).append(row["dec_sent_s"])
                scores[key] = (row["bleu"], row["chrf"])
            print(f"round {r}, s2s {p}: done", file=sys.stderr, flush=True)
    print(f"command: `{' '.join(sys.orig_argv)}`\n")
    print("| toolkit (s2s precision) | BLEU | chrF | median sent/s | each run |")
    print("|---|---:|---:|---:|---|")
    for key, v in speeds.items():
        bleu, chrf = scores[key]
        each = ", ".join(f"{x:.1f}" for x in v)
        print(
            f"| {key} | {bleu:.2f} | {chrf:.2f} | {statistics.median(v):.1f} | {each} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
