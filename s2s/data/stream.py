"""Monolingual data as one continuous token stream, cut for truncated BPTT.

The sentences of a split are joined as `BOS s1 EOS BOS s2 EOS ...` and the stream is
cut into R equal rows that are read side by side: batch i is segment i of every row,
so row r of batch i + 1 continues row r of batch i and the LM's hidden state can be
carried from one batch to the next. The segment boundaries of an epoch are a pure
function of (length, bptt, seed, epoch), so a run resumes exactly from a batch index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from s2s.data.binarized import TokenArray, check_count, read_meta
from s2s.data.vocab import BOS, EOS, PAD, Vocab
from s2s.errors import S2SError

__all__ = [
    "MonoData",
    "StreamBatch",
    "token_stream",
    "stream_rows",
    "segment_bounds",
    "stream_batch",
]


class MonoData:
    """One split of a monolingual `s2s prep text` directory, memory-mapped."""

    def __init__(self, directory: str | Path, split: str):
        self.directory = Path(directory)
        self.meta = read_meta(self.directory)
        if split not in self.meta["shards"]:
            raise S2SError(f"{self.directory}: has no {split!r} split")
        shards = self.meta["shards"][split]["tgt"]
        self.tokens = TokenArray(self.directory, shards, self.meta["dtype"])
        check_count(self.meta, self.directory, split, len(self.tokens))
        self.split = split

    def __len__(self) -> int:
        return len(self.tokens)

    def vocab(self) -> Vocab:
        return Vocab.load(self.directory / self.meta["vocab"]["tgt"])


def token_stream(tokens: TokenArray) -> np.ndarray:
    """All sentences as one array `BOS s1 EOS BOS s2 EOS ...` (int32)."""
    parts = []
    for data, offsets in zip(tokens.data, tokens.offsets, strict=True):
        n = len(offsets) - 1
        lengths = np.diff(offsets)
        out = np.empty(len(data) + 2 * n, dtype=np.int32)
        # Token j of the shard (in sentence k) lands after 2k + 1 markers.
        sentence = np.repeat(np.arange(n), lengths)
        out[np.arange(len(data)) + 2 * sentence + 1] = data
        out[offsets[:-1] + 2 * np.arange(n)] = BOS
        out[offsets[1:] + 2 * np.arange(n) + 1] = EOS
        parts.append(out)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def stream_rows(stream: np.ndarray, rows: int) -> np.ndarray:
    """(R, S + 1): row r is stream[r * S : r * S + S + 1], PAD past the end.

    Neighbouring rows share one token (the last of row r is the first of row r + 1),
    so every token but the very first is a prediction target exactly once.
    """
    S = max(1, math.ceil((len(stream) - 1) / rows))
    padded = np.full(rows * S + 1, PAD, dtype=stream.dtype)
    padded[: len(stream)] = stream
    index = np.arange(rows)[:, None] * S + np.arange(S + 1)  # (R, S + 1)
    return padded[index]


def segment_bounds(
    length: int, bptt: int, vary: bool = False, seed: int = 0, epoch: int = 0
) -> list[np.ndarray]:
    """Segments `[a, b]` (start, end) covering input positions [0, length).

    Fixed: `bptt` each. Varied (AWD-LSTM, Merity et al. 2018): each segment is
    bptt long, or bptt / 2 with probability 0.05, plus normal jitter (sd 5), clipped
    to [2, 2 * bptt]; drawn from (seed, epoch) so that resuming can rebuild them.
    """
    rng = np.random.default_rng([seed, epoch, 2])
    out, a = [], 0
    while a < length:
        n = bptt
        if vary:
            base = bptt if rng.random() >= 0.05 else bptt / 2
            n = int(np.clip(round(rng.normal(base, 5.0)), 2, 2 * bptt))
        b = min(a + n, length)
        out.append(np.array([a, b], dtype=np.int64))
        a = b
    return out


@dataclass
class StreamBatch:
    inputs: torch.Tensor  # (R, T) tokens
    targets: torch.Tensor  # (R, T) next tokens; PAD where nothing is predicted
    start: int  # input position of column 0: 0 starts the rows (a fresh state)

    @property
    def num_tokens(self) -> int:
        return int((self.targets != PAD).sum())

    def to(self, device: torch.device) -> StreamBatch:
        return StreamBatch(
            self.inputs.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.start,
        )


def stream_batch(rows: np.ndarray, bounds: np.ndarray) -> StreamBatch:
    """Columns [a, b) of `rows` (R, S + 1) as inputs, the next ones as targets.
    A sentence's BOS is not a target: it always follows EOS."""
    a, b = int(bounds[0]), int(bounds[1])
    inputs = torch.from_numpy(rows[:, a:b].astype(np.int64))  # (R, T)
    targets = torch.from_numpy(rows[:, a + 1 : b + 1].astype(np.int64))  # (R, T)
    targets = targets.masked_fill(targets == BOS, PAD)
    return StreamBatch(inputs, targets, a)
