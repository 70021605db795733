"""What training reports: metrics.jsonl records and the progress line.

Losses and counts are summed over a window of `train.log_every` steps; under
torchrun each rank holds its own share, summed over ranks when the window is
written (rank 0 writes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from s2s.errors import S2SError
from s2s.train.distributed import Distributed

__all__ = ["Report"]


class Report:
    def __init__(self, out: Path, dist: Distributed, console, total: int | None):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.dist, self.console = dist, console
        self.metrics = None
        if dist.is_main:
            path = out / "metrics.jsonl"
            try:
                self.metrics = open(path, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as e:
                raise S2SError(f"{path}: cannot append ({e.strerror})") from None
        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not dist.is_main,
        )
        self.task = self.bar.add_task("train", total=total, info="")
        self._reset()

    def _reset(self) -> None:
        self.loss, self.tok, self.t = 0.0, 0, time.time()
        self.counts: dict[str, int] = {}

    def add(self, loss: float, ntok: int, counts: dict[str, int]) -> None:
        """One step: this rank's summed loss and counts, the global tokens."""
        self.loss += loss
        self.tok += ntok
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v

    def pause(self, seconds: float) -> None:
        """Leave `seconds` (validation, saving) out of the throughput."""
        self.t += seconds

    def log(self, record: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.write(json.dumps(record) + "\n")
            self.metrics.flush()

    def window(self, state, lr: float, extra: dict[str, Any]) -> None:
        """Write the window's record and progress line (a collective)."""
        loss_sum = 0.0
        counts: dict[str, int] = {}
        for part_loss, part_counts in self.dist.gather((self.loss, self.counts)):
            loss_sum += part_loss
            for k, v in part_counts.items():
                counts[k] = counts.get(k, 0) + v
        dt = max(time.time() - self.t, 1e-9)
        loss = loss_sum / max(self.tok, 1)
        record = {
            "step": state.step,
            "epoch": state.epoch + 1,
            "loss": round(loss, 4),
            "lr": lr,
            "tok_per_s": round(self.tok / dt, 1),
            **counts,  # e.g. inf_losses: CTC utterances left out
            **extra,  # skipped steps, out-of-memory batches, ...
            "time": round(time.time(), 1),
        }
        self.log(record)
        shown = {**counts, **{k: v for k, v in extra.items() if v}}
        info = "".join(f" | {k} {v}" for k, v in shown.items())
        self.bar.update(
            self.task,
            info=f"loss {loss:.3f} | {record['tok_per_s']:.0f} tok/s | "
            f"lr {lr:.2e} | epoch {state.epoch + 1}{info}",
        )
        self._reset()

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
