"""The joint CTC/attention speech task: `CTCTask`'s data (features in, token ids
out), with a loss and validation for `SpeechJoint`.

Loss: ctc_weight * CTC + (1 - ctc_weight) * label-smoothed attention cross-entropy.
Both are summed negative log-likelihoods over the batch (CTC per utterance, the
attention one per token, EOS included), and the trainer divides their weighted sum by
one count, the target tokens plus one EOS per utterance (`units`): the weight means
the same at every batch size.

Validation: valid_loss is that weighted sum without label smoothing per unit,
valid_ctc and valid_att its two parts; valid_wer and valid_cer come from attention
greedy search (what train.select_by=wer uses), valid_ctc_wer and valid_ctc_cer from
CTC greedy search over the same encoder pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from s2s.data.speech import SpeechBatch, collate_speech
from s2s.decode.ctc import ctc_greedy
from s2s.decode.search import greedy_decode
from s2s.metrics import wer_cer
from s2s.models.ctc import ctc_loss
from s2s.models.decoder import output_loss
from s2s.models.speech import SpeechJoint, decoder_targets
from s2s.train.ctc_task import CTCTask
from s2s.train.tasks import Backward

__all__ = ["JointTask"]


class JointTask(CTCTask):
    def units(self, split: str, ids: np.ndarray) -> int:
        return int(self.data[split].tgt.lengths[ids].sum() + len(ids))  # with EOS

    def forward_backward(
        self,
        model: nn.Module,
        batch: SpeechBatch,
        scale: float,
        backward: Backward,
        autocast,
    ) -> tuple[float, dict[str, int]]:
        with autocast:
            loss = model.loss(
                batch.feats, batch.feat_lens, batch.targets, batch.target_lens
            )
        backward(loss.total * scale)
        return float(loss.total.detach()), {"inf_losses": int(loss.num_inf)}

    @torch.no_grad()
    def validate(
        self, model: SpeechJoint, device: torch.device, precision: str, autocast
    ) -> dict[str, float]:
        data, tc = self.data["valid"], self.cfg.train
        n_decode = tc.decoded(len(data)) if tc.valid_bleu else 0
        sums = {"ctc": 0.0, "att": 0.0}
        units, num_inf = 0, 0
        att_hyps: dict[int, list[int]] = {}
        ctc_hyps: dict[int, list[int]] = {}
        for ids in self.batches("valid", shuffle=False):
            b = collate_speech(data, ids).to(device)
            with autocast:
                log_probs, lengths, mem, state = model.encode_both(b.feats, b.feat_lens)
                tgt_in, tgt_out = decoder_targets(b.targets, b.target_lens)
                a, _ = model.decoder(tgt_in, state, mem)
                sums["att"] += float(output_loss(model.decoder, a, tgt_out, 0.0))
            ctc, inf = ctc_loss(
                log_probs, lengths, b.targets, b.target_lens, model.blank
            )
            sums["ctc"] += float(ctc)
            num_inf += int(inf)
            units += int(b.target_lens.sum()) + len(ids)
            if int(ids.min()) < n_decode:
                ctc_best = ctc_greedy(log_probs, lengths, model.blank)
                ctc_hyps.update((int(i), h) for i, h in zip(ids, ctc_best, strict=True))
                with autocast:  # at most one token per encoder frame
                    att_best = greedy_decode(model.decoder, mem, state, lengths)
                att_hyps.update(
                    (int(i), h[0]) for i, h in zip(ids, att_best, strict=True)
                )
        w = model.ctc_weight
        result: dict[str, Any] = {
            "valid_loss": (w * sums["ctc"] + (1 - w) * sums["att"]) / max(units, 1),
            "valid_ctc": sums["ctc"] / max(units, 1),
            "valid_att": sums["att"] / max(units, 1),
            "valid_inf": num_inf,
        }
        if n_decode:
            refs = data.references()[:n_decode]
            for name, hyps in (("", att_hyps), ("_ctc", ctc_hyps)):
                texts = self.vocab.decode([hyps[i] for i in range(n_decode)])
                wer, cer = wer_cer([" ".join(t.split()) for t in texts], refs)
                result[f"valid{name}_wer"] = wer.rate
                result[f"valid{name}_cer"] = cer.rate
        return result
