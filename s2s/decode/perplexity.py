"""`s2s score ppl`: the perplexity of a language model on a plain text file.

The text is tokenized with the SentencePiece model inside the LM checkpoint. Each
line is one sentence `w1 .. wn` scored as `BOS w1 .. wn EOS`: every piece and EOS
count as tokens. Two ways to read the file:

- per sentence (default): every line starts from a zero state, as in shallow
  fusion, where the LM scores one hypothesis at a time;
- stream: the lines are joined into one stream and the state is carried from line
  to line, as in training and validation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch

from s2s.config_sections import LM_BPTT
from s2s.data.batching import longest_first
from s2s.data.text import iter_lines
from s2s.data.vocab import BOS, EOS, PAD, UNK
from s2s.errors import S2SError
from s2s.models.lm import LSTMLM, LMState
from s2s.models.seq2seq import token_loss

__all__ = ["Perplexity", "perplexity_file", "sentences_nll"]

_BLOCK = 2000  # lines read and scored at a time: memory stays bounded


@dataclass
class Perplexity:
    nll: float = 0.0  # summed negative log-likelihood (nats)
    tokens: int = 0  # scored tokens, EOS included
    lines: int = 0  # sentences scored
    empty: int = 0  # empty lines skipped
    unk: int = 0  # pieces the vocabulary does not know

    @property
    def ppl(self) -> float:
        return math.exp(min(self.nll / max(self.tokens, 1), 700.0))


@torch.no_grad()
def sentences_nll(
    lm: LSTMLM, seqs: list[list[int]], device: torch.device, batch_tokens: int
) -> float:
    """Summed NLL of `BOS s EOS` over sentences `seqs`, each from a zero state."""
    nll = 0.0
    for group in longest_first([len(s) + 1 for s in seqs], batch_tokens):
        longest = len(seqs[group[0]]) + 1
        inputs = torch.full((len(group), longest), PAD, dtype=torch.long)
        targets = torch.full((len(group), longest), PAD, dtype=torch.long)
        for row, k in enumerate(group):
            s = torch.tensor(seqs[k], dtype=torch.long)
            inputs[row, : len(s) + 1] = torch.cat([torch.tensor([BOS]), s])
            targets[row, : len(s) + 1] = torch.cat([s, torch.tensor([EOS])])
        state = lm.init_state(len(group), device)
        logits, _ = lm(inputs.to(device), state)  # (B, T, V)
        nll += float(token_loss(logits, targets.to(device), 0.0))
    return nll


class _Stream:
    """Scores consecutive blocks of one stream `BOS s1 EOS BOS s2 EOS ...`,
    carrying the LM state and the last token from block to block."""

    def __init__(self, lm: LSTMLM, device: torch.device, segment: int):
        self.lm, self.device, self.segment = lm, device, segment
        self.state: LMState = lm.init_state(1, device)
        self.last: int | None = None

    @torch.no_grad()
    def __call__(self, seqs: list[list[int]]) -> float:
        block = [t for s in seqs for t in (BOS, *s, EOS)]
        tokens = torch.tensor(([] if self.last is None else [self.last]) + block)
        self.last = block[-1]
        nll = 0.0
        for a in range(0, len(tokens) - 1, self.segment):
            chunk = tokens[a : a + self.segment + 1].to(self.device)
            targets = chunk[1:].masked_fill(chunk[1:] == BOS, PAD)  # BOS follows EOS
            logits, self.state = self.lm(chunk[None, :-1], self.state)  # (1, T, V)
            nll += float(token_loss(logits, targets[None], 0.0))
        return nll


def _blocks(lines: Iterator[str], result: Perplexity) -> Iterator[list[str]]:
    """Non-empty lines in blocks; empty ones are counted in `result.empty`."""

    def non_empty() -> Iterator[str]:
        for line in lines:
            if line:
                yield line
            else:
                result.empty += 1

    it = non_empty()
    while block := list(islice(it, _BLOCK)):
        yield block


def perplexity_file(
    checkpoint: str | Path,
    input: str,
    stream: bool = False,
    batch_tokens: int = 4000,
    device: str = "auto",
    threads: int = 0,
) -> Perplexity:
    """Perplexity of the LM in `checkpoint` on the lines of `input` (`-`: stdin)."""
    from rich.console import Console
    from rich.progress import Progress

    from s2s.checkpoint import load_lm_model
    from s2s.config import check_option
    from s2s.device import pick_device

    check_option("train.device", device, "--device")
    check_option("train.threads", threads, "--threads")
    check_option("decode.batch_tokens", batch_tokens, "--batch-tokens")
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    lm, cfg, vocab = load_lm_model(checkpoint, dev, command="s2s score ppl")
    total = None
    if input != "-":
        try:
            with open(input, "rb") as f:
                total = sum(1 for _ in f)
        except OSError as e:
            raise S2SError(f"{input}: cannot open: {e.strerror}") from None
    result = Perplexity()
    scorer = _Stream(lm, dev, max(cfg.train.bptt or LM_BPTT, 256)) if stream else None
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scoring", total=total)
        for block in _blocks(iter_lines(input), result):
            seqs = vocab.encode(block)
            if scorer is not None:
                result.nll += scorer(seqs)
            else:
                result.nll += sentences_nll(lm, seqs, dev, batch_tokens)
            result.lines += len(seqs)
            result.tokens += sum(len(s) + 1 for s in seqs)
            result.unk += sum(s.count(UNK) for s in seqs)
            progress.update(task, completed=result.lines + result.empty)
    if result.tokens == 0:
        name = "<stdin>" if input == "-" else input
        raise S2SError(f"{name}: no text to score (empty input)")
    return result
