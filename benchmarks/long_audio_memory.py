"""Peak memory of `s2s transcribe` and `s2s prep speech` against the length of one
recording (issue 22, Memory): both read long audio a window at a time, so the peak
should stay flat as the recording grows.

    .venv/bin/python benchmarks/long_audio_memory.py \\
        --checkpoint recipes/asr-cs/exp/cpu/best.pt --minutes 15,60,120

For each length, one WAV (16 kHz, 16-bit mono, noise and tones: the content does
not matter for memory) is written to WORK, then each s2s tree given by --tree (the
default: this one; give an older checkout to compare) runs, each command in a
process of its own:

- transcribe: `s2s transcribe --checkpoint C long.wav --threads T` (CTC windows, or
  the joint search's segments, per the checkpoint);
- prep: `s2s prep speech --chars` with three 2-second training files and the long
  recording as the only validation utterance (held-out audio is never filtered).

Peak memory is the maximum resident set size of that process (getrusage of the
children of a wrapper process that runs only it). One table is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000

# Runs argv[1:] and prints the peak RSS of that child in KiB (Linux ru_maxrss).
_WRAP = (
    "import resource, subprocess, sys; "
    "rc = subprocess.call(sys.argv[1:]); "
    "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(rc)"
)


def write_wav(path: Path, seconds: float, seed: int = 0) -> None:
    """Noise with tone bursts, written a minute at a time (never whole in memory)."""
    rng = np.random.default_rng(seed)
    total, done = int(seconds * RATE), 0
    with soundfile.SoundFile(str(path), "w", RATE, 1, subtype="PCM_16") as f:
        while done < total:
            n = min(60 * RATE, total - done)
            t = (np.arange(n) + done) / RATE
            tone = 0.2 * np.sin(2 * np.pi * (300 + 200 * np.sin(t / 3)) * t)
            tone *= (np.sin(2 * np.pi * t / 1.7) > 0).astype(np.float64)
            f.write((tone + 0.02 * rng.standard_normal(n)).astype(np.float32))
            done += n


def measure(tree: Path, args: list[str], log: Path) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of `python -m s2s ARGS` run from `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-c", _WRAP, sys.executable, "-m", "s2s", *args]
    t0 = time.time()
    # In the log's directory: `python -m` puts the working directory first on the
    # path, so run from a checkout it would import that checkout's s2s instead.
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=log.parent)
    wall = time.time() - t0
    log.write_text(f"$ {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}), see {log}:\n{p.stderr[-2000:]}")
    rss = [int(x.split()[1]) for x in p.stdout.splitlines() if x.startswith("MAXRSS")]
    return rss[-1] / 1024, wall


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", type=Path, required=True, help="a speech model")
    ap.add_argument("--minutes", default="15,60,120", help="recording lengths")
    ap.add_argument("--tree", type=Path, action="append", help="s2s checkouts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--commands", default="transcribe,prep")
    ap.add_argument("--work", type=Path, default=None, help="default: a temp dir")
    args = ap.parse_args()
    if not args.checkpoint.is_file():
        ap.error(f"{args.checkpoint}: no checkpoint (make -C recipes/asr-cs train)")
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    args.checkpoint = args.checkpoint.resolve()
    work = (args.work or Path(tempfile.mkdtemp(prefix="s2s-long-audio-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    commands = args.commands.split(",")
    train = ["id\tpath\tduration\ttext"]
    for k, text in enumerate(("a b c", "d e", "f g h")):
        write_wav(work / f"short{k}.wav", 2.0, seed=k + 1)
        train.append(f"s{k}\t{work}/short{k}.wav\t2.0\t{text}")
    (work / "train.tsv").write_text("\n".join(train) + "\n")
    rows = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        wav = work / "long.wav"
        write_wav(wav, minutes * 60)
        (work / "valid.tsv").write_text(
            f"id\tpath\tduration\ttext\nlong\t{wav}\t{minutes * 60}\tx y z\n"
        )
        for tree in trees:
            for command in commands:
                if command == "transcribe":
                    argv = ["transcribe", "--checkpoint", str(args.checkpoint)]
                    argv += [str(wav), "--threads", str(args.threads)]
                    argv += ["--output", str(work / "hyp.txt")]
                else:
                    out = work / "bin"
                    shutil.rmtree(out, ignore_errors=True)
                    argv = ["prep", "speech", "--chars", "--out", str(out)]
                    argv += ["--train", str(work / "train.tsv")]
                    argv += ["--valid", str(work / "valid.tsv")]
                log = work / f"{tree.name}-{command}-{minutes:g}.log"
                rss, wall = measure(tree, argv, log)
                rows.append((tree, command, minutes, rss, wall))
                print(
                    f"{tree} {command} {minutes:g} min: {rss:,.0f} MiB, {wall:.1f} s",
                    file=sys.stderr,
                )
        wav.unlink()
    print(f"\ncheckpoint {args.checkpoint}, {args.threads} threads, work {work}\n")
    print("| tree | command | recording (min) | peak RSS (MiB) | wall (s) |")
    print("|---|---|---:|---:|---:|")
    for tree, command, minutes, rss, wall in rows:
        print(f"| {tree} | {command} | {minutes:g} | {rss:,.0f} | {wall:.1f} |")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
