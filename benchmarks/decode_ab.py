"""Decoding time and output of two s2s source trees on the same input, in turns.

    .venv/bin/python benchmarks/decode_ab.py --a OLD_TREE --b NEW_TREE [--repeats 5] \\
        -- translate --checkpoint C --input test.de --beam 5 [--threads 2]
    .venv/bin/python benchmarks/decode_ab.py --a OLD_TREE --b NEW_TREE \\
        -- transcribe --checkpoint C --manifest test.tsv

Runs `python -m s2s ARGS --output FILE` with each tree first on the path (e.g.
`git worktree add /tmp/old REV` beside this checkout), the two taking turns
(which goes first alternates), so both see the same machine within seconds.
Prints the median and quartiles of each tree's wall time, their ratio A / B
(> 1: B is faster), and whether the two outputs are the same line for line (and
which lines differ if not). Wall time includes starting Python and loading the
checkpoint: give enough input that decoding dominates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(tree: str, args: list[str], out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    cmd = [sys.executable, "-m", "s2s", *args, "--output", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{tree}: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return dt


def quartiles(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"{xs[0]:.2f}"
    q = statistics.quantiles(xs, n=4)
    return f"{statistics.median(xs):.2f} ({q[0]:.2f}-{q[2]:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="the old source tree")
    ap.add_argument("--b", required=True, help="the new source tree")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("s2s_args", nargs=argparse.REMAINDER, help="-- s2s arguments")
    args = ap.parse_args()
    s2s_args = [a for a in args.s2s_args if a != "--"]
    if not s2s_args:
        ap.error("give the s2s command after --")
    # Relative paths in the s2s arguments mean this directory, not the trees'.
    s2s_args = [
        os.path.abspath(a) if os.path.exists(a) and not a.startswith("-") else a
        for a in s2s_args
    ]
    times: dict[str, list[float]] = {"a": [], "b": []}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {k: Path(tmp) / f"out.{k}" for k in times}
        for i in range(args.repeats):
            for k in ("a", "b") if i % 2 == 0 else ("b", "a"):
                times[k].append(run(getattr(args, k), s2s_args, outs[k]))
        lines = {k: outs[k].read_text(encoding="utf-8").splitlines() for k in outs}
    ratios = [a / b for a, b in zip(times["a"], times["b"], strict=True)]
    print(f"command: s2s {' '.join(s2s_args)}")
    print("| tree | wall s, median (quartiles) |")
    print("|---|---|")
    print(f"| A {args.a} | {quartiles(times['a'])} |")
    print(f"| B {args.b} | {quartiles(times['b'])} |")
    print(f"ratio A / B per pair: median {statistics.median(ratios):.3f}")
    diff = [
        i + 1
        for i, (x, y) in enumerate(zip(lines["a"], lines["b"], strict=False))
        if x != y
    ]
    if len(lines["a"]) != len(lines["b"]):
        print(f"outputs differ in length: {len(lines['a'])} vs {len(lines['b'])}")
    elif diff:
        shown = ", ".join(map(str, diff[:20]))
        print(f"outputs differ on {len(diff)} of {len(lines['a'])} lines: {shown}")
    else:
        print(f"outputs identical ({len(lines['a'])} lines)")


if __name__ == "__main__":
    main()
