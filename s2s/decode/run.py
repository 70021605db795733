"""File-level decoding: what `s2s translate`, `s2s transcribe` and `s2s score` do
with paths. The work is done by the Python API (`s2s.decode.api`); this adds files,
stdin and stdout, outputs written whole or not at all (`s2s.atomic`), and the status
line on stderr."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from s2s.atomic import open_output, refuse_same_file, signals_raise
from s2s.data.text import iter_lines
from s2s.errors import S2SError

if TYPE_CHECKING:
    from s2s.decode.api import Transcriber

__all__ = ["translate_file", "transcribe_files", "read_aligned"]


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
    threads: int = 0,
    lm: str | Path | None = None,
    lm_weight: float | None = None,
    max_input_tokens: int | None = None,
    line_by_line: bool = False,
) -> int:
    """Translate `input` line by line into `output`; returns the line count.

    With nbest > 1 each output line is `line_number<TAB>score<TAB>text`. With an
    `lm` checkpoint, beam search (also at beam 1) fuses it with `lm_weight`. A
    line over `max_input_tokens` (default: the checkpoint's
    decode.max_input_tokens) is cut to that length with a warning naming it.
    Lines are read 2,000 at a time and batched by length; `line_by_line` (the
    default when the input is a terminal) answers each line as soon as it is read.
    A file `output` is written whole at the end or not at all (`s2s.atomic`).
    """
    from s2s.decode.api import Translator

    refuse_same_file([input], output)
    cut: list[str] = []

    def warn(message: str) -> None:
        cut.append(message)
        _status(f"warning: {message}")

    translator = Translator(
        checkpoint,
        beam=beam,
        nbest=nbest,
        lenpen=lenpen,
        batch_tokens=batch_tokens,
        max_input_tokens=max_input_tokens,
        device=device,
        precision=precision,
        threads=threads,
        lm=lm,
        lm_weight=lm_weight,
        warn=warn,
    )
    dcfg = translator.config
    name = "<stdin>" if input == "-" else input
    tty = input == "-" and sys.stdin is not None and sys.stdin.isatty()
    line_by_line = line_by_line or tty
    t0, n, empty = time.time(), 0, 0
    with signals_raise(signal.SIGTERM, signal.SIGHUP), open_output(output) as out:
        lines = iter_lines(input)
        block = 1 if line_by_line else 2000
        for n, hyps in enumerate(translator.stream(lines, name, block), 1):
            if not hyps[0][0] and hyps[0][1] == 0.0:
                empty += 1
            if dcfg.nbest == 1:
                out.write(hyps[0][0] + "\n")
            else:
                for text, score in hyps:
                    out.write(f"{n}\t{score:.4f}\t{text}\n")
            if line_by_line:
                out.flush()
    dt = time.time() - t0
    _status(
        f"translated {n} lines in {dt:.1f}s ({n / max(dt, 1e-9):.1f} lines/s, beam "
        f"{dcfg.beam}{_fusion_note(lm, lm_weight)})"
        + (f"; {empty} empty lines left empty" if empty else "")
        + (
            f"; {len(cut)} lines cut to --max-input-tokens {dcfg.max_input_tokens}"
            if cut
            else ""
        )
    )
    return n


def _status(message: str) -> None:
    """A line for the user on stderr; nowhere if stderr is closed (never into the
    output)."""
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


def _fusion_note(lm: str | Path | None, weight: float | None) -> str:
    return f", LM {lm} weight {weight:g}" if lm is not None else ""


def read_aligned(ref: str | Path, hyp: str | Path) -> tuple[list[str], list[str]]:
    """Read a reference and a hypothesis file that must have equal line counts."""
    refs = list(iter_lines(ref))
    hyps = list(iter_lines(hyp))
    if len(refs) != len(hyps):
        raise S2SError(f"{hyp} has {len(hyps)} lines but {ref} has {len(refs)}")
    return refs, hyps


def transcribe_files(
    checkpoint: str | Path,
    audio: list[str] = (),
    manifest: str | Path | None = None,
    output: str = "-",
    beam: int | None = None,
    mode: str | None = None,
    ctc_weight: float | None = None,
    length_bonus: float | None = None,
    chunk_seconds: float | None = None,
    chunk_overlap: float | None = None,
    batch_tokens: int | None = None,
    device: str = "auto",
    precision: str = "fp32",
    threads: int = 0,
    lm: str | Path | None = None,
    lm_weight: float | None = None,
    lexicon: str | Path | None = None,
    lexicon_weight: float | None = None,
) -> int:
    """Transcribe audio files (paths, `-` for a list of paths on stdin, or a TSV
    manifest) into `output`, one `id<TAB>text` line each in input order (the text
    alone for a single file); returns the file count. The real-time factor goes to
    stderr. `mode`, `ctc_weight`, `length_bonus` and the others left None keep the
    checkpoint's decode settings (`s2s.config.DecodeConfig`). With an `lm`
    checkpoint, the search of the mode (also at beam 1) fuses it with
    `lm_weight`, and a word list `lexicon` with `lexicon_weight`
    (`s2s.decode.lexicon`). The output is opened before any decoding, and a file
    is written whole at the end or not at all."""
    from s2s.data.audio import audio_seconds
    from s2s.decode.api import Transcriber

    items = _audio_items(list(audio), manifest)
    refuse_same_file([manifest or "-", *(str(p) for _, p in items)], output)
    transcriber = Transcriber(
        checkpoint,
        beam=beam,
        mode=mode,
        ctc_weight=ctc_weight,
        length_bonus=length_bonus,
        chunk_seconds=chunk_seconds,
        chunk_overlap=chunk_overlap,
        batch_tokens=batch_tokens,
        device=device,
        precision=precision,
        threads=threads,
        lm=lm,
        lm_weight=lm_weight,
        lexicon=lexicon,
        lexicon_weight=lexicon_weight,
    )
    where = None
    if manifest is not None:  # errors name the manifest line of the file
        where = [f"{manifest}:{i + 2}" for i in range(len(items))]
    t0 = time.time()
    with signals_raise(signal.SIGTERM, signal.SIGHUP), open_output(output) as out:
        texts = transcriber.transcribe([path for _, path in items], where)
        for (utt_id, _), text in zip(items, texts, strict=True):
            out.write(f"{text}\n" if len(items) == 1 else f"{utt_id}\t{text}\n")
    dt = time.time() - t0
    total = sum(audio_seconds(path) for _, path in items)  # headers only
    _status(
        f"transcribed {len(items)} files ({total:.1f} s of audio) in {dt:.1f} s: "
        f"real-time factor {dt / max(total, 1e-9):.3f} (mode {transcriber.mode}, "
        f"beam {transcriber.config.beam}, {transcriber.device}"
        f"{_fusion_note(lm, lm_weight)}{_lexicon_note(transcriber, lexicon)})"
    )
    return len(items)


def _lexicon_note(transcriber: Transcriber, path: str | Path | None) -> str:
    words = transcriber.lexicon
    if words is None:
        return ""
    skipped = f", {words.skipped} skipped: characters the model lacks"
    cached = ", trie from the cache" if words.cached else ""
    return (
        f", lexicon {path} ({words.words} words{skipped if words.skipped else ''}"
        f"{cached}) weight {transcriber.lexicon_weight:g}"
    )


def _audio_items(
    audio: list[str], manifest: str | Path | None
) -> list[tuple[str, Path]]:
    """(id, path) of every file to transcribe; ids are the paths as given."""
    from s2s.data.audio import read_manifest

    if manifest is not None and audio:
        raise S2SError("give audio files or --manifest, not both")
    if manifest is not None:
        return [(u.id, u.path) for u in read_manifest(manifest, require_text=False)]
    if audio == ["-"]:
        # Paths are kept byte for byte (no whitespace folding, any encoding the file
        # system takes); blank lines skipped.
        if sys.stdin is None:
            raise S2SError("<stdin>: cannot read: standard input is closed")
        raw = sys.stdin.buffer.read().split(b"\n")
        audio = [os.fsdecode(p.rstrip(b"\r")) for p in raw if p.strip()]
    elif "-" in audio:
        raise S2SError("- (paths on stdin) cannot be mixed with audio files")
    if not audio:
        raise S2SError("nothing to transcribe: give audio files, - or --manifest")
    return [(a, Path(a)) for a in audio]
