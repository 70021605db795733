"""File-level decoding: what `s2s translate`, `s2s transcribe` and `s2s score` do
with paths."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2s.atomic import open_output, refuse_same_file, signals_raise
from s2s.data.batching import longest_first
from s2s.data.text import iter_lines
from s2s.errors import S2SError

if TYPE_CHECKING:  # torch is imported inside the functions: `s2s --help` stays fast
    import torch

    from s2s.config import Config, DecodeConfig
    from s2s.data.speech import FeatureSettings
    from s2s.data.vocab import Vocab
    from s2s.decode.transcribe import Transcriber
    from s2s.models.lm import LSTMLM

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
) -> int:
    """Translate `input` line by line into `output`; returns the line count.

    With nbest > 1 each output line is `line_number<TAB>score<TAB>text`. With an
    `lm` checkpoint, beam search (also at beam 1) fuses it with `lm_weight`. A
    line over `max_input_tokens` (default: the checkpoint's
    decode.max_input_tokens) is cut to that length with a warning naming it.
    `output` is written whole at the end or not at all (`s2s.atomic`).
    """
    refuse_same_file([input], output)
    from s2s.checkpoint import load_model
    from s2s.decode.translate import Translator
    from s2s.device import pick_device
    from s2s.memory import keep_freed_memory

    options = dict(
        beam=beam,
        nbest=nbest,
        lenpen=lenpen,
        batch_tokens=batch_tokens,
        max_input_tokens=max_input_tokens,
    )
    _check_options(device, threads, options)
    keep_freed_memory()
    if threads:
        import torch

        torch.set_num_threads(threads)
    dev = pick_device(device)
    model, cfg, src_vocab, tgt_vocab = load_model(checkpoint, dev)
    if beam is not None and nbest is None:  # the checkpoint's nbest, up to --beam
        options["nbest"] = min(cfg.decode.nbest, max(beam, 1))
    width = cfg.decode.beam if beam is None else beam
    if nbest is not None and nbest > width >= 1:
        raise S2SError(f"--nbest {nbest} cannot exceed --beam {width}")
    dcfg = _decode_options(cfg, options).decode
    lm_model, weight = _fusion_lm(lm, lm_weight, tgt_vocab, dev, checkpoint)
    if dcfg.max_input_tokens < 2:
        raise S2SError(f"--max-input-tokens must be >= 2, got {dcfg.max_input_tokens}")
    cut: list[str] = []

    def warn(message: str) -> None:
        cut.append(message)
        _status(f"warning: {message}")

    translator = Translator(
        model, src_vocab, tgt_vocab, dcfg, dev, precision, lm_model, weight, warn
    )
    name = "<stdin>" if input == "-" else input
    t0, n, empty = time.time(), 0, 0
    with signals_raise(signal.SIGTERM, signal.SIGHUP), open_output(output) as out:
        lines = iter_lines(input)
        for n, hyps in enumerate(translator.translate_stream(lines, source=name), 1):
            if not hyps[0][0] and hyps[0][1] == 0.0:
                empty += 1
            if dcfg.nbest == 1:
                out.write(hyps[0][0] + "\n")
            else:
                for text, score in hyps:
                    out.write(f"{n}\t{score:.4f}\t{text}\n")
    dt = time.time() - t0
    _status(
        f"translated {n} lines in {dt:.1f}s ({n / max(dt, 1e-9):.1f} lines/s, beam "
        f"{dcfg.beam}{_fusion_note(lm, weight)})"
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


def _fusion_lm(
    lm: str | Path | None,
    lm_weight: float | None,
    vocab: Vocab,
    device: torch.device,
    checkpoint: str | Path,
) -> tuple[LSTMLM | None, float]:
    """(LM, weight) for shallow fusion, or (None, 0.0) without `--lm`. The weight
    has no default: the best one depends on both models (recipes/lm-en/RESULTS.md
    measured 0 for its pair), so it is chosen on a validation set."""
    from s2s.decode.fusion import load_lm

    if lm is None:
        if lm_weight is not None:
            raise S2SError("--lm-weight needs --lm (a language model checkpoint)")
        return None, 0.0
    if lm_weight is None:
        raise S2SError("--lm needs --lm-weight (choose it on a validation set)")
    if lm_weight < 0:
        raise S2SError(f"--lm-weight must be >= 0, got {lm_weight}")
    return load_lm(lm, vocab, device, model_path=checkpoint), lm_weight


def _fusion_note(lm: str | Path | None, weight: float) -> str:
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
) -> int:
    """Transcribe audio files (paths, `-` for a list of paths on stdin, or a TSV
    manifest) into `output`, one `id<TAB>text` line each in input order (the text
    alone for a single file); returns the file count. The real-time factor goes to
    stderr. `mode`, `ctc_weight`, `length_bonus` and the others left None keep the
    checkpoint's decode settings (`s2s.config.DecodeConfig`). With an `lm`
    checkpoint, the search of the mode (also at beam 1) fuses it with
    `lm_weight`."""
    import torch

    from s2s.checkpoint import load_speech_model
    from s2s.decode.transcribe import Transcriber
    from s2s.device import pick_device
    from s2s.memory import keep_freed_memory

    options = dict(
        beam=beam,
        mode=mode,
        ctc_weight=ctc_weight,
        length_bonus=length_bonus,
        chunk_seconds=chunk_seconds,
        chunk_overlap=chunk_overlap,
        batch_tokens=batch_tokens,
    )
    _check_options(device, threads, options)
    items = _audio_items(list(audio), manifest)
    refuse_same_file([manifest or "-", *(str(p) for _, p in items)], output)
    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    model, cfg, vocab, features, cmvn = load_speech_model(checkpoint, dev)
    seconds, overlap = (
        cfg.decode.chunk_seconds if chunk_seconds is None else chunk_seconds,
        cfg.decode.chunk_overlap if chunk_overlap is None else chunk_overlap,
    )
    if not 0 <= overlap < seconds / 2:
        raise S2SError(
            f"--chunk-seconds {seconds} must be over twice --chunk-overlap "
            f"{overlap} (and the overlap >= 0)"
        )
    dcfg = _decode_options(cfg, options).decode
    lm_model, weight = _fusion_lm(lm, lm_weight, vocab, dev, checkpoint)
    transcriber = Transcriber(
        model, vocab, features, cmvn, dcfg, dev, precision, lm_model, weight
    )

    def located(i: int, read, *args):
        """`read(path_i, *args)`; errors name the manifest line of item i."""
        try:
            return read(items[i][1], *args)
        except S2SError as e:
            line = f"{manifest}:{i + 2}: " if manifest is not None else ""
            raise S2SError(f"{line}{e}") from None

    with signals_raise(signal.SIGTERM, signal.SIGHUP), open_output(output) as out:
        texts, seconds, t0 = _transcribe_all(
            items, manifest, transcriber, features, dcfg, located
        )
        for (utt_id, _), text in zip(items, texts, strict=True):
            out.write(f"{text}\n" if len(items) == 1 else f"{utt_id}\t{text}\n")
    dt = time.time() - t0
    total = sum(seconds)
    _status(
        f"transcribed {len(items)} files ({total:.1f} s of audio) in {dt:.1f} s: "
        f"real-time factor {dt / max(total, 1e-9):.3f} (mode {transcriber.mode}, "
        f"beam {dcfg.beam}, {dev}{_fusion_note(lm, weight)})"
    )
    return len(items)


def _transcribe_all(
    items: list[tuple[str, Path]],
    manifest: str | Path | None,
    transcriber: Transcriber,
    features: FeatureSettings,
    dcfg: DecodeConfig,
    located: Callable,
) -> tuple[list[str], list[float], float]:
    """Transcribe every item, a frame budget of files at a time: (texts in input
    order, seconds of each file, start time). `located(i, read, *args)` reads item
    i, naming its manifest line in errors."""
    from s2s.data.audio import audio_seconds, load_audio

    t0 = time.time()
    # Headers only: a bad file fails before any work.
    seconds = [located(i, audio_seconds) for i in range(len(items))]
    texts: list[str] = [""] * len(items)
    frames_per_second = 1000.0 / features.frame_shift_ms
    # Whole files up to the frame budget (a long file counts as one window: its
    # windows are batched inside the transcriber).
    frames = [min(s, dcfg.chunk_seconds) * frames_per_second for s in seconds]
    for group in longest_first(frames, dcfg.batch_tokens):
        group = group.tolist()
        waves = [located(i, load_audio, features.sample_rate) for i in group]
        for i, wave in zip(group, waves, strict=True):
            if transcriber.extract.num_frames(wave.numel()) == 0:
                raise S2SError(
                    f"{items[i][1]}: {wave.numel() / features.sample_rate:.3f} s is "
                    f"shorter than one {features.frame_length_ms:g} ms frame"
                )
        for i, text in zip(group, transcriber.transcribe(waves), strict=True):
            texts[i] = text
    return texts, seconds, t0


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _check_options(device: str, threads: int, options: dict[str, Any]) -> None:
    """Each option alone, before any work: --device and --threads take what
    train.device and train.threads take, the others what their decode.* key takes
    (None: not given)."""
    from s2s.config import check_option

    check_option("train.device", device, "--device")
    check_option("train.threads", threads, "--threads")
    for key, value in options.items():
        if value is not None:
            check_option(f"decode.{key}", value, _flag(key))


def _decode_options(cfg: Config, options: dict[str, Any]) -> Config:
    """The checkpoint's config with the decoding options given (None: the
    checkpoint's), checked with it as a whole; errors name the flag."""
    from s2s.config import with_options

    return with_options(
        cfg,
        {f"decode.{k}": v for k, v in options.items()},
        {f"decode.{k}": _flag(k) for k in options},
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
