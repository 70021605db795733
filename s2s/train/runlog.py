"""What a run directory keeps besides checkpoints: train.log (every message of the
run as plain text), config.yaml (the resolved config), metrics.jsonl and, with
`train.tensorboard=true`, TensorBoard event files under tensorboard/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

import yaml
from rich.console import Console

from s2s.atomic import atomic_file
from s2s.config import Config
from s2s.errors import S2SError

__all__ = [
    "RunConsole",
    "MetricsWriter",
    "write_run_config",
    "write_text_atomic",
    "tensorboard_writer",
    "check_tensorboard",
]

TENSORBOARD_HINT = (
    "train.tensorboard=true needs the tensorboard package: "
    "pip install 's2s[tensorboard]' (or pip install tensorboard), or set "
    "train.tensorboard=false"
)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` whole or not at all (`s2s.atomic.atomic_file`)."""
    with atomic_file(path) as f:
        f.write(text)


def write_run_config(out: Path, cfg: Config) -> None:
    """OUT/config.yaml: the resolved config, which `s2s train` reads back."""
    data = {
        section: {k: list(v) if isinstance(v, tuple) else v for k, v in keys.items()}
        for section, keys in cfg.to_dict().items()
    }
    header = "# The resolved config of this run (defaults, YAML, --set overrides).\n"
    write_text_atomic(
        out / "config.yaml", header + yaml.safe_dump(data, sort_keys=False)
    )


class RunConsole:
    """The run's messages: to the terminal (a rich Console, which also draws the
    bar) and, once `attach`ed, to train.log as plain text with a timestamp.

    Trainer code calls `print` as on a rich Console (markup such as [yellow]
    colours the terminal only).
    """

    def __init__(self, terminal: Console):
        self.terminal = terminal
        self._file: IO[str] | None = None
        self._plain: Console | None = None

    @property
    def is_terminal(self) -> bool:
        return self.terminal.is_terminal

    def attach(self, path: Path) -> None:
        """Append every later message to `path` (rank 0's train.log)."""
        try:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise S2SError(f"{path}: cannot append ({e.strerror})") from None
        self._plain = Console(
            file=self._file, color_system=None, width=10_000, soft_wrap=True
        )

    def print(self, message: str) -> None:
        """A message (rich markup allowed) to the terminal and train.log."""
        self.terminal.print(message, soft_wrap=not self.is_terminal, highlight=False)
        self.to_file(message)

    def line(self, text: str) -> None:
        """A plain line (no markup) to the terminal and train.log, never wrapped."""
        self.terminal.print(text, markup=False, highlight=False, soft_wrap=True)
        self.to_file(text, markup=False)

    def to_file(self, message: str, markup: bool = True) -> None:
        """A message to train.log only."""
        if self._plain is None or self._file is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._plain.print(f"{stamp} ", end="", markup=False, highlight=False)
        self._plain.print(message, markup=markup, highlight=False)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._plain = None


def check_tensorboard() -> None:
    """Fail before training, not at the first record, when tensorboard is missing."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise S2SError(TENSORBOARD_HINT) from None


def tensorboard_writer(log_dir: Path):
    """A `SummaryWriter` on `log_dir`; an S2SError if tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module imports the tensorboard package
        raise S2SError(TENSORBOARD_HINT) from None
    return SummaryWriter(log_dir=str(log_dir))


class MetricsWriter:
    """metrics.jsonl, one JSON record a line, and the same numbers as TensorBoard
    scalars: validation keys (valid_bleu) as valid/bleu, the others as
    train/loss, train/lr, ..."""

    _NOT_SCALARS = ("step", "time", "elapsed", "epoch")

    def __init__(self, out: Path, tensorboard: bool):
        path = out / "metrics.jsonl"
        try:
            self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as e:  # e.g. a directory of that name
            raise S2SError(f"{path}: cannot append ({e.strerror})") from None
        self.tb = tensorboard_writer(out / "tensorboard") if tensorboard else None

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is None:
            return
        for key, value in record.items():
            if key in self._NOT_SCALARS or not isinstance(value, (int, float)):
                continue
            tag = (
                key.replace("valid_", "valid/", 1)
                if key.startswith("valid_")
                else (f"train/{key}")
            )
            self.tb.add_scalar(tag, value, record["step"], walltime=record.get("time"))
        self.tb.flush()

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
