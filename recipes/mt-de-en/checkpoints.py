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


RULES = {
    "best logged valid BLEU (training's best.pt)": ("valid_bleu_logged", max),
    "best whole-valid greedy BLEU": ("valid_bleu_all", max),
    "lowest valid loss": ("valid_loss", min),
    "last step": (None, None),
}


def rule_table(scores: dict[str, dict], steps: list[str]) -> list[str]:
    """TSV lines: what each rule keeps, and its test BLEU (beam 5), had training
    stopped at each numbered checkpoint from the third on; at the last one, also
    the best of steps and last-k averages by whole-valid BLEU."""
    stops = steps[2:]
    lines = ["rule\t" + "\t".join(f"stop at {n}" for n in stops)]
    for rule, (key, pick) in RULES.items():
        cells = []
        for stop in stops:
            seen = steps[: steps.index(stop) + 1]
            keep = seen[-1] if key is None else pick(seen, key=lambda n: scores[n][key])
            cells.append(f"{keep}: {scores[keep]['test_beam5']:.2f}")
        lines.append(rule + "\t" + "\t".join(cells))
    best = max(scores, key=lambda n: scores[n]["valid_bleu_all"])
    lines.append(
        "best whole-valid BLEU, steps and averages (last stop)\t"
        + "\t" * (len(stops) - 1)
        + f"{best}: {scores[best]['test_beam5']:.2f}"
    )
    oracle = [
        max(steps[: steps.index(s) + 1], key=lambda n: scores[n]["test_beam5"])
        for s in stops
    ]
    lines.append(
        "(the best step on test)\t"
        + "\t".join(f"{n}: {scores[n]['test_beam5']:.2f}" for n in oracle)
    )
    return lines


def read_table(path: Path) -> tuple[dict[str, dict], list[str]]:
    """The candidates' scores from a table this script wrote."""
    lines = path.read_text("utf-8").split("\n\n")[0].splitlines()
    keys = lines[0].split("\t")[1:]
    scores = {}
    for line in lines[1:]:
        name, *vals = line.split("\t")
        scores[name] = {
            k: float(v) if v else None for k, v in zip(keys, vals, strict=True)
        }
    return scores, [n for n in scores if n.startswith("step ")]


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
    ap.add_argument(
        "--rules-of",
        type=Path,
        metavar="TSV",
        help="only print the rules' table of a table written by --out",
    )
    args = ap.parse_args(argv)
    if args.rules_of:
        print("\n".join(rule_table(*read_table(args.rules_of))).replace("\t", " | "))
        return 0

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

    table += ["", *rule_table(scores, [n for n, _, r in cands if r])]
    print("\n" + "\n".join(table[table.index("") + 1 :]).replace("\t", " | "))
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    if args.out:
        args.out.write_text("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
