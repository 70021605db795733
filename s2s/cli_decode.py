"""The decoding and scoring commands of `s2s` (translate, transcribe, score bleu,
wer and ppl): thin Typer functions, each one call into the library. `s2s.cli`
registers them, with its one-line error reporting.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["translate", "transcribe", "score_bleu", "score_wer", "score_ppl"]

# Options shared by translate and transcribe.
OutputOption = Annotated[str, typer.Option(help="Output file, - for stdout")]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu or cuda")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="fp32; bf16 or fp16 (autocast; fp16 on GPUs); int8 (CPU: dynamically "
        "quantized linear and LSTM layers)"
    ),
]
ThreadsOption = Annotated[
    int, typer.Option(help="CPU threads for torch (0: torch's default)")
]
LMOption = Annotated[
    Path | None,
    typer.Option(help="Language model checkpoint for shallow fusion (beam search)"),
]
LMWeightOption = Annotated[
    float | None,
    typer.Option(
        help="Fusion weight of the LM's log-probabilities (needed with --lm; choose "
        "it on a validation set)"
    ),
]


def translate(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint (.pt)")],
    input: Annotated[str, typer.Option(help="Input file, - for stdin")] = "-",
    output: OutputOption = "-",
    beam: Annotated[int | None, typer.Option(help="Beam size (1: greedy)")] = None,
    nbest: Annotated[
        int | None, typer.Option(help="Hypotheses per input (id, score, text)")
    ] = None,
    lenpen: Annotated[float | None, typer.Option(help="GNMT length penalty")] = None,
    batch_tokens: Annotated[int | None, typer.Option(help="Tokens per batch")] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    threads: ThreadsOption = 0,
    lm: LMOption = None,
    lm_weight: LMWeightOption = None,
    max_input_tokens: Annotated[
        int | None,
        typer.Option(
            help="Longer input lines are cut to this many tokens, with a warning "
            "naming the line (default: the checkpoint's decode.max_input_tokens)"
        ),
    ] = None,
    line_by_line: Annotated[
        bool,
        typer.Option(
            "--line-by-line",
            help="Translate and write each line as soon as it is read (the default "
            "when stdin is a terminal); otherwise lines are read 2,000 at a time and "
            "batched by length, which is much faster",
        ),
    ] = False,
) -> None:
    """Translate a file (or stdin) line by line with a trained checkpoint."""
    from s2s.decode.run import translate_file

    translate_file(
        checkpoint,
        input,
        output,
        beam=beam,
        nbest=nbest,
        lenpen=lenpen,
        batch_tokens=batch_tokens,
        device=device,
        precision=precision,
        threads=threads,
        lm=lm,
        lm_weight=lm_weight,
        max_input_tokens=max_input_tokens,
        line_by_line=line_by_line,
    )


class SpeechMode(str, Enum):
    joint = "joint"
    attention = "attention"
    ctc = "ctc"


def transcribe(
    checkpoint: Annotated[
        Path, typer.Option(help="Speech checkpoint (.pt): model.task ctc or joint")
    ],
    audio: Annotated[
        list[str] | None,
        typer.Argument(help="Audio files (WAV, FLAC, Ogg); - reads paths from stdin"),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="TSV manifest: id, path, duration (text unused)")
    ] = None,
    output: OutputOption = "-",
    beam: Annotated[
        int | None, typer.Option(help="Beam size of the search (ctc, 1: greedy)")
    ] = None,
    mode: Annotated[
        SpeechMode | None,
        typer.Option(
            help="Search: joint (attention + CTC prefix scores), attention, or ctc. "
            "Default: joint for joint checkpoints; CTC checkpoints have only ctc"
        ),
    ] = None,
    ctc_weight: Annotated[
        float | None,
        typer.Option(help="Joint search: weight of CTC against attention, 0 to 1"),
    ] = None,
    length_bonus: Annotated[
        float | None,
        typer.Option(
            help="Score added per emitted token, in every search (counters "
            "deletions; choose it on a validation set)"
        ),
    ] = None,
    chunk_seconds: Annotated[
        float | None, typer.Option(help="Encode longer audio in windows of this")
    ] = None,
    chunk_overlap: Annotated[
        float | None, typer.Option(help="Seconds shared by neighbouring windows")
    ] = None,
    batch_tokens: Annotated[
        int | None, typer.Option(help="Feature frames per batch (100 a second)")
    ] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    threads: ThreadsOption = 0,
    lm: LMOption = None,
    lm_weight: LMWeightOption = None,
    lexicon: Annotated[
        Path | None,
        typer.Option(
            help="Word list (whitespace-separated words) of a character model: "
            "each word not in it costs --lexicon-weight"
        ),
    ] = None,
    lexicon_weight: Annotated[
        float | None,
        typer.Option(
            help="Cost of a word not in --lexicon (needed with it; choose it on a "
            "validation set)"
        ),
    ] = None,
) -> None:
    """Transcribe audio with a speech checkpoint: id, tab, text per file."""
    from s2s.decode.run import transcribe_files

    transcribe_files(
        checkpoint,
        audio or [],
        manifest,
        output,
        beam=beam,
        mode=mode.value if mode else None,
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


def score_bleu(
    ref: Annotated[Path, typer.Option(help="Reference file")],
    hyp: Annotated[Path, typer.Option(help="Hypothesis file")],
) -> None:
    """Corpus BLEU and chrF with sacrebleu's signatures."""
    from s2s.decode.run import read_aligned
    from s2s.metrics import bleu_chrf

    refs, hyps = read_aligned(ref, hyp)
    s = bleu_chrf(hyps, refs)
    typer.echo(f"BLEU {s.bleu:.2f}  ({s.bleu_signature})\n  {s.bleu_detail}")
    typer.echo(f"chrF {s.chrf:.2f}  ({s.chrf_signature})")


def score_wer(
    ref: Annotated[Path, typer.Option(help="Reference file")],
    hyp: Annotated[Path, typer.Option(help="Hypothesis file")],
) -> None:
    """Corpus WER and CER with substitution, deletion and insertion counts."""
    from s2s.decode.run import read_aligned
    from s2s.metrics import wer_cer

    refs, hyps = read_aligned(ref, hyp)
    for name, r in zip(("WER", "CER"), wer_cer(hyps, refs), strict=True):
        typer.echo(
            f"{name} {r.rate:.2f}  (S {r.substitutions}, D {r.deletions}, "
            f"I {r.insertions}, N {r.ref_length})"
        )


def score_ppl(
    checkpoint: Annotated[Path, typer.Option(help="Language model checkpoint (.pt)")],
    input: Annotated[str, typer.Option(help="Plain text file, - for stdin")] = "-",
    stream: Annotated[
        bool,
        typer.Option(
            help="Carry the LM state from line to line (as in training) instead of "
            "starting every line afresh (as in fusion)"
        ),
    ] = False,
    batch_tokens: Annotated[int, typer.Option(help="Tokens per batch")] = 4000,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0: torch's default)")
    ] = 0,
) -> None:
    """Perplexity of a language model on a text file, one sentence a line."""
    from s2s.decode.perplexity import perplexity_file

    r = perplexity_file(checkpoint, input, stream, batch_tokens, device, threads)
    mode = "stream, state carried across lines" if stream else "per line"
    typer.echo(
        f"ppl {r.ppl:.2f}  ({r.tokens} tokens with EOS, {r.lines} lines, "
        f"{r.unk} unknown; {mode})"
        + (f"; {r.empty} empty lines skipped" if r.empty else "")
    )
