#!/usr/bin/env python
"""Train and compare SpeechBrain's CRDNN and s2s on the asr-cs Czech audio.

Run with s2s's interpreter after `benchmarks/peers/setup.sh speechbrain`:

    nice -n 10 .venv/bin/python benchmarks/peers/asr_run.py --minutes 60 --threads 2
    .venv/bin/python benchmarks/peers/asr_run.py --smoke   # the whole path, ~minutes

Systems, one after another, each for the same wall-clock training budget on the
same threads: SpeechBrain 1.1.2's CRDNN with CTC (`sb-ctc`) and with joint
CTC/attention (`sb-joint`), both from scratch over characters (hyperparameters in
speechbrain/crdnn_*.yaml, the Brain loop in speechbrain/train.py), and s2s through
its own CLI with the asr-cs recipe's config (`s2s`; `s2s-joint` adds the recipe's
joint config). Every system trains on recipes/asr-cs/data/{train,valid,test}.tsv
(`make -C recipes/asr-cs data` is run first if they are missing), keeps the
checkpoint with the best validation score, decodes the test set, and is scored by
`s2s score wer`. One markdown table is printed and written to WORK/results.md.
README.md beside this file explains every number.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from peer_common import check, log, median_rate, run_measured, s2s_cmd  # noqa: E402
from run import cpu_model, fmt  # noqa: E402

SB_DIR = HERE / "speechbrain"
SB_PYTHON = HERE / "venvs" / "speechbrain" / "bin" / "python"
RECIPE = ROOT / "recipes" / "asr-cs"
SYSTEMS = {
    "sb-ctc": "SpeechBrain 1.1.2 CRDNN, CTC (greedy)",
    "sb-joint": "SpeechBrain 1.1.2 CRDNN, joint CTC/attention (beam 8, CTC 0.3)",
    "s2s": "s2s, recipes/asr-cs/config.cpu.yaml",
    "s2s-joint": "s2s, recipes/asr-cs/config.joint.cpu.yaml",
}
# --sb-size recipe: the widths of SpeechBrain's TIMIT CRDNN recipes (ASR/CTC,
# ASR/seq2seq), in place of crdnn_*.yaml's CPU widths.
SB_RECIPE_SIZE = {
    "cnn_channels": [128, 256],
    "rnn_layers": 4,
    "rnn_neurons": 512,
    "dnn_neurons": 512,
}
SB_RECIPE_SIZE_JOINT = {**SB_RECIPE_SIZE, "dec_neurons": 256, "attn_dim": 256}
SMOKE_UTTS = 24  # per split
SMOKE_SB_JOINT = {"test_beam_size": 2, "max_decode_ratio": 0.3}


@dataclass
class Result:
    system: str
    params: int | None = None
    epochs: float | None = None
    train_wall_s: float | None = None
    audio_s_per_s: float | None = None
    train_rss: float | None = None
    cer: float | None = None
    wer: float | None = None
    rtf: float | None = None
    dec_rss: float | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- data


def manifests(args: argparse.Namespace, env: dict[str, str]) -> Path:
    """The directory of {train,valid,test}.tsv (a subset for --smoke)."""
    data = args.data
    if not (data / "train.tsv").exists():
        if data != RECIPE / "data":
            raise SystemExit(f"{data}/train.tsv missing")
        log("no asr-cs data yet: make -C recipes/asr-cs data (downloads ~110 MB)")
        cmd = ["make", "-C", str(RECIPE), "data", f"PYTHON={sys.executable}"]
        check(run_measured(cmd, args.work / "data.log", env), "asr-cs data")
    if not args.smoke:
        return data
    sub = args.work / "data"
    sub.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        lines = (data / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        out = [lines[0]]
        for line in lines[1 : SMOKE_UTTS + 1]:
            cols = line.split("\t")
            cols[1] = str((data / cols[1]).resolve())  # paths relative to data/
            out.append("\t".join(cols))
        (sub / f"{split}.tsv").write_text("\n".join(out) + "\n", encoding="utf-8")
    return sub


def test_refs(data: Path, out: Path) -> Path:
    lines = (data / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out.write_text("".join(line.split("\t")[3] + "\n" for line in lines), "utf-8")
    return out


def prepared(out: Path, data: Path) -> bool:
    """Whether `out` was prepared from these manifests; if not, it is emptied and
    stamped for them (the caller then prepares it)."""
    stamp = {
        split: [str(data / f"{split}.tsv"), (data / f"{split}.tsv").stat().st_mtime]
        for split in ("train", "valid", "test")
    }
    path = out.parent / f"{out.name}.manifests.json"  # beside: s2s wants it empty
    if path.exists() and json.loads(path.read_text()) == stamp:
        return True
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    path.write_text(json.dumps(stamp))
    return False


def score(env: dict[str, str], ref: Path, hyp_tsv: Path, run: Path) -> tuple:
    """(CER, WER) of `id<TAB>text` hypotheses by `s2s score wer`."""
    hyp = run / "test.hyp.txt"
    rows = hyp_tsv.read_text(encoding="utf-8").splitlines()
    hyp.write_text("".join(r.split("\t", 1)[1] + "\n" for r in rows), "utf-8")
    cmd = s2s_cmd() + ["score", "wer", "--ref", str(ref), "--hyp", str(hyp)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    (run / "score.txt").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"s2s score wer failed:\n{out.stdout}{out.stderr}")
    wer = float(re.search(r"^WER ([\d.]+)", out.stdout, re.M).group(1))
    cer = float(re.search(r"^CER ([\d.]+)", out.stdout, re.M).group(1))
    return cer, wer


# ---------------------------------------------------------------- SpeechBrain


def run_sb(
    name: str, args: argparse.Namespace, env: dict, data: Path, ref: Path
) -> Result:
    res, run = Result(name), args.work / name
    sb_data = args.work / "sb-data"
    if not prepared(sb_data, data) or not (sb_data / "chars.json").exists():
        cmd = [str(SB_PYTHON), str(SB_DIR / "train.py"), "prep"]
        cmd += ["--manifests", str(data), "--work", str(sb_data)]
        check(run_measured(cmd, args.work / "sb-prep.log", env), "SpeechBrain prep")
    joint = name == "sb-joint"
    overrides = dict(SB_RECIPE_SIZE_JOINT if joint else SB_RECIPE_SIZE)
    overrides = overrides if args.sb_size == "recipe" else {}
    if args.smoke and joint:  # an untrained decoder runs to the length limit
        overrides.update(SMOKE_SB_JOINT)
        res.notes.append(f"{name}: smoke test, searched with {SMOKE_SB_JOINT}")
    overrides.update(json.loads(args.sb_set or "{}"))
    common = [str(SB_PYTHON), str(SB_DIR / "train.py")]
    common += ["--work", str(sb_data), "--out", str(run)]
    common += ["--threads", str(args.threads)]
    common += ["--hparams", str(SB_DIR / f"crdnn_{'joint' if joint else 'ctc'}.yaml")]
    common += ["--overrides", json.dumps(overrides)]
    if not args.skip_train:
        shutil.rmtree(run, ignore_errors=True)
        cmd = ["train", "--minutes", str(args.minutes)]
        if args.smoke:
            cmd += ["--max-epochs", "1"]
        # The script stops itself at the budget and validates once more; the hard
        # limit only catches a hang.
        p = run_measured(
            common[:2] + cmd + common[2:], run / "train.log", env,
            budget_s=args.minutes * 60 + 1800,
        )  # fmt: skip
        check(p, f"{name} training")
        res.train_rss = p.peak_rss_mib
    summary = json.loads((run / "summary.json").read_text())
    res.params, res.epochs = summary["params"], summary["epochs"]
    res.train_wall_s = summary["train_wall_s"]
    res.audio_s_per_s = summary["train_audio_s"] / max(summary["train_time_s"], 1e-9)
    if summary["stopped"] == "budget":
        res.notes.append(f"{name}: the budget stopped it in epoch {res.epochs}")
    p = run_measured(common[:2] + ["test"] + common[2:], run / "decode.log", env)
    check(p, f"{name} decoding")
    summary = json.loads((run / "summary.json").read_text())
    res.rtf = summary["decode_s"] / summary["test_audio_s"]
    res.dec_rss = p.peak_rss_mib
    res.cer, res.wer = score(env, ref, run / "test.hyp.tsv", run)
    return res


# ----------------------------------------------------------------------- s2s


def s2s_prep(args: argparse.Namespace, env: dict, data: Path) -> Path:
    flags = shlex.split(args.s2s_prep)
    bin_dir = args.work / ("s2s-bin" + "".join(f.strip("-") for f in flags))
    if prepared(bin_dir, data) and (bin_dir / "meta.json").exists():
        return bin_dir
    cmd = s2s_cmd() + ["prep", "speech", "--chars", "--out", str(bin_dir), *flags]
    for split in ("train", "valid", "test"):
        cmd += [f"--{split}", str(data / f"{split}.tsv")]
    check(run_measured(cmd, args.work / "s2s-prep.log", env), "s2s prep speech")
    return bin_dir


def s2s_audio_per_unit(bin_dir: Path, joint: bool) -> float:
    """Seconds of training audio per unit of s2s's tok/s (characters, + EOS)."""
    from s2s.data.speech import SpeechData

    train = SpeechData(bin_dir, "train")
    units = float(train.tgt.lengths.sum()) + (len(train) if joint else 0)
    return train.seconds() / units


def run_s2s(
    name: str, args: argparse.Namespace, env: dict, data: Path, ref: Path
) -> Result:
    res, run = Result(name), args.work / name
    joint = name == "s2s-joint"
    config = args.s2s_joint_config if joint else args.s2s_config
    bin_dir = s2s_prep(args, env, data)
    if not args.skip_train:
        shutil.rmtree(run, ignore_errors=True)
        sets = [
            f"train.max_minutes={args.minutes}",
            "train.max_steps=0",
            f"train.threads={args.threads}",
            *args.s2s_set,
        ]
        if args.smoke:
            sets += ["train.max_steps=20", "train.valid_every=10", "train.log_every=5"]
        cmd = s2s_cmd() + ["train", str(config), "--data", str(bin_dir)]
        cmd += ["--out", str(run)] + [a for s in sets for a in ("--set", s)]
        p = run_measured(cmd, run / "train.log", env, budget_s=args.minutes * 60 + 1800)
        check(p, f"{name} training")
        res.train_rss, res.train_wall_s = p.peak_rss_mib, p.seconds
    records = [
        json.loads(line)
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    steps = [r for r in records if "tok_per_s" in r]
    rate = median_rate([r["tok_per_s"] for r in steps])
    if rate is not None:
        res.audio_s_per_s = rate * s2s_audio_per_unit(bin_dir, joint)
    res.epochs = steps[-1]["epoch"] if steps else None

    import torch

    from s2s.checkpoint import load_speech_model

    model = load_speech_model(run / "best.pt", torch.device("cpu"))[0]
    res.params = sum(p.numel() for p in model.parameters())
    hyp = run / "test.hyp.tsv"
    cmd = s2s_cmd() + ["transcribe", "--checkpoint", str(run / "best.pt")]
    cmd += ["--manifest", str(data / "test.tsv"), "--output", str(hyp)]
    cmd += ["--threads", str(args.threads)]
    p = run_measured(cmd, run / "decode.log", env)
    check(p, f"{name} decoding")
    m = re.search(r"real-time factor ([\d.]+)", p.log.read_text())
    res.rtf = float(m.group(1)) if m else None
    res.dec_rss = p.peak_rss_mib
    res.cer, res.wer = score(env, ref, hyp, run)
    return res


# -------------------------------------------------------------------- report


def report(args: argparse.Namespace, results: list[Result], argv: list[str]) -> str:
    rows = [
        "| system | params (M) | epochs | train wall (min) | train audio s/s "
        "| train peak RSS (MiB) "
        "| test CER | test WER | decode RTF | decode peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        wall = r.train_wall_s and r.train_wall_s / 60
        rows.append(
            f"| {SYSTEMS[r.system]} | {fmt(r.params and r.params / 1e6, '.2f')} "
            f"| {fmt(r.epochs, 'g')} | {fmt(wall, '.1f')} "
            f"| {fmt(r.audio_s_per_s, '.1f')} "
            f"| {fmt(r.train_rss, ',.0f')} | {fmt(r.cer, '.2f')} "
            f"| {fmt(r.wer, '.2f')} | {fmt(r.rtf, '.3f')} | {fmt(r.dec_rss, ',.0f')} |"
        )
    lines = [
        f"## SpeechBrain vs s2s on asr-cs, {args.minutes:g} min "
        f"({datetime.now().astimezone():%Y-%m-%d %H:%M %Z})"
        + (" — SMOKE TEST, numbers mean nothing" if args.smoke else ""),
        "",
        f"- command: `{shlex.join(argv)}` (in {ROOT})",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs visible, {args.threads} "
        f"torch threads, no GPU; load average {args.load_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end",
        f"- budget: {args.minutes:g} min of training per system, one at a time; "
        f"SpeechBrain sizes: {args.sb_size}"
        + (f" + {args.sb_set}" if args.sb_set else "")
        + (f"; s2s extra: {' '.join(args.s2s_set)}" if args.s2s_set else ""),
        f"- data: {args.data_used} (test CER/WER by `s2s score wer`, all systems)",
        "",
        *rows,
        "",
        "train audio s/s: seconds of training audio per second of training "
        "(SpeechBrain: summed over its training batches, validation left out; s2s: "
        "median tok/s over its log windows x audio seconds per target unit); decode "
        "RTF: decoding time of the test set (features and search, model loading "
        "left out) / its audio seconds; peak RSS: sum over the process tree, polled "
        "every 0.5 s. See benchmarks/peers/README.md.",
    ]
    notes = [n for r in results for n in r.notes]
    if notes:
        lines += ["", *[f"- note: {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=60.0, help="training budget")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, all")
    ap.add_argument("--systems", default="sb-ctc,sb-joint,s2s", help=",".join(SYSTEMS))
    ap.add_argument("--data", type=Path, default=RECIPE / "data")
    ap.add_argument("--work", type=Path, default=HERE / "work" / "asr")
    ap.add_argument("--s2s-config", type=Path, default=RECIPE / "config.cpu.yaml")
    ap.add_argument(
        "--s2s-joint-config", type=Path, default=RECIPE / "config.joint.cpu.yaml"
    )
    ap.add_argument(
        "--s2s-set", action="append", default=[], metavar="KEY=VALUE",
        help="extra `s2s train --set` override (repeatable)",
    )  # fmt: skip
    ap.add_argument(
        "--s2s-prep", default="", metavar="FLAGS",
        help='extra `s2s prep speech` flags, e.g. "--speed-perturb 0.9,1.1"',
    )  # fmt: skip
    ap.add_argument("--sb-size", choices=["cpu", "recipe"], default="cpu")
    ap.add_argument("--sb-set", default="", help='JSON overrides, e.g. {"lr": 0.5}')
    ap.add_argument("--skip-train", action="store_true", help="decode WORK's runs")
    ap.add_argument(
        "--smoke", action="store_true",
        help=f"first {SMOKE_UTTS} utterances per split, 1 SpeechBrain epoch, 20 s2s "
        f"steps, --minutes 1, SpeechBrain joint search {SMOKE_SB_JOINT}: checks the "
        "whole path, not the numbers",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.smoke:
        args.minutes = min(args.minutes, 1.0)
        if args.work == HERE / "work" / "asr":
            args.work = HERE / "work" / "asr-smoke"
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s!r}; choose from {','.join(SYSTEMS)}")
    if any(s.startswith("sb-") for s in systems) and not SB_PYTHON.exists():
        ap.error(f"{SB_PYTHON} missing: run benchmarks/peers/setup.sh speechbrain")
    args.data, args.work = args.data.resolve(), args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args.load_start = os.getloadavg()[0]
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
        CUDA_VISIBLE_DEVICES="",
        PYTHONWARNINGS="ignore",
        TERM="dumb",
        COLUMNS="120",
        PYTHONUNBUFFERED="1",
    )
    data = manifests(args, env)
    args.data_used = data
    ref = test_refs(data, args.work / "test.ref.txt")
    results, failed = [], 0
    for s in systems:
        t0 = time.time()
        log(f"{s}: training for {args.minutes:g} min, then decoding the test set")
        try:
            r = (run_sb if s.startswith("sb-") else run_s2s)(s, args, env, data, ref)
            log(f"{s}: CER {r.cer} WER {r.wer} ({(time.time() - t0) / 60:.1f} min)")
        except SystemExit as e:  # one system failing leaves the others' rows
            failed += 1
            log(f"{s}: FAILED: {e}")
            r = Result(s, notes=[f"{s} FAILED: {str(e).splitlines()[0]}"])
        results.append(r)
        (args.work / "results.json").write_text(
            json.dumps([r.__dict__ for r in results], indent=1)
        )
    cmdline = [os.path.relpath(sys.executable, ROOT), os.path.relpath(__file__, ROOT)]
    cmdline += sys.argv[1:] if argv is None else argv
    text = report(args, results, cmdline)
    (args.work / "results.md").write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
