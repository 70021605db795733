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
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = HERE / "venvs"
TOOLKITS = ("s2s", "s2s-fast", "onmt", "joey")
NAMES = {
    "s2s": "s2s",
    "s2s-fast": "s2s, its defaults (no input feeding, tied)",
    "onmt": "OpenNMT-py 3.5.1",
    "joey": "JoeyNMT 2.3.0",
}

# One architecture for all three (README.md, "Matched settings").
EMB, ENC_HIDDEN, DEC_HIDDEN, ENC_LAYERS, DEC_LAYERS = 256, 256, 512, 2, 1
DROPOUT, LABEL_SMOOTHING = 0.3, 0.1
PARAM_INIT = 0.1  # uniform(-0.1, 0.1): OpenNMT-py and s2s defaults (JoeyNMT: its own)
# Training schedule: the defaults of --batch-tokens, --lr and --warmup, which set these
# (main). 30 minutes on 2 cores is about 1,200 updates of 2,000 tokens: a schedule
# that learns in that many (4,096 tokens, lr 1e-3 after 500 warm-up steps gave
# ~800 updates and test BLEU 1.9).
BATCH_TOKENS, LR, WARMUP, CLIP, BETA2 = 2000, 3e-3, 150, 1.0, 0.98
BEAM, LENPEN, DECODE_BATCH_TOKENS = 5, 0.6, 6000
MAX_LEN, MAX_RATIO = 250, 3.0  # s2s prep's training filter, applied to the peers too


# --------------------------------------------------------------------------- utils


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0


def _session_pids(sid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # fields after the ")" of comm: state ppid pgrp session ...
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 3 and int(rest[3]) == sid:
            pids.append(int(d))
    return pids


@dataclass
class Proc:
    """Result of one measured command."""

    rc: int
    seconds: float
    peak_rss_mib: float
    log: Path
    killed_at_budget: bool = False


def run_measured(
    cmd: list[str],
    log_path: Path,
    env: dict[str, str],
    *,
    budget_s: float | None = None,
    stop_signal: int = signal.SIGTERM,
    grace_s: float = 180.0,
    stdin: Path | None = None,
    stdout: Path | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Run cmd in its own session; poll the summed RSS of every process in that
    session twice a second; at budget_s send stop_signal (SIGINT to the main
    process, anything else to the whole session), SIGKILL after grace_s."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as logf:
        logf.write("$ " + shlex.join(cmd) + "\n")
        logf.flush()
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
        fout = open(stdout, "wb") if stdout else logf  # noqa: SIM115
        t0 = time.time()
        p = subprocess.Popen(
            cmd,
            stdin=fin,
            stdout=fout,
            stderr=logf,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                total = sum(_rss_kib(pid) for pid in _session_pids(p.pid))
                peak[0] = max(peak[0], total)
                done.wait(0.5)

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        killed = False
        try:
            if budget_s is None:
                p.wait()
            else:
                try:
                    p.wait(timeout=max(budget_s - (time.time() - t0), 0))
                except subprocess.TimeoutExpired:
                    killed = True
                    log(f"budget reached: sending {signal.Signals(stop_signal).name}")
                    if stop_signal == signal.SIGINT:
                        os.kill(p.pid, signal.SIGINT)
                    else:
                        os.killpg(p.pid, stop_signal)
                    try:
                        p.wait(timeout=grace_s)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            done.set()
            th.join()
            # leftover children (e.g. data-loader workers) of the session
            for pid in _session_pids(p.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if stdin:
                fin.close()
            if stdout:
                fout.close()
        dt = time.time() - t0
    return Proc(p.returncode, dt, peak[0] / 1024, log_path, killed)


def check(proc: Proc, what: str, ok_when_killed: bool = False) -> None:
    if proc.rc == 0 or (ok_when_killed and proc.killed_at_budget):
        return
    tail = proc.log.read_text(errors="replace").splitlines()[-25:]
    raise SystemExit(
        f"{what} failed (exit {proc.rc}); last lines of {proc.log}:\n" + "\n".join(tail)
    )


def median_rate(rates: list[float]) -> float | None:
    """Median of per-window rates, the first window (start-up) left out."""
    if not rates:
        return None
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def write_yaml(path: Path, data: dict) -> None:
    import yaml  # PyYAML, in s2s's venv: it writes 1e-05 as 1.0e-05, which the
    # peers' YAML 1.1 loaders read as a float (JSON's 1e-05 they read as a string)

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# ---------------------------------------------------------------------- data prep


def s2s_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("s2s")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "s2s"]


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


def detokenize(spm_model: Path, pieces_file: Path, out: Path) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    lines = pieces_file.read_text(encoding="utf-8").split("\n")[:-1]
    out.write_text(
        "".join(sp.decode(line.split()) + "\n" for line in lines), encoding="utf-8"
    )


# ---------------------------------------------------------------------- toolkits


@dataclass
class Result:
    toolkit: str
    params: int | None = None
    steps: int | None = None
    train_s: float | None = None
    tok_s: float | None = None
    train_rss: float | None = None
    bleu: float | None = None
    chrf: float | None = None
    dec_s: float | None = None
    dec_sent_s: float | None = None
    dec_rss: float | None = None
    notes: list[str] = field(default_factory=list)


class Toolkit:
    name = ""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], info: dict):
        self.args, self.info = args, info
        self.env = dict(env)
        self.dir = args.work / self.name
        self.pieces = args.work / "pieces"
        self.spm = args.work / "data-bin" / "spm.joint.model"
        self.res = Result(self.name)

    # subclasses: train_cmd(), budget handling, checkpoint(), decode_cmd(), parse_*
    def train(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        cmd = self.train_cmd()
        log(f"{self.name}: training for {self.args.minutes} min: {shlex.join(cmd)}")
        proc = self.run_train(cmd)
        self.res.train_s, self.res.train_rss = proc.seconds, proc.peak_rss_mib
        check(proc, f"{self.name} training", ok_when_killed=True)
        self.parse_train_log(proc.log)

    def decode(self, test_src: Path, n_sents: int) -> None:
        """Decode the whole test set, then its first line alone; the difference of
        the two wall times is the decoding time without start-up and model load.
        With --decode-repeats N, N such pairs; the median difference counts."""
        times = [self.decode_once(test_src) for _ in range(self.args.decode_repeats)]
        self.res.dec_s = statistics.median(times)
        if self.res.dec_s > 0:
            self.res.dec_sent_s = (n_sents - 1) / self.res.dec_s
        if len(times) > 1:
            self.res.notes.append(
                f"{NAMES[self.name]} decoding, sent/s of each repeat: "
                + ", ".join(f"{(n_sents - 1) / t:.1f}" for t in times)
            )

    def decode_once(self, test_src: Path) -> float:
        """One timed pair of decodes; returns the full one's seconds minus the
        one-line one's."""
        hyp = self.dir / "hyp.txt"
        one_src = self.dir / f"one.{self.args.src}"
        one_src.write_text(test_src.read_text(encoding="utf-8").split("\n")[0] + "\n")
        runs = []
        for src, out, tag in (
            (test_src, hyp, ""),
            (one_src, self.dir / "one.hyp", "-one"),
        ):
            cmd, stdin = self.decode_cmd(src, out)
            stdout = out if stdin else None
            if not tag:
                log(
                    f"{self.name}: {shlex.join(cmd)}" + (f" < {stdin}" if stdin else "")
                )
            proc = run_measured(
                cmd, self.dir / f"decode{tag}.log", self.env, stdin=stdin, stdout=stdout
            )
            n_in = len(src.read_text(encoding="utf-8").splitlines())
            n_out = (
                len(out.read_text(encoding="utf-8").splitlines()) if out.exists() else 0
            )
            if proc.rc == 0 and n_in != n_out:
                raise SystemExit(
                    f"{self.name}: {out} has {n_out} lines for {n_in} inputs"
                )
            check(proc, f"{self.name} decoding{tag}")
            runs.append(proc)
        full, one = runs
        self.res.dec_rss = max(self.res.dec_rss or 0.0, full.peak_rss_mib)
        self.detok_hyp = self.finish_hyp(hyp)
        return full.seconds - one.seconds

    def finish_hyp(self, hyp: Path) -> Path:
        out = self.dir / f"hyp.detok.{self.args.tgt}"
        detokenize(self.spm, hyp, out)
        return out


class S2S(Toolkit):
    name = "s2s"
    overrides: dict[str, str] = {}  # on top of the matched settings

    def sets(self) -> list[str]:
        a = self.args
        s = {
            "model.emb_dim": EMB,
            "model.enc_hidden_size": ENC_HIDDEN,
            "model.hidden_size": DEC_HIDDEN,
            "model.enc_layers": ENC_LAYERS,
            "model.dec_layers": DEC_LAYERS,
            "model.attention": "general",
            "model.input_feed": "true",
            "model.dropout": DROPOUT,
            "model.tie_embeddings": "false",
            "model.label_smoothing": LABEL_SMOOTHING,
            "model.param_init": PARAM_INIT,
            "train.max_minutes": a.minutes,
            "train.threads": a.threads,
            "train.device": "cpu",
            "train.batch_tokens": BATCH_TOKENS,
            "train.lr": LR,
            "train.schedule": "inverse_sqrt",
            "train.warmup_steps": WARMUP,
            "train.clip_norm": CLIP,
            "train.valid_every": a.valid_every,
            "train.valid_bleu_sents": 500,
            "train.save_every": a.valid_every,  # s2s saves at its stop anyway
            "train.log_every": a.log_every,
            "train.seed": 1,
            "decode.beam": BEAM,
            "decode.lenpen": LENPEN,
            "decode.batch_tokens": DECODE_BATCH_TOKENS,
        } | self.overrides
        out = [f"{k}={v}" for k, v in s.items()] + list(a.s2s_set)
        return [x for kv in out for x in ("--set", kv)]

    def train_cmd(self) -> list[str]:
        return s2s_cmd() + [
            "train", "--data", str(self.args.work / "data-bin"),
            "--out", str(self.dir / "run"),
        ] + self.sets()  # fmt: skip

    def run_train(self, cmd: list[str]) -> Proc:
        # s2s stops itself (train.max_minutes); the kill is only a safety net.
        budget = self.args.minutes * 60 * 2 + 600
        return run_measured(cmd, self.dir / "train.log", self.env, budget_s=budget)

    def parse_train_log(self, path: Path) -> None:
        rates, step = [], None
        metrics = self.dir / "run" / "metrics.jsonl"
        for line in metrics.read_text().splitlines():
            r = json.loads(line)
            if "tok_per_s" in r:
                rates.append(r["tok_per_s"])
            step = r.get("step", step)
        self.res.tok_s, self.res.steps = median_rate(rates), step
        code = (
            "import sys, torch; from s2s.checkpoint import load_model; "
            "m = load_model(sys.argv[1], torch.device('cpu'))[0]; "
            "print(sum(p.numel() for p in m.parameters()))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(self.dir / "run" / "last.pt")],
            capture_output=True, text=True, env=self.env, check=True,
        )  # fmt: skip
        self.res.params = int(out.stdout.split()[-1])

    def decode_cmd(self, src: Path, hyp: Path) -> tuple[list[str], Path | None]:
        # s2s reads raw text and writes detokenized text
        cmd = s2s_cmd() + [
            "translate", "--checkpoint", str(self.dir / "run" / "last.pt"),
            "--input", str(src), "--output", str(hyp), "--beam", str(BEAM),
            "--lenpen", str(LENPEN), "--batch-tokens", str(DECODE_BATCH_TOKENS),
            "--device", "cpu", "--precision", self.args.s2s_precision,
        ]  # fmt: skip
        return cmd, None

    def finish_hyp(self, hyp: Path) -> Path:
        return hyp  # s2s writes detokenized text


class S2SFast(S2S):
    """The matched sizes and schedule with s2s's own default architecture: no input
    feeding (the decoder LSTM runs over the whole target in one call) and the output
    layer tied to the target embeddings (through a 512 -> 256 projection)."""

    name = "s2s-fast"
    overrides = {"model.input_feed": "false", "model.tie_embeddings": "true"}


class ONMT(Toolkit):
    name = "onmt"

    def config(self) -> dict:
        a, p, d = self.args, self.pieces, self.dir
        return {
            "save_data": str(d / "data"),
            "src_vocab": str(p / "vocab.txt"),
            "tgt_vocab": str(p / "vocab.txt"),
            "share_vocab": False,
            "src_vocab_size": 100000,
            "tgt_vocab_size": 100000,
            "vocab_size_multiple": 1,
            "src_words_min_frequency": 0,
            "tgt_words_min_frequency": 0,
            "overwrite": True,
            "data": {
                "corpus_1": {
                    "path_src": str(p / f"train.{a.src}"),
                    "path_tgt": str(p / f"train.{a.tgt}"),
                },
                "valid": {
                    "path_src": str(p / f"valid.{a.src}"),
                    "path_tgt": str(p / f"valid.{a.tgt}"),
                },
            },
            "save_model": str(d / "model"),
            "save_checkpoint_steps": a.save_every,
            "keep_checkpoint": 3,
            "seed": 1,
            "train_steps": 10_000_000,
            "valid_steps": a.valid_every,
            "report_every": a.log_every,
            "log_file": str(d / "train.onmt.log"),
            "num_workers": 0,
            "model_type": "text",
            "encoder_type": "brnn",
            "decoder_type": "rnn",
            "rnn_type": "LSTM",
            "word_vec_size": EMB,
            "hidden_size": DEC_HIDDEN,  # brnn: hidden_size / 2 per direction
            "enc_layers": ENC_LAYERS,
            "dec_layers": DEC_LAYERS,
            "global_attention": "general",
            "input_feed": 1,
            "bridge": False,  # its default; a bridge here is 2x Linear(1024, 1024)
            "dropout": [DROPOUT],
            "attention_dropout": [0.0],
            "share_embeddings": False,
            "share_decoder_embeddings": False,
            "label_smoothing": LABEL_SMOOTHING,
            "optim": "adam",
            "adam_beta1": 0.9,
            "adam_beta2": BETA2,
            # noam: lr * H^-0.5 * min(step^-0.5, step * warmup^-1.5), i.e. linear
            # warmup to LR, then LR * sqrt(warmup / step): s2s's inverse_sqrt.
            "decay_method": "noam",
            "learning_rate": LR * (DEC_HIDDEN * WARMUP) ** 0.5,
            "warmup_steps": WARMUP,
            "max_grad_norm": CLIP,
            "batch_type": "tokens",
            "batch_size": BATCH_TOKENS,
            "valid_batch_size": BATCH_TOKENS,
            "normalization": "tokens",
            "accum_count": [1],
            "param_init": PARAM_INIT,
        }

    def train_cmd(self) -> list[str]:
        cfg = self.dir / "config.yaml"
        write_yaml(cfg, self.config())
        return [str(VENVS / "onmt" / "bin" / "onmt_train"), "-config", str(cfg)]

    def run_train(self, cmd: list[str]) -> Proc:
        # No time limit in OpenNMT-py: SIGTERM at the budget, then decode the newest
        # complete checkpoint (one every --save-every steps).
        return run_measured(
            cmd, self.dir / "train.log", self.env, budget_s=self.args.minutes * 60
        )

    def parse_train_log(self, path: Path) -> None:
        text = path.read_text(errors="replace")
        # "%3.0f/%3.0f tok/s" is src/tgt: take the second number
        rates = [
            float(m.group(1))
            for m in re.finditer(r"Step\s+\d+/\s*\d+;.*?\d+/\s*(\d+) tok/s", text)
        ]
        steps = re.findall(r"Step\s+(\d+)/", text)
        self.res.tok_s = median_rate(rates)
        self.res.steps = int(steps[-1]) if steps else None
        m = re.search(r"number of parameters: (\d+)", text)
        self.res.params = int(m.group(1)) if m else None

    def checkpoint(self) -> Path:
        if getattr(self, "ckpt", None):
            return self.ckpt
        ckpts = sorted(
            self.dir.glob("model_step_*.pt"),
            key=lambda p: int(re.search(r"_(\d+)\.pt$", p.name).group(1)),
        )
        for c in reversed(ckpts):
            if zipfile.is_zipfile(c):  # a write cut by the kill is not a zip yet
                step = int(re.search(r"_(\d+)\.pt$", c.name).group(1))
                # the log shows every --log-every steps, the checkpoint every
                # --save-every: steps = the checkpoint decoded
                if self.res.steps and self.res.steps > step:
                    self.res.notes.append(
                        f"OpenNMT-py: logged step {self.res.steps}, decoded the "
                        f"newest checkpoint, step {step}"
                    )
                self.res.steps = step
                self.ckpt = c
                return c
        raise SystemExit(
            f"no OpenNMT-py checkpoint in {self.dir}: budget shorter than "
            f"--save-every {self.args.save_every} steps?"
        )

    def decode_cmd(self, src_pieces: Path, hyp: Path):
        cmd = [
            str(VENVS / "onmt" / "bin" / "onmt_translate"),
            "-model", str(self.checkpoint()), "-src", str(src_pieces),
            "-output", str(hyp), "-beam_size", str(BEAM),
            "-length_penalty", "wu", "-alpha", str(LENPEN),
            "-batch_type", "tokens", "-batch_size", str(DECODE_BATCH_TOKENS),
            "-gpu", "-1", "-seed", "1",
        ]  # fmt: skip
        return cmd, None


class Joey(Toolkit):
    name = "joey"

    def config(self, load_model: Path | None = None) -> dict:
        a, p, d = self.args, self.pieces, self.dir
        side = {
            "level": "word",  # the files hold space-separated SentencePiece pieces
            "lowercase": False,
            "normalize": False,
            "max_length": MAX_LEN,
            "min_length": 1,
            "voc_file": str(p / "vocab.txt"),
        }
        cfg = {
            "name": "joey-rnn",
            "joeynmt_version": "2.3.0",
            "model_dir": str(d / "model"),
            "use_cuda": False,
            "fp16": False,
            "random_seed": 1,
            "data": {
                "train": str(p / "train"),
                "dev": str(p / "valid"),
                "test": str(p / "test"),
                "dataset_type": "plain",
                "sample_dev_subset": 500,
                "src": {"lang": a.src, **side},
                "trg": {"lang": a.tgt, **side},
            },
            "training": {
                "optimizer": "adam",
                "adam_betas": [0.9, BETA2],
                "learning_rate": LR,
                "learning_rate_min": 1e-5,
                "scheduling": "warmupinversesquareroot",
                "learning_rate_warmup": WARMUP,
                "loss": "crossentropy",
                "label_smoothing": LABEL_SMOOTHING,
                "clip_grad_norm": CLIP,
                "batch_size": BATCH_TOKENS,
                "batch_type": "token",
                "batch_multiplier": 1,
                "normalization": "tokens",
                "epochs": 100000,
                "validation_freq": a.valid_every,
                "logging_freq": a.log_every,
                "eval_metrics": ["bleu"],
                "early_stopping_metric": "ppl",
                "keep_best_ckpts": 1,
                "shuffle": True,
                "overwrite": True,
                "print_valid_sents": [],
                "num_workers": 0,
            },
            "testing": {
                "n_best": 1,
                "beam_size": BEAM,
                "beam_alpha": LENPEN,
                "batch_size": DECODE_BATCH_TOKENS,
                "batch_type": "token",
                "eval_metrics": ["bleu"],
                "num_workers": 0,
            },
            "model": {
                "initializer": "xavier_uniform",
                "embed_initializer": "xavier_uniform",
                "bias_initializer": "zeros",
                "tied_embeddings": False,
                "tied_softmax": False,
                "encoder": {
                    "type": "recurrent",
                    "rnn_type": "lstm",
                    "embeddings": {
                        "embedding_dim": EMB,
                        "scale": False,
                        "dropout": DROPOUT,
                    },
                    "hidden_size": ENC_HIDDEN,
                    "bidirectional": True,
                    "num_layers": ENC_LAYERS,
                    "dropout": DROPOUT,
                },
                "decoder": {
                    "type": "recurrent",
                    "rnn_type": "lstm",
                    "embeddings": {
                        "embedding_dim": EMB,
                        "scale": False,
                        "dropout": DROPOUT,
                    },
                    "hidden_size": DEC_HIDDEN,
                    "num_layers": DEC_LAYERS,
                    "dropout": DROPOUT,
                    "hidden_dropout": DROPOUT,
                    "input_feeding": True,
                    "init_hidden": "bridge",
                    "attention": "luong",
                },
            },
        }
        if load_model is not None:
            cfg["testing"]["load_model"] = str(load_model)
        return cfg

    def joey(self) -> list[str]:
        return [str(VENVS / "joey" / "bin" / "python"), "-m", "joeynmt"]

    def train_cmd(self) -> list[str]:
        cfg = self.dir / "config.yaml"
        write_yaml(cfg, self.config())
        return self.joey() + ["train", str(cfg), "--skip-test"]

    def run_train(self, cmd: list[str]) -> Proc:
        # No time limit in JoeyNMT: SIGINT at the budget; Joey catches the
        # KeyboardInterrupt and saves the current weights (latest.ckpt).
        return run_measured(
            cmd,
            self.dir / "train.log",
            self.env,
            budget_s=self.args.minutes * 60,
            stop_signal=signal.SIGINT,
        )

    def parse_train_log(self, path: Path) -> None:
        text = path.read_text(errors="replace")
        rates = [float(x) for x in re.findall(r"Tokens per Sec:\s*(\d+)", text)]
        steps = re.findall(r"Step:\s*(\d+)", text) + re.findall(
            r"Interrupt at epoch \d+, step (\d+)", text
        )
        self.res.tok_s = median_rate(rates)
        self.res.steps = max(int(s) for s in steps) if steps else None
        m = re.search(r"Total params: (\d+)", text)
        self.res.params = int(m.group(1)) if m else None

    def decode_cmd(self, src_pieces: Path, hyp: Path):
        ckpt = self.dir / "model" / "latest.ckpt"
        if not ckpt.exists():
            raise SystemExit(f"no JoeyNMT checkpoint {ckpt}")
        cfg = self.dir / "decode.yaml"
        write_yaml(cfg, self.config(load_model=ckpt))
        # translate mode reads stdin, prints one hypothesis a line
        # (--output-path fails in 2.3.0: `args.n_best`, an AttributeError; stdout
        # carries only the hypotheses, the log goes to stderr)
        cmd = self.joey() + ["translate", str(cfg)]
        return cmd, src_pieces


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
        f"Adam(0.9, {BETA2}), lr {LR} after {WARMUP} warm-up steps then 1/sqrt, "
        f"{BATCH_TOKENS}-token batches, label smoothing {LABEL_SMOOTHING}, clip {CLIP}",
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
    global BATCH_TOKENS, LR, WARMUP  # set from the options; every config reads them
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
        default=BATCH_TOKENS,
        help="training batch size in tokens (padding included), all toolkits",
    )
    ap.add_argument(
        "--lr", type=float, default=LR, help="peak learning rate, all toolkits"
    )
    ap.add_argument(
        "--warmup", type=int, default=WARMUP, help="linear warm-up steps, all toolkits"
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
    BATCH_TOKENS, LR, WARMUP = args.batch_tokens, args.lr, args.warmup
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
