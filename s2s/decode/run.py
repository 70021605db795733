"""File-level decoding: what `s2s translate` and `s2s score` do with paths."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from s2s.data.text import iter_lines
from s2s.errors import S2SError

__all__ = ["translate_file", "read_aligned"]


def translate_file(
    checkpoint: str | Path,
    input: str = "-",
    output: str = "-",
    beam: int | None = None,
    nbest: int | None = None,
    lenpen: float | None = None,
    batch_tokens: int | None = None,
    device: str = "auto",
    precision: str = "fp32",
) -> int:
    """Translate `input` line by line into `output`; returns the line count.

    With nbest > 1 each output line is `line_number<TAB>score<TAB>text`.
    """
    from s2s.decode.translate import Translator
    from s2s.train.checkpoint import load_model
    from s2s.train.trainer import pick_device

    dev = pick_device(device)
    model, cfg, src_vocab, tgt_vocab = load_model(checkpoint, dev)
    changes = {
        k: v
        for k, v in dict(
            beam=beam, nbest=nbest, lenpen=lenpen, batch_tokens=batch_tokens
        ).items()
        if v is not None
    }
    dcfg = replace(cfg.decode, **changes)
    if "beam" in changes and "nbest" not in changes:
        dcfg.nbest = min(dcfg.nbest, dcfg.beam)
    if dcfg.nbest > dcfg.beam:
        raise S2SError(f"--nbest {dcfg.nbest} cannot exceed --beam {dcfg.beam}")
    translator = Translator(model, src_vocab, tgt_vocab, dcfg, dev, precision)
    name = "<stdin>" if input == "-" else input
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    t0, n, empty = time.time(), 0, 0
    try:
        lines = iter_lines(input)
        for n, hyps in enumerate(translator.translate_stream(lines, source=name), 1):
            if not hyps[0][0] and hyps[0][1] == 0.0:
                empty += 1
            if dcfg.nbest == 1:
                out.write(hyps[0][0] + "\n")
            else:
                for text, score in hyps:
                    out.write(f"{n}\t{score:.4f}\t{text}\n")
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    dt = time.time() - t0
    print(
        f"translated {n} lines in {dt:.1f}s ({n / max(dt, 1e-9):.1f} lines/s, beam "
        f"{dcfg.beam})" + (f"; {empty} empty lines left empty" if empty else ""),
        file=sys.stderr,
    )
    return n


def read_aligned(ref: str | Path, hyp: str | Path) -> tuple[list[str], list[str]]:
    """Read a reference and a hypothesis file that must have equal line counts."""
    refs = list(iter_lines(ref))
    hyps = list(iter_lines(hyp))
    if len(refs) != len(hyps):
        raise S2SError(f"{hyp} has {len(hyps)} lines but {ref} has {len(refs)}")
    return refs, hyps
