"""The `s2s` command: thin Typer commands, each one call into the library.

Heavy imports (torch) happen inside the commands so `s2s --help` is instant. Errors a
user can cause are `S2SError`s: printed as one line, exit status 1.
"""

from __future__ import annotations

import functools
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from s2s import cli_decode, cli_inspect, cli_prep
from s2s.errors import S2SError

app = typer.Typer(
    help="Sequence-to-sequence translation and speech recognition with LSTMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion: Typer's shell completion (README)
    add_completion=True,
)
prep_app = typer.Typer(
    help="Prepare data: vocabularies and binarized shards.", no_args_is_help=True
)
score_app = typer.Typer(
    help="Score hypotheses against references.", no_args_is_help=True
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
plot_app = typer.Typer(
    help="Pictures: learning curves, attention (needs matplotlib: the plot extra).",
    no_args_is_help=True,
)
app.add_typer(prep_app, name="prep")
app.add_typer(score_app, name="score")
app.add_typer(config_app, name="config")
app.add_typer(plot_app, name="plot")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from s2s._version import __version__

        try:
            torch = version("torch")  # without importing it: --version stays instant
        except PackageNotFoundError:
            torch = "not installed"
        py = ".".join(map(str, sys.version_info[:3]))
        typer.echo(f"s2s {__version__} (torch {torch}, python {py})")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the versions of s2s, torch and python, and exit.",
        ),
    ] = False,
) -> None:
    """Sequence-to-sequence translation and speech recognition with LSTMs."""


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


@app.command()
@friendly
def train(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config (defaults if omitted)")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Directory made by `s2s prep` (with --resume: the one last.pt "
            "names, by default)"
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Run directory for checkpoints/logs")] = ...,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override: section.key=value (repeatable)"),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue from OUT/last.pt if it exists, with the config it holds: "
            "the YAML and --set may change limits, intervals and the device, not "
            "the model or the optimizer"
        ),
    ] = False,
) -> None:
    """Train a model (under torchrun: one of its data-parallel processes)."""
    from s2s.train.resume import resume_config
    from s2s.train.trainer import Trainer

    cfg, data = resume_config(config, set_ or [], data, out, resume)
    Trainer(cfg, data, out, resume=resume).run()


# Data preparation: s2s/cli_prep.py.
prep_app.command("text")(friendly(cli_prep.prep_text_cmd))
prep_app.command("speech")(friendly(cli_prep.prep_speech_cmd))
# Decoding and scoring commands: s2s/cli_decode.py.
app.command()(friendly(cli_decode.translate))
app.command()(friendly(cli_decode.transcribe))
score_app.command("bleu")(friendly(cli_decode.score_bleu))
score_app.command("wer")(friendly(cli_decode.score_wer))
score_app.command("ppl")(friendly(cli_decode.score_ppl))
# Inspection commands: s2s/cli_inspect.py.
app.command()(friendly(cli_inspect.info))
plot_app.command("curves")(friendly(cli_inspect.plot_curves))
plot_app.command("attention")(friendly(cli_inspect.plot_attention))


@app.command()
@friendly
def average(
    run: Annotated[Path, typer.Argument(help="Run directory with step-N.pt files")],
    out: Annotated[Path, typer.Option(help="Averaged checkpoint to write")],
    last: Annotated[
        int | None, typer.Option(help="Average the last N checkpoints [default: 5]")
    ] = None,
    best: Annotated[
        int | None,
        typer.Option(
            help="Average the N checkpoints with the best validation scores "
            "(train.select_by, from the run's metrics.jsonl) instead"
        ),
    ] = None,
) -> None:
    """Average the parameters of the last N numbered checkpoints, or of the N best."""
    from s2s.train.average import average_checkpoints

    if last is not None and best is not None:
        raise S2SError("give --last or --best, not both")
    if best is not None and best < 1:
        raise S2SError(f"--best must be >= 1, got {best}")
    used = average_checkpoints(run, out, 5 if last is None else last, best or 0)
    typer.echo(f"averaged {', '.join(p.name for p in used)} into {out}", err=True)


class ExportPrecision(str, Enum):
    fp32 = "fp32"
    int8 = "int8"


@app.command()
@friendly
def export(
    checkpoint: Annotated[
        Path, typer.Option(help="Checkpoint (.pt): translation, ctc or joint")
    ],
    out: Annotated[Path, typer.Option(help="Directory to write (for s2s-run)")],
    precision: Annotated[
        ExportPrecision,
        typer.Option(help="int8: onnxruntime dynamic quantization of every graph"),
    ] = ExportPrecision.fp32,
    lm: Annotated[
        Path | None,
        typer.Option(
            help="LM checkpoint to add for shallow fusion (s2s-run --lm-weight)"
        ),
    ] = None,
) -> None:
    """Export a checkpoint to ONNX: a directory `s2s-run` decodes without torch."""
    from s2s.export.export import export_checkpoint

    export_checkpoint(checkpoint, out, precision.value, lm, log=_info)


@config_app.command("show")
@friendly
def config_show(
    config: Annotated[
        Path | None,
        typer.Argument(help="YAML config to resolve, or a checkpoint (.pt)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override: section.key=value")
    ] = None,
) -> None:
    """Print the full (resolved) config, every key explained; of a checkpoint, the
    config it was trained with."""
    from s2s.config import describe_config
    from s2s.info import config_of

    typer.echo(describe_config(config_of(config, set_ or [])))


def guard_std_streams() -> None:
    """Before any file is opened: a closed standard descriptor (`2>&-`) gets
    /dev/null, so no output file can take its number and receive messages meant for
    the terminal; `sys.std*` stay None for them, and commands that need one say it
    is closed. Text on stdout is UTF-8 whatever the locale says (translations are
    UTF-8 files), and messages on stderr never fail on a character the terminal's
    encoding lacks."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes the lowest free number: fd
    for stream, settings in (
        (sys.stdout, {"encoding": "utf-8"}),
        (sys.stderr, {"errors": "backslashreplace"}),
    ):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(**settings)


def main() -> None:
    guard_std_streams()
    app()


if __name__ == "__main__":
    main()
