"""The translation task: text pairs, teacher-forced cross-entropy (whole or with
truncated BPTT), validation loss, perplexity and greedy BLEU/chrF."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2s.config import Config
from s2s.data.batching import Batch, ParallelData, collate, make_batches
from s2s.decode.translate import Translator
from s2s.errors import S2SError
from s2s.metrics import bleu_chrf
from s2s.models.seq2seq import build_model, token_loss
from s2s.train.tasks import Backward
from s2s.train.tbptt import forward_backward

__all__ = ["TranslationTask"]


class TranslationTask:
    def __init__(self, cfg: Config, data_dir: str | Path):
        self.cfg = cfg
        self.data = {s: ParallelData(data_dir, s) for s in ("train", "valid")}
        if len(self.data["train"]) == 0:
            raise S2SError(f"{data_dir}: the training split is empty")
        self.src_vocab, self.tgt_vocab = self.data["train"].vocabs()
        valid = self.data["valid"]
        raw = valid.directory / f"valid.raw.{valid.meta.get('src')}"
        ref = valid.directory / f"valid.ref.{valid.meta.get('tgt')}"
        if cfg.train.valid_bleu and ref.exists() and not raw.is_file():
            # Found now, not at the first validation hours later.
            raise S2SError(
                f"{raw}: missing (prep writes it beside {ref.name}); run `s2s prep "
                f"text` again, or set train.valid_bleu=false"
            )
        self.long_inputs: set[str] = set()  # validation lines already warned about

    def describe(self) -> str:
        return f"{len(self.data['train'])} pairs"

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model, len(self.src_vocab), len(self.tgt_vocab))

    def batches(
        self, split: str, seed: int = 0, epoch: int = 0, shuffle: bool = True
    ) -> list[np.ndarray]:
        data = self.data[split]
        return make_batches(
            data.src.lengths,
            data.tgt.lengths,
            self.cfg.train.batch_tokens,
            seed,
            epoch,
            shuffle,
        )

    def units(self, split: str, ids: np.ndarray) -> int:
        return int(self.data[split].tgt.lengths[ids].sum() + len(ids))  # with EOS

    def collate(self, split: str, ids: np.ndarray) -> Batch:
        return collate(self.data[split], ids)

    def forward_backward(
        self, model: nn.Module, batch: Batch, scale: float, backward: Backward, autocast
    ) -> tuple[float, dict[str, int]]:
        loss = forward_backward(
            model,
            batch.src,
            batch.src_lens,
            batch.tgt_in,
            batch.tgt_out,
            scale=scale,
            tbptt_steps=self.cfg.train.bptt,
            backward=backward,
            autocast=autocast,
        )
        return loss, {}

    @torch.no_grad()
    def validate(
        self, model: nn.Module, device: torch.device, precision: str, autocast
    ) -> dict[str, float]:
        data, tc = self.data["valid"], self.cfg.train
        nll, ntok = 0.0, 0
        for ids in self.batches("valid", shuffle=False):
            b = collate(data, ids).to(device)
            with autocast:
                logits = model(b.src, b.src_lens, b.tgt_in)
            nll += float(token_loss(logits, b.tgt_out, 0.0))
            ntok += b.num_tokens
        result = {"valid_loss": nll / max(ntok, 1)}
        result["valid_ppl"] = math.exp(min(result["valid_loss"], 50.0))
        refs = data.references()
        if tc.valid_bleu and refs:
            n = tc.decoded(len(refs))
            raw = data.directory / f"valid.raw.{data.meta['src']}"
            srcs = raw.read_text(encoding="utf-8").splitlines()[:n]
            dcfg = type(self.cfg.decode)(
                **{**asdict(self.cfg.decode), "beam": 1, "nbest": 1}
            )
            # Prep keeps held-out lines whole: one over decode.max_input_tokens is
            # cut (warned about once), never a reason to stop training.
            tr = Translator(
                model,
                self.src_vocab,
                self.tgt_vocab,
                dcfg,
                device,
                precision,
                warn=self._warn_long,
            )
            hyps = [h[0][0] for h in tr.translate(srcs, source=str(raw))]
            scores = bleu_chrf(hyps, refs[:n])
            result["valid_bleu"], result["valid_chrf"] = scores.bleu, scores.chrf
        return result

    def _warn_long(self, message: str) -> None:
        if message not in self.long_inputs and sys.stderr is not None:
            self.long_inputs.add(message)
            print(f"warning: {message}", file=sys.stderr)

    def checkpoint_extras(self) -> dict[str, Any]:
        meta = self.data["train"].meta
        return {
            "vocab": {"src": self.src_vocab.proto, "tgt": self.tgt_vocab.proto},
            "data_meta": {k: meta[k] for k in ("src", "tgt", "task")},
        }

    def check_resume(self, ckpt: dict[str, Any], path: Path) -> None:
        for side, vocab in (("src", self.src_vocab), ("tgt", self.tgt_vocab)):
            if ckpt["vocab"].get(side) != vocab.proto:
                raise S2SError(
                    f"{path} was trained with a different {side} vocabulary than "
                    f"{self.data['train'].directory}; resume with the same data"
                )
