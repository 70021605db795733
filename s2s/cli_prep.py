"""`s2s prep text` and `s2s prep speech`: the Typer commands of data preparation,
each one call into `s2s.data` (registered in `s2s.cli`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from s2s.errors import S2SError

__all__ = ["prep_text_cmd", "prep_speech_cmd"]


def _info(msg: str) -> None:
    typer.echo(msg, err=True)


def _checkpoint_vocab(path: Path):
    from s2s.checkpoint import target_vocab

    return target_vocab(path)


class SpmType(str, Enum):
    unigram = "unigram"
    bpe = "bpe"


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
            vocab=_checkpoint_vocab(vocab_from) if vocab_from else None,
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
    vocab_from: Annotated[
        Path | None,
        typer.Option(
            help="Reuse the vocabulary of a speech checkpoint (to fine-tune it on "
            "this data with train.init_from); its features must be these"
        ),
    ] = None,
) -> None:
    """Compute log-mel features, CMVN statistics and a vocabulary from manifests."""
    from s2s.checkpoint import target_vocab_and_features
    from s2s.data.prep_speech import SpeechPrepOptions, prep_speech

    vocab, vocab_features = (
        target_vocab_and_features(vocab_from) if vocab_from else (None, None)
    )
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
        vocab_from=str(vocab_from) if vocab_from else None,
        vocab=vocab,
        vocab_features=vocab_features,
    )
    prep_speech(opts, out, log=lambda m: typer.echo(m, err=True))
