"""Translate lists of sentences with an exported model, as `s2s.decode.translate`
does: tokenize, batch by length (longest first, `batch_tokens` padded source tokens
a batch), search, restore the input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from s2s_runtime import RunError
from s2s_runtime.model import EOS, PAD, ExportedModel
from s2s_runtime.search import beam_search, greedy_decode

__all__ = ["Translator"]


class Translator:
    """`cfg` holds the decode settings (the manifest's, with overrides): beam,
    nbest, lenpen, max_len_ratio, max_len_a, batch_tokens, max_input_tokens.
    With `lm_weight` set, the exported LM is fused into beam search (also at
    beam 1), as `s2s translate --lm` does."""

    def __init__(
        self, model: ExportedModel, cfg: dict[str, Any], lm_weight: float | None = None
    ):
        if model.kind != "translation":
            raise RunError(
                f"{model.directory} holds a {model.kind} model; "
                "translate needs a translation model (use transcribe)"
            )
        self.model, self.cfg = model, cfg
        self.lm = None
        self.lm_weight = 0.0
        if lm_weight is not None:
            if model.lm is None:
                raise RunError(
                    f"--lm-weight needs an LM in {model.directory} "
                    "(export it with `s2s export ... --lm LM.pt`)"
                )
            self.lm, self.lm_weight = model.lm, lm_weight

    def _batches(self, lengths: np.ndarray) -> Iterator[np.ndarray]:
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            size = max(1, self.cfg["batch_tokens"] // max(longest, 1))
            yield order[start : start + size]
            start += size

    def translate(
        self, lines: list[str], first_line: int = 1, source: str = "<input>"
    ) -> list[list[tuple[str, float]]]:
        """Translate `lines`; each gets `nbest` (text, score) pairs, best first;
        empty lines stay empty."""
        vocab = self.model.src_vocab
        ids = [seq + [EOS] for seq in vocab.encode(lines)]
        for k, seq in enumerate(ids):
            if len(seq) > self.cfg["max_input_tokens"]:
                raise RunError(
                    f"{source}:{first_line + k}: input is {len(seq)} tokens long, over "
                    f"max_input_tokens={self.cfg['max_input_tokens']}"
                )
        results: list[list[tuple[str, float]]] = [[("", 0.0)] for _ in lines]
        todo = np.array([k for k, line in enumerate(lines) if line], dtype=np.int64)
        if len(todo) == 0:
            return results
        lengths = np.array([len(ids[k]) for k in todo])
        for batch in self._batches(lengths):
            hyps = self._search([ids[todo[b]] for b in batch])
            for b, nbest in zip(batch, hyps, strict=True):
                texts = self.model.tgt_vocab.decode([h[0] for h in nbest])
                results[todo[b]] = [
                    (t, h[1]) for t, h in zip(texts, nbest, strict=True)
                ]
        return results

    def _search(self, seqs: list[list[int]]) -> list[list[tuple[list[int], float]]]:
        cfg = self.cfg
        lens = np.array([len(s) for s in seqs], np.int64)
        src = np.full((len(seqs), int(lens.max())), PAD, np.int64)
        for i, s in enumerate(seqs):
            src[i, : len(s)] = s
        # float32 product, then truncation: as the torch search computes it
        ratio = np.float32(cfg["max_len_ratio"])
        max_len = (lens.astype(np.float32) * ratio).astype(np.int64) + cfg["max_len_a"]
        mem, state = self.model.encode_text(src, lens)
        if cfg["beam"] == 1 and self.lm is None:
            return [[h] for h in greedy_decode(self.model, mem, state, max_len)]
        return beam_search(
            self.model,
            mem,
            state,
            max_len,
            beam=cfg["beam"],
            lenpen=cfg["lenpen"],
            nbest=cfg["nbest"],
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
