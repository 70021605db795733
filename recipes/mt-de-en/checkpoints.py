"""Which checkpoint of a run to keep: score every step-N.pt (and averages of the
last few) on the whole validation set and on the test set, and show what each
selection rule would have kept.

    python checkpoints.py runs/de-en-config.cpu data/de-en [--out results/x.tsv]

Needs a run trained with every numbered checkpoint kept (`--set train.keep_last=100`).
The rules: the best validation BLEU on the first `train.valid_bleu_sents`
sentences as training logged it (metrics.jsonl), the best greedy BLEU on the whole
validation set, the lowest validation loss, the last step, and the average of the
last k checkpoints. Test BLEU is shown for every candidate, greedy and beam 5, so
the rules can be compared on data none of them saw.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from s2s import Translator
from s2s.checkpoint import numbered_checkpoints
from s2s.metrics import bleu_chrf
from s2s.train.average import average_checkpoints


def valid_log(run: Path) -> dict[int, dict]:
    """The validation records of metrics.jsonl by step."""
    rows = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "valid_loss" in rec:
            rows[rec["step"]] = rec
    return rows


def bleu(ckpt: Path, src: list[str], ref: list[str], beam: int, threads: int) -> float:
    tr = Translator(ckpt, beam=beam, threads=threads, warn=lambda m: None)
    return bleu_chrf(tr.translate(src), ref).bleu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run directory (step-N.pt, metrics.jsonl)")
    ap.add_argument("data", type=Path, help="raw data directory (valid.de, ...)")
    ap.add_argument("--src", default="de")
    ap.add_argument("--tgt", default="en")
    ap.add_argument("--average", default="2,3,5", help="k of the last-k averages")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the table here (TSV)")
    ap.add_argument("--limit", type=int, help="only the first N lines (a smoke run)")
    args = ap.parse_args(argv)

    def lines(split: str, lang: str) -> list[str]:
        return (
            (args.data / f"{split}.{lang}")
            .read_text("utf-8")
            .splitlines()[: args.limit]
        )

    valid_src, valid_ref = lines("valid", args.src), lines("valid", args.tgt)
    test_src, test_ref = lines("test", args.src), lines("test", args.tgt)
    log = valid_log(args.run)
    steps = numbered_checkpoints(args.run)
    if not steps:
        print(f"{args.run}: no step-N.pt checkpoints", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="avg-", dir=args.run))
    cands: list[tuple[str, Path, dict]] = []
    for p in steps:
        step = int(p.stem.split("-")[1])
        cands.append((f"step {step}", p, log.get(step, {})))
    for k in (int(x) for x in args.average.split(",")):
        if k <= len(steps):
            out = tmp / f"avg{k}.pt"
            used = average_checkpoints(args.run, out, k)
            first = used[0].stem.split("-")[1]
            cands.append((f"avg last {k} (from {first})", out, {}))

    header = "\t".join(
        ["candidate", "valid_loss", "valid_bleu_logged", "valid_bleu_all"]
        + ["test_greedy", "test_beam5"]
    )
    table = [header]
    scores = {}
    print(header.replace("\t", " | "), flush=True)
    for name, path, rec in cands:
        s = {
            "valid_loss": rec.get("valid_loss"),
            "valid_bleu_logged": rec.get("valid_bleu"),
            "valid_bleu_all": bleu(path, valid_src, valid_ref, 1, args.threads),
            "test_greedy": bleu(path, test_src, test_ref, 1, args.threads),
            "test_beam5": bleu(path, test_src, test_ref, 5, args.threads),
        }
        scores[name] = s
        row = [name] + [
            "" if v is None else f"{v:.4f}" if k == "valid_loss" else f"{v:.2f}"
            for k, v in s.items()
        ]
        table.append("\t".join(row))
        print(" | ".join(row), flush=True)

    steps_only = [n for n, _, r in cands if r]
    rules = {
        "best logged valid BLEU (training's best.pt)": max(
            steps_only, key=lambda n: scores[n]["valid_bleu_logged"]
        ),
        "best whole-valid greedy BLEU": max(
            steps_only, key=lambda n: scores[n]["valid_bleu_all"]
        ),
        "lowest valid loss": min(steps_only, key=lambda n: scores[n]["valid_loss"]),
        "last step": steps_only[-1],
        "best whole-valid BLEU, steps and averages": max(
            scores, key=lambda n: scores[n]["valid_bleu_all"]
        ),
    }
    table.append("")
    table.append("rule\tkeeps\ttest_greedy\ttest_beam5")
    print("\nrule | keeps | test greedy | test beam 5")
    for rule, name in rules.items():
        s = scores[name]
        row = [rule, name, f"{s['test_greedy']:.2f}", f"{s['test_beam5']:.2f}"]
        table.append("\t".join(row))
        print(" | ".join(row))
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    if args.out:
        args.out.write_text("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
