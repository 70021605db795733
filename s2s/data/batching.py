"""Parallel datasets and token-count batching with length bucketing.

The batch list of an epoch is a pure function of (lengths, batch_tokens, seed, epoch),
so a run resumes exactly from (epoch, batch index) without saving the list itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from s2s.data.binarized import (
    TokenArray,
    check_count,
    check_vocab_size,
    read_meta,
)
from s2s.data.vocab import BOS, EOS, PAD, Vocab
from s2s.errors import S2SError

__all__ = ["Batch", "ParallelData", "make_batches", "collate", "longest_first"]


def longest_first(sizes, budget: float) -> list[np.ndarray]:
    """Decoding's batches: indices of `sizes` (N,) longest first (ties in input
    order), a batch of max(1, budget // longest) items, `longest` the size of its
    first (at least 1), so no batch pads past `budget` units unless one item does."""
    sizes = np.asarray(sizes, dtype=np.float64)
    order = np.argsort(-sizes, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = max(1, int(budget // max(sizes[order[start]], 1.0)))
        batches.append(order[start : start + size])
        start += size
    return batches


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) source ids, EOS-terminated, PAD-padded
    src_lens: torch.Tensor  # (B,) on the CPU (packing needs host lengths)
    tgt_in: torch.Tensor  # (B, T) BOS y1 .. yn, padded
    tgt_out: torch.Tensor  # (B, T) y1 .. yn EOS, padded
    ids: np.ndarray  # (B,) dataset indices

    @property
    def num_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.src.to(device, non_blocking=True),
            self.src_lens,
            self.tgt_in.to(device, non_blocking=True),
            self.tgt_out.to(device, non_blocking=True),
            self.ids,
        )


class ParallelData:
    """One split of a `s2s prep text` directory, memory-mapped."""

    def __init__(self, directory: str | Path, split: str):
        self.directory = Path(directory)
        self.meta = read_meta(self.directory)
        if split not in self.meta["shards"]:
            raise S2SError(f"{self.directory}: has no {split!r} split")
        shards = self.meta["shards"][split]
        self.src = TokenArray(self.directory, shards["src"], self.meta["dtype"])
        self.tgt = TokenArray(self.directory, shards["tgt"], self.meta["dtype"])
        if len(self.src) != len(self.tgt):
            raise S2SError(f"{self.directory}: {split} source and target counts differ")
        check_count(self.meta, self.directory, split, len(self.src))
        self.split = split

    def __len__(self) -> int:
        return len(self.src)

    def vocabs(self) -> tuple[Vocab, Vocab]:
        files = self.meta["vocab"]
        src = Vocab.load(self.directory / files["src"])
        tgt = (
            src
            if files["tgt"] == files["src"]
            else Vocab.load(self.directory / files["tgt"])
        )
        check_vocab_size(self.meta, self.directory, {"src": src, "tgt": tgt})
        return src, tgt

    def references(self) -> list[str] | None:
        """The raw target text of a held-out split, if prep kept it."""
        path = self.directory / f"{self.split}.ref.{self.meta['tgt']}"
        if not path.exists():
            return None
        return path.read_text(encoding="utf-8").splitlines()


def make_batches(
    src_lens: np.ndarray,
    tgt_lens: np.ndarray,
    batch_tokens: int,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    sort_by: str = "size",
) -> list[np.ndarray]:
    """Group sentence indices into batches of at most `batch_tokens` padded tokens.

    A batch costs its size times the longest of its pairs' sizes, a pair's size
    being max(source, target + 1). Sentences are sorted by that size, then by
    target and source length, with a seeded random tie-break, so each batch holds
    similar lengths on both sides: fewer padded steps and fuller batches than
    sorting by one side (`benchmarks/batch_packing.py` prints both for a data
    directory).

    `sort_by="tgt"` or `"src"` sorts by that side's length first (speech: the
    frames are the cost, and sorting by transcript length left 27% of the frames in
    a batch padding). The batch order is then shuffled. A sentence longer than
    `batch_tokens` gets a batch of its own.
    """
    if sort_by not in ("size", "src", "tgt"):
        raise ValueError(f"sort_by must be 'size', 'src' or 'tgt', got {sort_by!r}")
    n = len(src_lens)
    # +1: the target gains BOS (input) / EOS (output) when collated.
    size = np.maximum(src_lens, tgt_lens + 1)
    # np.lexsort sorts by its last key first.
    keys = {
        "size": (src_lens, tgt_lens, size),
        "tgt": (src_lens, tgt_lens),
        "src": (tgt_lens, src_lens),
    }[sort_by]
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        tie = rng.permutation(n)
        order = np.lexsort((tie, *keys))
    else:
        order = np.lexsort(keys)
    batches, start, longest = [], 0, 0
    for i, idx in enumerate(order):
        longest_if = max(longest, int(size[idx]))
        if i > start and longest_if * (i - start + 1) > batch_tokens:
            batches.append(order[start:i])
            start, longest_if = i, int(size[idx])
        longest = longest_if
    if start < n:
        batches.append(order[start:])
    if shuffle:
        perm = np.random.default_rng([seed, epoch, 1]).permutation(len(batches))
        batches = [batches[j] for j in perm]
    return batches


def _pad(seqs: list[np.ndarray], value: int) -> torch.Tensor:
    out = np.full((len(seqs), max(len(s) for s in seqs)), value, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.from_numpy(out)


def collate(data: ParallelData, ids: np.ndarray) -> Batch:
    srcs = [data.src[int(i)] for i in ids]
    tgts = [data.tgt[int(i)] for i in ids]
    bos, eos = np.array([BOS]), np.array([EOS])
    return Batch(
        src=_pad(srcs, PAD),
        src_lens=torch.tensor([len(s) for s in srcs], dtype=torch.int64),
        tgt_in=_pad([np.concatenate([bos, t]) for t in tgts], PAD),
        tgt_out=_pad([np.concatenate([t, eos]) for t in tgts], PAD),
        ids=np.asarray(ids),
    )
