"""`s2s-run translate|transcribe --model DIR`: the decoding commands of `s2s` for an
exported model, with the same input and output conventions.

translate: lines from --input (a file, - for stdin) to --output (- for stdout);
with --nbest > 1 each line is `line<TAB>score<TAB>text`.
transcribe: audio files, - (paths on stdin) or --manifest (TSV: id, path,
duration); one `id<TAB>text` line per file in input order (the text alone for a
single file); the real-time factor goes to stderr.

Options left out keep the decode settings stored in the export (those of the
checkpoint). Errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from s2s_runtime import RunError

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="Directory written by `s2s export`")
    p.add_argument("--output", default="-", help="Output file, - for stdout")
    p.add_argument("--beam", type=int, help="Beam size (1: greedy)")
    p.add_argument("--batch-tokens", type=int, help="Tokens (speech: frames) a batch")
    p.add_argument(
        "--threads", type=int, default=0, help="onnxruntime threads (0: its default)"
    )
    p.add_argument(
        "--lm-weight",
        type=float,
        help="Fuse the exported LM (s2s export --lm) with this weight",
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="s2s-run",
        description="Decode with a model exported by `s2s export`, no torch.",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("translate", help="Translate a file (or stdin) line by line")
    _common(tr)
    tr.add_argument("--input", default="-", help="Input file, - for stdin")
    tr.add_argument("--nbest", type=int, help="Hypotheses per input (id, score, text)")
    tr.add_argument("--lenpen", type=float, help="GNMT length penalty")
    sp = sub.add_parser("transcribe", help="Transcribe audio: id, tab, text per file")
    _common(sp)
    sp.add_argument("audio", nargs="*", help="Audio files; - reads paths from stdin")
    sp.add_argument("--manifest", help="TSV manifest: id, path, duration (text unused)")
    sp.add_argument("--mode", choices=["joint", "attention", "ctc"], help="Search")
    sp.add_argument("--ctc-weight", type=float, help="Joint search: CTC weight, 0 to 1")
    sp.add_argument(
        "--length-bonus", type=float, help="Joint/attention: score per token"
    )
    sp.add_argument(
        "--chunk-seconds", type=float, help="Encode longer audio in windows"
    )
    sp.add_argument("--chunk-overlap", type=float, help="Seconds shared by windows")
    return ap


def _settings(decode: dict, args: argparse.Namespace, names: list[str]) -> dict:
    cfg = dict(decode)
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            cfg[name] = value
    if cfg["beam"] < 1 or cfg["batch_tokens"] < 1:
        raise RunError("--beam and --batch-tokens must be positive")
    if args.lm_weight is not None and args.lm_weight < 0:
        raise RunError(f"--lm-weight must be >= 0, got {args.lm_weight}")
    return cfg


def _open_output(output: str):
    if output == "-":
        return sys.stdout
    try:
        return open(output, "w", encoding="utf-8")  # noqa: SIM115 - caller closes
    except OSError as e:
        raise RunError(f"{output}: cannot write: {e.strerror}") from None


def translate(args: argparse.Namespace) -> None:
    from s2s_runtime.model import ExportedModel
    from s2s_runtime.text import iter_lines
    from s2s_runtime.translate import Translator

    model = ExportedModel(args.model, args.threads)
    cfg = _settings(model.decode, args, ["beam", "nbest", "lenpen", "batch_tokens"])
    if args.beam is not None and args.nbest is None:
        cfg["nbest"] = min(cfg["nbest"], cfg["beam"])
    if cfg["nbest"] > cfg["beam"]:
        raise RunError(f"--nbest {cfg['nbest']} cannot exceed --beam {cfg['beam']}")
    translator = Translator(model, cfg, args.lm_weight)
    name = "<stdin>" if args.input == "-" else args.input
    out = _open_output(args.output)
    t0, n = time.time(), 0
    try:
        stream = translator.translate_stream(iter_lines(args.input), source=name)
        for n, hyps in enumerate(stream, 1):
            if cfg["nbest"] == 1:
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
        f"{cfg['beam']}, onnxruntime {model.manifest['precision']})",
        file=sys.stderr,
    )


def _audio_items(audio: list[str], manifest: str | None) -> list[tuple[str, Path]]:
    from s2s_runtime.audio import read_manifest

    if manifest is not None and audio:
        raise RunError("give audio files or --manifest, not both")
    if manifest is not None:
        return read_manifest(manifest)
    if audio == ["-"]:
        raw = sys.stdin.buffer.read().split(b"\n")
        audio = [os.fsdecode(p.rstrip(b"\r")) for p in raw if p.strip()]
    elif "-" in audio:
        raise RunError("- (paths on stdin) cannot be mixed with audio files")
    if not audio:
        raise RunError("nothing to transcribe: give audio files, - or --manifest")
    return [(a, Path(a)) for a in audio]


def transcribe(args: argparse.Namespace) -> None:
    from s2s_runtime.audio import audio_seconds, load_audio
    from s2s_runtime.model import ExportedModel
    from s2s_runtime.transcribe import Transcriber

    items = _audio_items(args.audio, args.manifest)
    model = ExportedModel(args.model, args.threads)
    names = ["beam", "mode", "ctc_weight", "length_bonus", "chunk_seconds"]
    cfg = _settings(model.decode, args, [*names, "chunk_overlap", "batch_tokens"])
    if not 0.0 <= cfg["ctc_weight"] <= 1.0:
        raise RunError(f"--ctc-weight must be in [0, 1], got {cfg['ctc_weight']}")
    if not 0 <= cfg["chunk_overlap"] < cfg["chunk_seconds"] / 2:
        raise RunError(
            f"--chunk-seconds {cfg['chunk_seconds']} must be over twice "
            f"--chunk-overlap {cfg['chunk_overlap']} (and the overlap >= 0)"
        )
    transcriber = Transcriber(model, cfg, args.lm_weight)
    features = transcriber.features

    def located(i: int, read, *more):
        try:
            return read(items[i][1], *more)
        except RunError as e:
            line = f"{args.manifest}:{i + 2}: " if args.manifest is not None else ""
            raise RunError(f"{line}{e}") from None

    t0 = time.time()
    seconds = [located(i, audio_seconds) for i in range(len(items))]
    texts = [""] * len(items)
    fps = 1000.0 / features.frame_shift_ms
    order = sorted(range(len(items)), key=lambda i: -seconds[i])
    start = 0
    while start < len(order):
        longest = min(seconds[order[start]], cfg["chunk_seconds"]) * fps
        size = max(1, int(cfg["batch_tokens"] // max(longest, 1)))
        group = order[start : start + size]
        waves = [located(i, load_audio, features.sample_rate) for i in group]
        for i, wave in zip(group, waves, strict=True):
            if features.num_frames(wave.size) == 0:
                raise RunError(
                    f"{items[i][1]}: {wave.size / features.sample_rate:.3f} s is "
                    f"shorter than one {features.frame_length_ms:g} ms frame"
                )
        for i, text in zip(group, transcriber.transcribe(waves), strict=True):
            texts[i] = text
        start += size
    out = _open_output(args.output)
    try:
        for (utt, _), text in zip(items, texts, strict=True):
            out.write(f"{text}\n" if len(items) == 1 else f"{utt}\t{text}\n")
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    dt, total = time.time() - t0, sum(seconds)
    print(
        f"transcribed {len(items)} files ({total:.1f} s of audio) in {dt:.1f} s: "
        f"real-time factor {dt / max(total, 1e-9):.3f} (mode {transcriber.mode}, "
        f"beam {cfg['beam']}, onnxruntime {model.manifest['precision']})",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        (translate if args.command == "translate" else transcribe)(args)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:  # a full `s2s` install without its export extra
        print(
            f"error: s2s-run needs {e.name}: pip install ./runtime (or 's2s[export]')",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
