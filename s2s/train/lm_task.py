"""The language-model task: truncated BPTT over a continuous token stream.

The training stream is cut into R = batch_tokens // bptt rows read side by side
(`s2s.data.stream`); batch i is segment i of every row. The LSTM state at the end of
a batch is detached and carried into the next one, so the model sees context
beyond a segment while gradients stop at its border. The state is reset at the
start of every epoch, and it travels in `last.pt` (`state_dict`) so that a resumed
run continues every row exactly where it stopped.

Under torchrun the rows, not the segments, are split between ranks
(`shard_batch`): every rank runs every segment of its block of rows, in order, so
the state it carries is always that of the segment just before, and N ranks
together run the same (segment, row) grid as one process.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2s.config import Config
from s2s.config_sections import LM_BPTT
from s2s.data.stream import (
    MonoData,
    StreamBatch,
    segment_bounds,
    stream_batch,
    stream_rows,
    token_stream,
)
from s2s.data.vocab import BOS, PAD
from s2s.errors import S2SError
from s2s.models.lm import LSTMLM, LMState
from s2s.models.seq2seq import build_model, token_loss
from s2s.train.tasks import Backward

__all__ = ["LMTask", "stream_nll"]


class LMTask:
    def __init__(self, cfg: Config, data_dir: str | Path):
        self.cfg = cfg
        self.data = {s: MonoData(data_dir, s) for s in ("train", "valid")}
        if len(self.data["train"]) == 0:
            raise S2SError(f"{data_dir}: the training split is empty")
        self.vocab = self.data["train"].vocab()
        tc = cfg.train
        self.num_rows = max(1, tc.batch_tokens // (tc.bptt or LM_BPTT))
        self.rows = {
            split: stream_rows(token_stream(d.tokens), self.num_rows)
            for split, d in self.data.items()
        }  # (R, S + 1) each
        self._state: LMState | None = None  # carried from the previous batch

    def describe(self) -> str:
        train = self.data["train"]
        R, S = self.rows["train"].shape
        return (
            f"{len(train)} sentences, {int(train.tokens.lengths.sum())} tokens in "
            f"{R} streams of {S - 1}"
        )

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model, 0, len(self.vocab))

    def batches(
        self, split: str, seed: int = 0, epoch: int = 0, shuffle: bool = True
    ) -> list[np.ndarray]:
        """Batches `[a, b, lo, hi]`: columns [a, b) of rows [lo, hi), here all R
        rows. The order is the stream's own (the carried state needs it);
        `shuffle` only allows varied lengths."""
        tc = self.cfg.train
        R, S = self.rows[split].shape
        vary = tc.bptt_random and shuffle and split == "train"
        return [
            np.array([a, b, 0, R], dtype=np.int64)
            for a, b in segment_bounds(S - 1, tc.bptt or LM_BPTT, vary, seed, epoch)
        ]

    def shard_batch(self, ids: np.ndarray, rank: int, world: int) -> np.ndarray | None:
        """Under torchrun, `rank`'s part of batch `ids`: a contiguous block of the
        batch's rows (None if there are fewer rows than ranks and this one gets
        none). The trainer then has every rank run every batch rather than every
        world-th one, so each rank's carried state continues its own rows."""
        a, b, lo, hi = (int(x) for x in ids)
        n = hi - lo
        start, end = lo + n * rank // world, lo + n * (rank + 1) // world
        if start == end:
            return None
        return np.array([a, b, start, end], dtype=np.int64)

    def units(self, split: str, ids: np.ndarray) -> int:
        a, b, lo, hi = (int(x) for x in ids)
        seg = self.rows[split][lo:hi, a + 1 : b + 1]
        return int(np.count_nonzero((seg != PAD) & (seg != BOS)))

    def collate(self, split: str, ids: np.ndarray) -> StreamBatch:
        a, b, lo, hi = (int(x) for x in ids)
        return stream_batch(self.rows[split][lo:hi], np.array([a, b]))

    def forward_backward(
        self,
        model: nn.Module,
        batch: StreamBatch,
        scale: float,
        backward: Backward,
        autocast,
    ) -> tuple[float, dict[str, int]]:
        device = batch.inputs.device
        if batch.start == 0 or self._state is None:
            state = model.init_state(batch.inputs.size(0), device)
        else:
            state = tuple(s.to(device) for s in self._state)
        with autocast:
            logits, state = model(batch.inputs, state)  # (R, T, V)
            loss = token_loss(logits, batch.targets, self.cfg.model.label_smoothing)
        backward(loss * scale)
        value = float(loss.detach())
        # Detached: the next batch starts from these values, but its gradient stops
        # here (truncated BPTT). A non-finite loss may come from a non-finite state:
        # the trainer skips the step, and the next batch starts afresh rather than
        # carry it.
        finite = math.isfinite(value)
        self._state = (state[0].detach(), state[1].detach()) if finite else None
        return value, {}

    @torch.no_grad()
    def validate(
        self, model: nn.Module, device: torch.device, precision: str, autocast
    ) -> dict[str, float]:
        nll, ntok = stream_nll(
            model, self.rows["valid"], self.cfg.train.bptt or LM_BPTT, device, autocast
        )
        loss = nll / max(ntok, 1)
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50.0))}

    def checkpoint_extras(self) -> dict[str, Any]:
        meta = self.data["train"].meta
        return {
            "vocab": {"tgt": self.vocab.proto},
            "data_meta": {k: meta[k] for k in ("tgt", "task")},
        }

    def check_resume(self, ckpt: dict[str, Any], path: Path) -> None:
        if ckpt["vocab"].get("tgt") != self.vocab.proto:
            raise S2SError(
                f"{path} was trained with a different vocabulary than "
                f"{self.data['train'].directory}; resume with the same data"
            )

    def state_dict(self) -> dict[str, Any]:
        """The carried LSTM state, for `last.pt`."""
        if self._state is None:
            return {"hidden": None}
        return {"hidden": [s.cpu() for s in self._state]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        hidden = state.get("hidden")
        self._state = None if hidden is None else (hidden[0], hidden[1])


@torch.no_grad()
def stream_nll(
    model: LSTMLM,
    rows: np.ndarray,
    bptt: int,
    device: torch.device,
    autocast,
    carry: bool = True,
) -> tuple[float, int]:
    """Summed negative log-likelihood and target count of `rows` (R, S + 1), read
    in segments of `bptt` with the state carried (or reset, `carry=False`)."""
    nll, ntok = 0.0, 0
    state = model.init_state(rows.shape[0], device)
    for bounds in segment_bounds(rows.shape[1] - 1, bptt):
        b = stream_batch(rows, bounds).to(device)
        if not carry:
            state = model.init_state(rows.shape[0], device)
        with autocast:
            logits, state = model(b.inputs, state)
        nll += float(token_loss(logits, b.targets, 0.0))
        ntok += b.num_tokens
    return nll, ntok
