"""The `s2s` command: thin Typer commands, each one call into the library.

Heavy imports (torch) happen inside the commands so `s2s --help` is instant. Errors a
user can cause are `S2SError`s: printed as one line, exit status 1.
"""

from __future__ import annotations

import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from s2s.errors import S2SError

app = typer.Typer(
    help="Sequence-to-sequence translation and speech recognition with LSTMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
prep_app = typer.Typer(
    help="Prepare data: vocabularies and binarized shards.", no_args_is_help=True
)
score_app = typer.Typer(
    help="Score hypotheses against references.", no_args_is_help=True
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(prep_app, name="prep")
app.add_typer(score_app, name="score")
app.add_typer(config_app, name="config")


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _info(msg: str) -> None:
    typer.echo(msg, err=True)


def friendly(fn):
    """Report user errors as one line and exit 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except S2SError as e:
            _err(str(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            _err("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()  # e.g. `s2s translate ... | head`
            raise typer.Exit(0) from None

    return wrapper


class SpmType(str, Enum):
    unigram = "unigram"
    bpe = "bpe"


@prep_app.command("text")
@friendly
def prep_text_cmd(
    src: Annotated[str, typer.Option(help="Source language suffix, e.g. de")],
    train: Annotated[str, typer.Option(help="Training prefix: PREFIX.SRC, PREFIX.TGT")],
    valid: Annotated[str, typer.Option(help="Validation prefix")],
    out: Annotated[Path, typer.Option(help="Output directory")],
    tgt: Annotated[
        str | None,
        typer.Option(
            help="Target language suffix, e.g. en; without it, the SRC side alone "
            "is prepared as monolingual text (for model.task=lm)"
        ),
    ] = None,
    test: Annotated[str | None, typer.Option(help="Test prefix")] = None,
    vocab_size: Annotated[int, typer.Option(help="SentencePiece pieces")] = 8000,
    spm_type: Annotated[SpmType, typer.Option(help="SentencePiece model")] = (
        SpmType.unigram
    ),
    joint_vocab: Annotated[
        bool, typer.Option(help="One vocabulary for both sides")
    ] = False,
    max_len: Annotated[
        int, typer.Option(help="Drop training pairs longer than this (tokens)")
    ] = 250,
    max_ratio: Annotated[
        float, typer.Option(help="Drop training pairs whose length ratio exceeds this")
    ] = 3.0,
    drop_empty: Annotated[
        bool, typer.Option(help="Skip (and count) pairs with an empty side")
    ] = False,
    spm_sample: Annotated[
        int,
        typer.Option(
            help="SentencePiece trains on a random sample of this many sentences "
            "per side: prep's memory grows with it, not with the corpus"
        ),
    ] = 1_000_000,
    spm_model: Annotated[
        Path | None,
        typer.Option(
            help="Monolingual: reuse this SentencePiece model instead of training "
            "one (an LM for fusion must share the model's vocabulary)"
        ),
    ] = None,
    vocab_from: Annotated[
        Path | None,
        typer.Option(help="Monolingual: reuse the target vocabulary of a checkpoint"),
    ] = None,
) -> None:
    """Train SentencePiece and binarize a parallel corpus (or, without --tgt, one
    side of it for a language model)."""
    from s2s.data.prep_text import PrepOptions, prep_text

    if tgt is None:
        from s2s.data.prep_mono import MonoPrepOptions, prep_mono

        mono = MonoPrepOptions(
            lang=src,
            train=train,
            valid=valid,
            test=test,
            vocab_size=vocab_size,
            spm_type=spm_type.value,
            spm_model=str(spm_model) if spm_model else None,
            vocab_from=str(vocab_from) if vocab_from else None,
            drop_empty=drop_empty,
            max_spm_sentences=spm_sample,
        )
        prep_mono(mono, out, log=_info)
        return
    if spm_model or vocab_from:
        raise S2SError(
            "--spm-model and --vocab-from are for monolingual text (no --tgt)"
        )
    opts = PrepOptions(
        src=src,
        tgt=tgt,
        train=train,
        valid=valid,
        test=test,
        vocab_size=vocab_size,
        spm_type=spm_type.value,
        joint_vocab=joint_vocab,
        max_len=max_len,
        max_ratio=max_ratio,
        drop_empty=drop_empty,
        max_spm_sentences=spm_sample,
    )
    prep_text(opts, out, log=_info)


class Features(str, Enum):
    fbank = "fbank"
    melspec = "melspec"


def _speeds(text: str | None) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",")) if text else ()
    except ValueError:
        raise S2SError(
            f"--speed-perturb expects factors like 0.9,1.1, got {text!r}"
        ) from None


@prep_app.command("speech")
@friendly
def prep_speech_cmd(
    train: Annotated[
        str, typer.Option(help="Training manifest (id path duration text)")
    ],
    valid: Annotated[str, typer.Option(help="Validation manifest")],
    out: Annotated[Path, typer.Option(help="Output directory")],
    test: Annotated[str | None, typer.Option(help="Test manifest")] = None,
    vocab_size: Annotated[int, typer.Option(help="SentencePiece pieces")] = 1000,
    chars: Annotated[
        bool, typer.Option(help="A character vocabulary instead of pieces")
    ] = False,
    features: Annotated[Features, typer.Option(help="Log-mel implementation")] = (
        Features.fbank
    ),
    num_mels: Annotated[int, typer.Option(help="Mel bins per frame")] = 80,
    sample_rate: Annotated[
        int, typer.Option(help="Audio is resampled to this")
    ] = 16000,
    max_seconds: Annotated[
        float, typer.Option(help="Drop (and count) longer training utterances")
    ] = 30.0,
    skip_bad: Annotated[
        bool,
        typer.Option(help="Skip (and count) utterances whose audio cannot be used"),
    ] = False,
    speed_perturb: Annotated[
        str | None,
        typer.Option(help="Extra training copies at these speeds, e.g. 0.9,1.1"),
    ] = None,
) -> None:
    """Compute log-mel features, CMVN statistics and a vocabulary from manifests."""
    from s2s.data.prep_speech import SpeechPrepOptions, prep_speech

    opts = SpeechPrepOptions(
        train=train,
        valid=valid,
        test=test,
        vocab_size=vocab_size,
        chars=chars,
        features=features.value,
        num_mels=num_mels,
        sample_rate=sample_rate,
        max_seconds=max_seconds,
        skip_bad=skip_bad,
        speed_perturb=_speeds(speed_perturb),
    )
    prep_speech(opts, out, log=lambda m: typer.echo(m, err=True))


@app.command()
@friendly
def train(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config (defaults if omitted)")
    ] = None,
    data: Annotated[Path, typer.Option(help="Directory made by `s2s prep`")] = ...,
    out: Annotated[Path, typer.Option(help="Run directory for checkpoints/logs")] = ...,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override: section.key=value (repeatable)"),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from OUT/last.pt if it exists")
    ] = False,
) -> None:
    """Train a model (under torchrun: one of its data-parallel processes)."""
    from s2s.config import load_config
    from s2s.train.trainer import Trainer

    cfg = load_config(config, set_ or [])
    Trainer(cfg, data, out, resume=resume).run()


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


@app.command()
@friendly
def translate(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint (.pt)")],
    input: Annotated[str, typer.Option(help="Input file, - for stdin")] = "-",
    output: Annotated[str, typer.Option(help="Output file, - for stdout")] = "-",
    beam: Annotated[int | None, typer.Option(help="Beam size (1: greedy)")] = None,
    nbest: Annotated[
        int | None, typer.Option(help="Hypotheses per input (id, score, text)")
    ] = None,
    lenpen: Annotated[float | None, typer.Option(help="GNMT length penalty")] = None,
    batch_tokens: Annotated[int | None, typer.Option(help="Tokens per batch")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, bf16 or fp16")] = "fp32",
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0: torch's default)")
    ] = 0,
    lm: LMOption = None,
    lm_weight: LMWeightOption = None,
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
    )


class SpeechMode(str, Enum):
    joint = "joint"
    attention = "attention"
    ctc = "ctc"


@app.command()
@friendly
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
    output: Annotated[str, typer.Option(help="Output file, - for stdout")] = "-",
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
        typer.Option(help="Joint and attention search: score added per token"),
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
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, bf16 or fp16")] = "fp32",
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0: torch's default)")
    ] = 0,
    lm: LMOption = None,
    lm_weight: LMWeightOption = None,
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
    )


@score_app.command("bleu")
@friendly
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


@score_app.command("wer")
@friendly
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


@score_app.command("ppl")
@friendly
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


@app.command()
@friendly
def average(
    run: Annotated[Path, typer.Argument(help="Run directory with step-N.pt files")],
    out: Annotated[Path, typer.Option(help="Averaged checkpoint to write")],
    last: Annotated[int, typer.Option(help="Average the last N checkpoints")] = 5,
) -> None:
    """Average the parameters of the last N numbered checkpoints."""
    from s2s.train.average import average_checkpoints

    used = average_checkpoints(run, out, last)
    typer.echo(f"averaged {', '.join(p.name for p in used)} into {out}", err=True)


@config_app.command("show")
@friendly
def config_show(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config to resolve")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override: section.key=value")
    ] = None,
) -> None:
    """Print the full (resolved) config, every key explained."""
    from s2s.config import describe_config, load_config

    typer.echo(describe_config(load_config(config, set_ or [])))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
