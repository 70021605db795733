"""The CTC speech recognition task: log-mel features in, token ids out; the loss is
summed CTC over target tokens, utterances that CTC cannot align are counted
(`inf_losses`), and validation reports greedy WER and CER."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2s.config import Config
from s2s.data.batching import make_batches
from s2s.data.speech import Noise, SpeechBatch, SpeechData, collate_speech
from s2s.decode.ctc import ctc_greedy
from s2s.errors import S2SError
from s2s.metrics import wer_cer
from s2s.models.ctc import ctc_loss
from s2s.models.seq2seq import build_model
from s2s.train.tasks import Backward

__all__ = ["CTCTask"]


class CTCTask:
    def __init__(self, cfg: Config, data_dir: str | Path):
        self.cfg = cfg
        self.data = {s: SpeechData(data_dir, s) for s in ("train", "valid")}
        train = self.data["train"]
        if len(train) == 0:
            raise S2SError(f"{data_dir}: the training split is empty")
        if train.features.num_mels != cfg.model.num_mels:
            raise S2SError(
                f"{data_dir} has {train.features.num_mels} mel bins per frame but "
                f"model.num_mels={cfg.model.num_mels}; set "
                f"model.num_mels={train.features.num_mels}"
            )
        self.vocab = train.vocab()

    def describe(self) -> str:
        train = self.data["train"]
        return f"{len(train)} utterances ({train.seconds() / 60:.1f} min)"

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model, 0, len(self.vocab))

    def batches(
        self, split: str, seed: int = 0, epoch: int = 0, shuffle: bool = True
    ) -> list[np.ndarray]:
        data = self.data[split]
        return make_batches(
            data.feats.lengths,  # frames: what the batch budget counts
            data.tgt.lengths,
            self.cfg.train.batch_tokens,
            seed,
            epoch,
            shuffle,
            sort_by="src",
        )

    def units(self, split: str, ids: np.ndarray) -> int:
        return max(1, int(self.data[split].tgt.lengths[ids].sum()))

    def collate(self, split: str, ids: np.ndarray) -> SpeechBatch:
        m = self.cfg.model
        noise = None
        if split == "train" and m.noise_prob > 0:
            noise = Noise(m.noise_prob, m.noise_snr_min, m.noise_snr_max)
        return collate_speech(self.data[split], ids, noise)

    def forward_backward(
        self,
        model: nn.Module,
        batch: SpeechBatch,
        scale: float,
        backward: Backward,
        autocast,
    ) -> tuple[float, dict[str, int]]:
        with autocast:
            loss, num_inf = model.loss(
                batch.feats, batch.feat_lens, batch.targets, batch.target_lens
            )
        backward(loss * scale)
        return float(loss.detach()), {"inf_losses": int(num_inf)}

    @torch.no_grad()
    def validate(
        self, model: nn.Module, device: torch.device, precision: str, autocast
    ) -> dict[str, float]:
        data, tc = self.data["valid"], self.cfg.train
        n_decode = tc.decoded(len(data)) if tc.valid_bleu else 0
        loss_sum, units, num_inf = 0.0, 0, 0
        hyps: dict[int, list[int]] = {}
        for ids in self.batches("valid", shuffle=False):
            b = collate_speech(data, ids).to(device)
            with autocast:
                log_probs, lengths = model(b.feats, b.feat_lens)  # (B, T', V)
            loss, inf = ctc_loss(
                log_probs, lengths, b.targets, b.target_lens, model.blank
            )
            loss_sum += float(loss)
            num_inf += int(inf)
            units += int(b.target_lens.sum())
            best = ctc_greedy(log_probs, lengths, model.blank)
            hyps.update((int(i), h) for i, h in zip(ids, best, strict=True))
        result = {"valid_loss": loss_sum / max(units, 1), "valid_inf": num_inf}
        if n_decode:
            texts = self.vocab.decode([hyps[i] for i in range(n_decode)])
            wer, cer = wer_cer(texts, data.references()[:n_decode])
            result["valid_wer"], result["valid_cer"] = wer.rate, cer.rate
        return result

    def checkpoint_extras(self) -> dict[str, Any]:
        train = self.data["train"]
        return {
            "vocab": {"tgt": self.vocab.proto},
            "data_meta": {"task": "speech"},
            "features": train.features.to_dict(),
            "cmvn": train.cmvn.to_dict(),
        }

    def check_resume(self, ckpt: dict[str, Any], path: Path) -> None:
        mine = self.checkpoint_extras()
        for key, what in (
            ("vocab", "vocabulary"),
            ("features", "feature settings"),
            ("cmvn", "feature statistics (CMVN)"),
        ):
            if ckpt.get(key) != mine[key]:
                raise S2SError(
                    f"{path} was trained with different {what} than "
                    f"{self.data['train'].directory}; resume with the same data"
                )
