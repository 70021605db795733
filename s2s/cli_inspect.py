"""The inspection commands of `s2s`: info, plot curves, plot attention (and the
checkpoint side of `config show`): thin Typer functions, each one call into the
library. `s2s.cli` registers them, with its one-line error reporting.

matplotlib (the `s2s[plot]` extra) is imported by the plot commands alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from s2s.errors import S2SError

__all__ = ["info", "plot_curves", "plot_attention"]


def info(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pt)")],
) -> None:
    """What a checkpoint holds: model, parameters, vocabulary, training, best
    validation numbers, the config that differs from the defaults, versions."""
    from s2s.info import checkpoint_info

    typer.echo(checkpoint_info(checkpoint))


def plot_curves(
    runs: Annotated[
        list[Path], typer.Argument(help="Run directories (or metrics.jsonl files)")
    ],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("curves.png"),
    metric: Annotated[
        str,
        typer.Option(
            help="validation metric to draw: bleu, wer, cer, chrf or ppl (default: "
            "the first of these the runs have)"
        ),
    ] = "",
) -> None:
    """Learning curves of one or more runs: loss and the validation metric against
    steps and against training time."""
    from s2s.viz.curves import plot_curves as plot

    plot(runs, out, metric)
    typer.echo(f"wrote {out}", err=True)


def plot_attention(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint (.pt)")],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("attention.png"),
    input: Annotated[
        str | None, typer.Option(help="Translation: the source sentence")
    ] = None,
    audio: Annotated[
        Path | None, typer.Option(help="Speech: an audio file (WAV, FLAC, Ogg)")
    ] = None,
    beam: Annotated[
        int | None, typer.Option(help="Beam size of the search (default: config's)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "cpu",
) -> None:
    """Translation: the attention matrix of the model's translation of --input.
    Speech (--audio): the log-mel spectrogram with the CTC posteriors (and a joint
    model's attention) under it."""
    from s2s.info import checkpoint_task

    task = checkpoint_task(checkpoint)
    if task == "translation":
        if input is None or audio is not None:
            raise S2SError(f"{checkpoint} is a translation model: give --input TEXT")
        _plot_translation(checkpoint, input, out, beam, device)
    elif task in ("ctc", "joint"):
        if audio is None or input is not None:
            raise S2SError(f"{checkpoint} is a speech model: give --audio FILE")
        _plot_speech(checkpoint, audio, out, beam, device)
    else:
        raise S2SError(f"{checkpoint} is a model.task={task} model: nothing attends")
    typer.echo(f"wrote {out}", err=True)


def _plot_translation(
    checkpoint: Path, text: str, out: Path, beam: int | None, device: str
) -> None:
    from s2s.checkpoint import load_model
    from s2s.decode.alignment import translation_alignment
    from s2s.device import pick_device
    from s2s.viz.attention import plot_translation
    from s2s.viz.figure import pyplot

    pyplot()  # fail before the model is loaded when matplotlib is missing
    dev = pick_device(device)
    model, cfg, src_vocab, tgt_vocab = load_model(checkpoint, dev)
    if beam is not None:
        cfg.decode.beam = beam
    a = translation_alignment(model, src_vocab, tgt_vocab, cfg.decode, text)
    plot_translation(a, text, out)


def _plot_speech(
    checkpoint: Path, audio: Path, out: Path, beam: int | None, device: str
) -> None:
    from s2s.checkpoint import load_speech_model
    from s2s.data.audio import load_audio
    from s2s.decode.alignment import speech_alignment
    from s2s.device import pick_device
    from s2s.viz.attention import plot_speech
    from s2s.viz.figure import pyplot

    pyplot()
    dev = pick_device(device)
    model, cfg, vocab, features, cmvn = load_speech_model(checkpoint, dev)
    if beam is not None:
        cfg.decode.beam = beam
    wave = load_audio(audio, features.sample_rate)
    a = speech_alignment(model, vocab, features, cmvn, cfg.decode, wave)
    plot_speech(a, audio.name, out)
