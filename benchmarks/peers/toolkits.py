"""The toolkits of the side-by-side (`run.py`): how each is set up, trained and
decoded. s2s here; OpenNMT-py and JoeyNMT in `peer_toolkits.py`."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import peer_common as common  # noqa: E402 (run.py's options set some)
from peer_common import (  # noqa: E402
    BEAM,
    CLIP,
    DEC_HIDDEN,
    DEC_LAYERS,
    DECODE_BATCH_TOKENS,
    DROPOUT,
    EMB,
    ENC_HIDDEN,
    ENC_LAYERS,
    LABEL_SMOOTHING,
    LENPEN,
    NAMES,
    PARAM_INIT,
    Proc,
    check,
    detokenize,
    log,
    median_rate,
    run_measured,
    s2s_cmd,
)


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
            "train.batch_tokens": common.BATCH_TOKENS,
            "train.lr": common.LR,
            "train.schedule": "inverse_sqrt",
            "train.warmup_steps": common.WARMUP,
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
