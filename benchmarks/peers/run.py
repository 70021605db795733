#!/usr/bin/env python
"""Train and compare s2s, OpenNMT-py 3.5.1 and JoeyNMT 2.3 on the same data.

Run with s2s's interpreter after `benchmarks/peers/setup.sh`:

    nice -n 10 .venv/bin/python benchmarks/peers/run.py --minutes 30

Steps: one joint SentencePiece model and binarized data via `s2s prep text`; the
same pieces (and the same length/ratio filter) written as text for the peers; for
each toolkit a config with matched sizes, training for the same wall-clock budget,
beam-5 decoding of the test set, sacrebleu BLEU/chrF of the detokenized output
against the raw references (`s2s score bleu`), and one markdown table, printed and
written to WORK/results.md. README.md beside this file explains every number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import peer_common as common  # noqa: E402 (run.py's options set some)
from peer_common import (  # noqa: E402
    BEAM,
    BETA2,
    CLIP,
    DEC_HIDDEN,
    DEC_LAYERS,
    DROPOUT,
    EMB,
    ENC_HIDDEN,
    ENC_LAYERS,
    HERE,
    LABEL_SMOOTHING,
    LENPEN,
    MAX_LEN,
    MAX_RATIO,
    NAMES,
    ROOT,
    TOOLKITS,
    VENVS,
    check,
    log,
    run_measured,
    s2s_cmd,
)
from peer_toolkits import ONMT, Joey
from toolkits import S2S, Result, S2SFast, Toolkit

# ---------------------------------------------------------------------- data prep


def prepare_data(args: argparse.Namespace, env: dict[str, str]) -> dict:
    """s2s prep (SentencePiece + binarized data for s2s), then the same pieces as
    text for the peers, filtered exactly like s2s prep filters training pairs."""
    import sentencepiece as spm

    work, data = args.work, args.data
    src, tgt = args.src, args.tgt
    bin_dir = work / "data-bin"
    spm_model = bin_dir / "spm.joint.model"
    meta = bin_dir / "meta.json"
    if not (spm_model.exists() and meta.exists()):
        if bin_dir.exists():
            shutil.rmtree(bin_dir)
        cmd = s2s_cmd() + [
            "prep", "text", "--src", src, "--tgt", tgt,
            "--train", str(data / "train"), "--valid", str(data / "valid"),
            "--test", str(data / "test"), "--out", str(bin_dir),
            "--joint-vocab", "--vocab-size", str(args.vocab_size),
        ]  # fmt: skip
        log("s2s prep text (SentencePiece training + binarizing) ...")
        check(run_measured(cmd, work / "logs" / "prep.log", env), "s2s prep text")
    else:
        log(f"reusing {bin_dir}")
    kept = (
        json.loads(meta.read_text())["stats"]["train"]["kept"]
        if meta.exists()
        else None
    )

    pieces = work / "pieces"
    stamp = pieces / "done.json"
    if (
        stamp.exists()
        and json.loads(stamp.read_text()).get("spm_mtime") == spm_model.stat().st_mtime
    ):
        info = json.loads(stamp.read_text())
        log(f"reusing {pieces}")
        return info
    pieces.mkdir(parents=True, exist_ok=True)
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    info: dict = {
        "spm_mtime": spm_model.stat().st_mtime,
        "vocab_size": sp.get_piece_size(),
    }
    for split in ("train", "valid", "test"):
        s_lines = (data / f"{split}.{src}").read_text(encoding="utf-8").split("\n")[:-1]
        t_lines = (data / f"{split}.{tgt}").read_text(encoding="utf-8").split("\n")[:-1]
        assert len(s_lines) == len(t_lines), split
        s_p = sp.encode(s_lines, out_type=str)
        t_p = sp.encode(t_lines, out_type=str)
        n = dropped = 0
        tgt_tokens = 0
        with (
            open(pieces / f"{split}.{src}", "w") as fs,
            open(pieces / f"{split}.{tgt}", "w") as ft,
        ):
            for a, b in zip(s_p, t_p, strict=True):
                ls, lt = len(a) + 1, len(b) + 1  # with EOS, as in s2s prep
                if split == "train" and (
                    max(ls, lt) > MAX_LEN or max(ls, lt) > MAX_RATIO * min(ls, lt)
                ):
                    dropped += 1
                    continue
                fs.write(" ".join(a) + "\n")
                ft.write(" ".join(b) + "\n")
                n += 1
                tgt_tokens += lt
        info[split] = {
            "pairs": n,
            "dropped": dropped,
            "tgt_tokens_with_eos": tgt_tokens,
        }
    if kept is not None and kept != info["train"]["pairs"]:
        n = info["train"]["pairs"]
        raise SystemExit(f"peer training data has {n} pairs, s2s prep kept {kept}")
    # Vocabulary for the peers: every SentencePiece piece but the four specials
    # (pad/unk/bos/eos); each toolkit adds its own four, so all have the same size.
    specials = {sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()}
    vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if i not in specials]
    (pieces / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    stamp.write_text(json.dumps(info, indent=1))
    log(f"pieces written to {pieces}: {info['train']['pairs']} training pairs")
    return info


CLASSES = {"s2s": S2S, "s2s-fast": S2SFast, "onmt": ONMT, "joey": Joey}


# ------------------------------------------------------------------------- report


def score(
    env: dict[str, str], ref: Path, hyp: Path, log_path: Path
) -> tuple[float, float]:
    out = subprocess.run(
        s2s_cmd() + ["score", "bleu", "--ref", str(ref), "--hyp", str(hyp)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    log_path.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"s2s score bleu failed:\n{out.stdout}{out.stderr}")
    bleu = float(re.search(r"^BLEU ([\d.]+)", out.stdout, re.M).group(1))
    chrf = float(re.search(r"^chrF ([\d.]+)", out.stdout, re.M).group(1))
    return bleu, chrf


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def versions() -> dict[str, str]:
    out = {}
    pys = {"s2s": sys.executable}
    for v in ("onmt", "joey"):
        if (VENVS / v / "bin" / "python").exists():
            pys[v] = str(VENVS / v / "bin" / "python")
    code = "import torch; print(torch.__version__)"
    for k, py in pys.items():
        r = subprocess.run([py, "-c", code], capture_output=True, text=True)
        out[k] = r.stdout.strip() or "?"
    return out


def fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def report(
    args: argparse.Namespace, results: list[Result], info: dict, argv: list[str]
) -> str:
    tv = versions()
    rows = [
        "| toolkit | params | steps | train wall (min) | train tgt tok/s | "
        "train peak RSS (MiB) | BLEU | chrF | decode sent/s | decode peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {NAMES[r.toolkit]} | {fmt(r.params and r.params / 1e6, '.2f')}M "
            f"| {fmt(r.steps, 'd')} | {fmt(r.train_s and r.train_s / 60, '.1f')} "
            f"| {fmt(r.tok_s, ',.0f')} | {fmt(r.train_rss, ',.0f')} "
            f"| {fmt(r.bleu, '.2f')} | {fmt(r.chrf, '.2f')} "
            f"| {fmt(r.dec_sent_s, '.1f')} | {fmt(r.dec_rss, ',.0f')} |"
        )
    notes = [n for r in results for n in r.notes]
    n_test = (
        info["test"]["pairs"]
        if not args.max_test
        else min(args.max_test, info["test"]["pairs"])
    )
    lines = [
        f"## s2s vs OpenNMT-py vs JoeyNMT, {args.minutes:g} min "
        f"({datetime.now().astimezone():%Y-%m-%d %H:%M %Z})",
        "",
        f"- command: `{shlex.join(argv)}` (in {ROOT})",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs visible, {args.threads} "
        f"torch/OpenMP threads, no GPU; {platform.platform()}; load average "
        f"{args.load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        f"- budget: {args.minutes} min of training per toolkit, one toolkit at a time; "
        f"torch {', '.join(f'{k} {v}' for k, v in tv.items())}",
        f"- data: {args.data} ({info['train']['pairs']} training pairs after the "
        f"length/ratio filter, {n_test} test sentences); joint unigram SentencePiece, "
        f"{info['vocab_size']} pieces",
        f"- model: embeddings {EMB}, BiLSTM encoder {ENC_LAYERS}x{ENC_HIDDEN} per "
        f"direction, LSTM decoder {DEC_LAYERS}x{DEC_HIDDEN}, general (Luong) "
        f"attention, input feeding, dropout {DROPOUT}, untied embeddings"
        + (
            " (s2s-fast: no input feeding, tied)"
            if any(r.toolkit == "s2s-fast" for r in results)
            else ""
        )
        + "; "
        f"Adam(0.9, {BETA2}), lr {common.LR} after {common.WARMUP} warm-up steps "
        f"then 1/sqrt, {common.BATCH_TOKENS}-token batches, label smoothing "
        f"{LABEL_SMOOTHING}, clip {CLIP}",
        f"- decoding: beam {BEAM}, GNMT length penalty {LENPEN}; the last checkpoint "
        f"of each run; BLEU/chrF: sacrebleu via `s2s score bleu`, detokenized output "
        f"vs raw references"
        + (f"; s2s extra: {' '.join(args.s2s_set)}" if args.s2s_set else "")
        + (
            f"; s2s decodes in {args.s2s_precision}"
            if args.s2s_precision != "fp32"
            else ""
        ),
        "",
        *rows,
        "",
        f"train tgt tok/s: median over the toolkit's own {args.log_every}-step log "
        "windows (first window left out); decode sent/s: (N - 1) / (wall time on N "
        "test sentences - wall time on the first sentence alone), i.e. without "
        "start-up and model loading; peak RSS: sum over the process tree, polled "
        "every 0.5 s. See benchmarks/peers/README.md.",
    ]
    if notes:
        lines += ["", *[f"- note: {n}" for n in notes]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def default_data() -> Path:
    base = ROOT / "recipes" / "mt-de-en" / "data"
    return base / "de-en" if (base / "de-en").is_dir() else base


def run_toolkit(
    tk: Toolkit,
    args: argparse.Namespace,
    env: dict[str, str],
    test_pieces: Path,
    test_ref: Path,
    n_test: int,
) -> None:
    t = tk.name
    if args.skip_train:
        tk.parse_train_log(tk.dir / "train.log")
    else:
        tk.train()
    log(f"{t}: trained {tk.res.steps} steps, decoding {n_test} test sentences ...")
    src = test_pieces
    if isinstance(tk, S2S):  # raw source text for s2s
        src = args.work / f"test.raw.{args.src}"
        raw = (args.data / f"test.{args.src}").read_text(encoding="utf-8")
        src.write_text("".join(raw.splitlines(True)[:n_test]))
    tk.decode(src, n_test)
    tk.res.bleu, tk.res.chrf = score(env, test_ref, tk.detok_hyp, tk.dir / "score.txt")
    log(
        f"{t}: BLEU {tk.res.bleu:.2f} chrF {tk.res.chrf:.2f}, "
        f"{fmt(tk.res.tok_s, '.0f')} tok/s, {fmt(tk.res.dec_sent_s, '.1f')} sent/s"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=30.0,
        help="training budget per toolkit (wall clock)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=default_data(),
        help="DIR with {train,valid,test}.{SRC,TGT} (default: the mt-de-en recipe's)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=HERE / "work",
        help="output directory (data, runs, results.md)",
    )
    ap.add_argument(
        "--toolkits",
        default="s2s,onmt,joey",
        help="comma-separated subset of s2s,s2s-fast,onmt,joey (s2s-fast: the "
        "matched sizes with s2s's default input_feed=false, tie_embeddings=true)",
    )
    ap.add_argument(
        "--threads", type=int, default=2, help="torch/OpenMP threads for every command"
    )
    ap.add_argument(
        "--batch-tokens",
        type=int,
        default=common.BATCH_TOKENS,
        help="training batch size in tokens (padding included), all toolkits",
    )
    ap.add_argument(
        "--lr", type=float, default=common.LR, help="peak learning rate, all toolkits"
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=common.WARMUP,
        help="linear warm-up steps, all toolkits",
    )
    ap.add_argument("--src", default="de")
    ap.add_argument("--tgt", default="en")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument(
        "--save-every",
        type=int,
        default=50,
        help="OpenNMT-py checkpoint interval in steps: it is stopped at the budget "
        "and its newest checkpoint decoded",
    )
    ap.add_argument(
        "--valid-every",
        type=int,
        default=1000,
        help="validate every N steps (all toolkits)",
    )
    ap.add_argument(
        "--log-every",
        type=int,
        default=50,
        help="training log window in steps, for tok/s (all toolkits)",
    )
    ap.add_argument(
        "--max-test",
        type=int,
        default=0,
        help="decode only the first N test sentences (0: all; for smoke tests)",
    )
    ap.add_argument(
        "--s2s-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra `s2s train --set` overrides (repeatable)",
    )
    ap.add_argument(
        "--decode-repeats",
        type=int,
        default=1,
        help="time each toolkit's decoding N times and report the median",
    )
    ap.add_argument(
        "--s2s-precision",
        default="fp32",
        choices=["fp32", "int8"],
        help="s2s's decoding precision (`s2s translate --precision`; the peers: fp32)",
    )
    ap.add_argument(
        "--skip-train",
        action="store_true",
        help="reuse the trained runs in --work; decode and score only",
    )
    args = ap.parse_args(argv)
    # Every toolkit's config reads them (peer_common.py).
    common.BATCH_TOKENS, common.LR, common.WARMUP = (
        args.batch_tokens,
        args.lr,
        args.warmup,
    )
    args.data, args.work = args.data.resolve(), args.work.resolve()
    toolkits = [t.strip() for t in args.toolkits.split(",") if t.strip()]
    for t in toolkits:
        if t not in TOOLKITS:
            ap.error(f"unknown toolkit {t!r}; choose from {','.join(TOOLKITS)}")
        if not t.startswith("s2s") and not (VENVS / t / "bin" / "python").exists():
            ap.error(f"{VENVS / t} missing: run benchmarks/peers/setup.sh first")
    args.work.mkdir(parents=True, exist_ok=True)
    # A shell starts background jobs with SIGINT ignored, and children inherit
    # that: JoeyNMT would then ignore the SIGINT that stops it. A Python handler
    # here is reset to the default in every child at exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args.load_start = os.getloadavg()[0]

    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
        CUDA_VISIBLE_DEVICES="",
        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",  # peers' checkpoints under torch>=2.6
        PYTHONWARNINGS="ignore::FutureWarning,ignore::UserWarning",
        TERM="dumb",
        COLUMNS="120",
        PYTHONUNBUFFERED="1",
    )
    info = prepare_data(args, env)

    pieces = args.work / "pieces"
    test_pieces = pieces / f"test.{args.src}"
    test_ref = args.data / f"test.{args.tgt}"
    n_test = info["test"]["pairs"]
    if args.max_test and args.max_test < n_test:
        n_test = args.max_test
        sub = args.work / f"test.first{n_test}"
        (sub.parent / f"{sub.name}.{args.src}").write_text(
            "".join(test_pieces.read_text(encoding="utf-8").splitlines(True)[:n_test])
        )
        (sub.parent / f"{sub.name}.{args.tgt}").write_text(
            "".join(test_ref.read_text(encoding="utf-8").splitlines(True)[:n_test])
        )
        test_pieces = sub.parent / f"{sub.name}.{args.src}"
        test_ref = sub.parent / f"{sub.name}.{args.tgt}"

    results, failed = [], 0
    for t in toolkits:
        tk = CLASSES[t](args, env, info)
        try:
            run_toolkit(tk, args, env, test_pieces, test_ref, n_test)
        except SystemExit as e:  # one toolkit failing leaves the others' rows
            failed += 1
            log(f"{t}: FAILED: {e}")
            tk.res.notes.append(f"{NAMES[t]} FAILED: {str(e).splitlines()[0]}")
        results.append(tk.res)
        (args.work / "results.json").write_text(
            json.dumps([r.__dict__ for r in results], indent=1)
        )

    cmdline = [os.path.relpath(sys.executable, ROOT), os.path.relpath(__file__, ROOT)]
    cmdline += sys.argv[1:] if argv is None else argv
    text = report(args, results, info, cmdline)
    (args.work / "results.md").write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
