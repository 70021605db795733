"""OpenNMT-py and JoeyNMT as toolkits of the side-by-side (`run.py`)."""

from __future__ import annotations

import re
import signal
import zipfile
from pathlib import Path

import peer_common as common  # noqa: E402 (run.py's options set some)
from peer_common import (  # noqa: E402
    BEAM,
    BETA2,
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
    MAX_LEN,
    PARAM_INIT,
    VENVS,
    Proc,
    median_rate,
    run_measured,
    write_yaml,
)
from toolkits import Toolkit


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
            "learning_rate": common.LR * (DEC_HIDDEN * common.WARMUP) ** 0.5,
            "warmup_steps": common.WARMUP,
            "max_grad_norm": CLIP,
            "batch_type": "tokens",
            "batch_size": common.BATCH_TOKENS,
            "valid_batch_size": common.BATCH_TOKENS,
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
                "learning_rate": common.LR,
                "learning_rate_min": 1e-5,
                "scheduling": "warmupinversesquareroot",
                "learning_rate_warmup": common.WARMUP,
                "loss": "crossentropy",
                "label_smoothing": LABEL_SMOOTHING,
                "clip_grad_norm": CLIP,
                "batch_size": common.BATCH_TOKENS,
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
