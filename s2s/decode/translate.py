"""Translate lists of sentences: tokenize, batch by length, search, restore order.

A `Translator` is built from a checkpoint alone (model, config and vocabularies all
travel inside it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from s2s.config import DecodeConfig
from s2s.data.batching import longest_first
from s2s.data.vocab import EOS, PAD, Vocab
from s2s.decode.search import beam_search, greedy_search
from s2s.errors import S2SError
from s2s.memory import split_on_oom
from s2s.models.lm import LSTMLM
from s2s.models.seq2seq import Seq2Seq
from s2s.precision import autocast_for, for_decoding

__all__ = ["Translator"]


class Translator:
    def __init__(
        self,
        model: Seq2Seq,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        cfg: DecodeConfig,
        device: torch.device,
        precision: str = "fp32",
        lm: LSTMLM | None = None,
        lm_weight: float = 0.0,
        warn: Callable[[str], None] | None = None,
    ):
        """`warn`: how an input over `cfg.max_input_tokens` is handled. None: it is
        an error naming the line; a function: the input is cut to the limit (the
        rest of the file is still translated) and `warn` gets a message naming the
        line."""
        self.warn = warn
        self.model = for_decoding(model.to(device).eval(), device, precision)
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.cfg, self.device, self.precision = cfg, device, precision
        # Shallow fusion runs in beam search, also at beam 1 (greedy has no LM).
        self.lm = lm.to(device).eval() if lm is not None else None
        self.lm_weight = lm_weight

    def _batches(self, lengths: np.ndarray) -> Iterator[np.ndarray]:
        """Longest first, at most `batch_tokens` padded source tokens per batch."""
        yield from longest_first(lengths, self.cfg.batch_tokens)

    def translate(
        self, lines: list[str], first_line: int = 1, source: str = "<input>"
    ) -> list[list[tuple[str, float]]]:
        """Translate `lines`; each gets `nbest` (text, score) pairs, best first.

        Empty lines translate to an empty line. `first_line` and `source` only serve
        error messages about overlong inputs.
        """
        ids = [seq + [EOS] for seq in self.src_vocab.encode(lines)]
        limit = self.cfg.max_input_tokens
        for k, seq in enumerate(ids):
            if len(seq) > limit:
                msg = (
                    f"{source}:{first_line + k}: input is {len(seq)} tokens long, over "
                    f"decode.max_input_tokens={limit}"
                )
                if self.warn is None:
                    raise S2SError(msg)
                self.warn(f"{msg}; translating its first {limit - 1} tokens only")
                ids[k] = seq[: limit - 1] + [EOS]
        results: list[list[tuple[str, float]]] = [[("", 0.0)] for _ in lines]
        todo = np.array([k for k, line in enumerate(lines) if line], dtype=np.int64)
        if len(todo) == 0:
            return results
        lengths = np.array([len(ids[k]) for k in todo])
        amp = autocast_for(self.device, self.precision)
        for batch in self._batches(lengths):
            seqs = [ids[todo[b]] for b in batch]
            # Out of memory: halve the batch and retry, down to one sentence.
            hyps = split_on_oom(
                lambda part: self._search(part, amp),
                seqs,
                self.device,
                "lower decode.beam or decode.max_input_tokens, or decode on the CPU",
            )
            for b, nbest in zip(batch, hyps, strict=True):
                texts = self.tgt_vocab.decode([h[0] for h in nbest])
                results[todo[b]] = [
                    (t, h[1]) for t, h in zip(texts, nbest, strict=True)
                ]
        return results

    def _search(
        self, seqs: list[list[int]], amp
    ) -> list[list[tuple[list[int], float]]]:
        lens = torch.tensor([len(s) for s in seqs])
        src = torch.full((len(seqs), int(lens.max())), PAD, dtype=torch.long)
        for i, s in enumerate(seqs):
            src[i, : len(s)] = torch.tensor(s)
        max_len = (lens.float() * self.cfg.max_len_ratio).long() + self.cfg.max_len_a
        src = src.to(self.device)
        with amp:
            if self.cfg.beam == 1 and self.lm is None:
                return [[h] for h in greedy_search(self.model, src, lens, max_len)]
            return beam_search(
                self.model,
                src,
                lens,
                max_len,
                beam=self.cfg.beam,
                lenpen=self.cfg.lenpen,
                nbest=self.cfg.nbest,
                lm=self.lm,
                lm_weight=self.lm_weight,
            )

    def translate_stream(
        self, lines: Iterable[str], block: int = 2000, source: str = "<input>"
    ) -> Iterator[list[tuple[str, float]]]:
        """Translate an iterable in blocks, yielding results in input order."""
        buf: list[str] = []
        first = 1
        for line in lines:
            buf.append(line)
            if len(buf) == block:
                yield from self.translate(buf, first, source)
                first += len(buf)
                buf = []
        if buf:
            yield from self.translate(buf, first, source)
