"""Evaluation metrics: BLEU and chrF through sacrebleu, WER and CER by edit distance."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BleuChrf", "bleu_chrf", "ErrorRate", "error_rate", "wer_cer"]


@dataclass
class BleuChrf:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_detail: str  # sacrebleu's one-line summary (n-gram precisions, BP, ...)


def bleu_chrf(hyps: list[str], refs: list[str]) -> BleuChrf:
    """Corpus BLEU and chrF of detokenized hypotheses against one reference each."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    return BleuChrf(
        b.score, c.score, str(bleu.get_signature()), str(chrf.get_signature()), str(b)
    )


@dataclass
class ErrorRate:
    """Edit operations summed over a corpus; rate = (S + D + I) / reference length."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return 100.0 * self.errors / max(self.ref_length, 1)

    def __add__(self, other: ErrorRate) -> ErrorRate:
        return ErrorRate(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_length + other.ref_length,
        )


def error_rate(ref: list, hyp: list) -> ErrorRate:
    """Levenshtein alignment of two sequences, counting S, D and I.

    Among alignments with the fewest errors, prefers substitutions over a
    deletion-insertion pair, as sclite and jiwer do.
    """
    n, m = len(ref), len(hyp)
    # cost[i][j] = (errors, subs, dels, ins) aligning ref[:i] with hyp[:j]
    prev = [(j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            if ref[i - 1] == hyp[j - 1]:
                best = prev[j - 1]
            else:
                e, s, d, k = prev[j - 1]
                best = (e + 1, s + 1, d, k)
            e, s, d, k = prev[j]
            if e + 1 < best[0]:
                best = (e + 1, s, d + 1, k)
            e, s, d, k = cur[j - 1]
            if e + 1 < best[0]:
                best = (e + 1, s, d, k + 1)
            cur.append(best)
        prev = cur
    _, s, d, k = prev[m]
    return ErrorRate(s, d, k, n)


def wer_cer(hyps: list[str], refs: list[str]) -> tuple[ErrorRate, ErrorRate]:
    """Corpus WER (over whitespace words) and CER (over characters, spaces kept)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    wer, cer = ErrorRate(), ErrorRate()
    for h, r in zip(hyps, refs, strict=True):
        wer = wer + error_rate(r.split(), h.split())
        cer = cer + error_rate(list(" ".join(r.split())), list(" ".join(h.split())))
    return wer, cer
