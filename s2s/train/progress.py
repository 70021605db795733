"""What training reports: metrics.jsonl records, TensorBoard scalars, log lines and
the progress bar.

Losses and counts are summed over a window of `train.log_every` steps; under
torchrun each rank holds its own share, summed over ranks when the window is
written (rank 0 writes).

Where stderr is a terminal, a live bar shows the step out of a total (`max_steps`,
or under `max_minutes` / `max_epochs` an estimate from the speed so far, shown as
~N) and the time remaining; elsewhere (a pipe, a file, `nohup`, a cluster job)
every window prints one plain line instead, which train.log keeps in both cases:

    step 200/~1830 | epoch 1 | loss 3.412 | ppl 30.32 | 2345 tok/s | lr 1.00e-03 |
    gnorm 1.23 | 0:05:12 elapsed | 0:06:48 left
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from s2s.config import TrainConfig
from s2s.train.distributed import Distributed
from s2s.train.runlog import MetricsWriter, RunConsole

__all__ = ["Report", "Budget", "format_seconds", "window_line"]


def format_seconds(seconds: float | None) -> str:
    """H:MM:SS, or ? when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Budget:
    """How far the stop rules let a run go: the remaining time and the total number
    of steps, exact under `max_steps`, estimated from the speed of this process
    (validation and saving included) under `max_minutes` and `max_epochs`."""

    def __init__(self, tc: TrainConfig, start_step: int, start_time: float):
        self.max_steps, self.max_epochs = tc.max_steps, tc.max_epochs
        self.max_seconds = tc.max_minutes * 60.0
        self.start_step, self.start_time = start_step, start_time

    def estimate(
        self, step: int, epochs_done: float, steps_per_epoch: float, elapsed: float
    ) -> tuple[float | None, float | None, bool]:
        """(seconds left, total steps, whether that total is exact) at `step`,
        `epochs_done` (fractional) and `elapsed` training seconds (earlier runs
        included); None where unknown (e.g. only train.patience stops the run)."""
        ran = time.time() - self.start_time
        rate = (step - self.start_step) / ran if ran > 0 else 0.0  # steps/s
        inf = math.inf
        options: list[tuple[float, float | None, bool]] = []  # (left, total, exact)
        if self.max_steps:
            left = max(0, self.max_steps - step)
            options.append((left / rate if rate else inf, self.max_steps, True))
        if self.max_epochs and steps_per_epoch > 0:
            left = max(0.0, self.max_epochs - epochs_done) * steps_per_epoch
            options.append((left / rate if rate else inf, step + left, False))
        if self.max_seconds:
            left = max(0.0, self.max_seconds - elapsed)
            options.append((left, step + left * rate if rate else None, False))
        if not options:
            return None, None, False
        left, total, exact = min(options, key=lambda o: o[0])
        return (None if left == inf else left), total, exact


def window_line(
    step: int, total: float | None, exact: bool, record: dict[str, Any], extra: str
) -> str:
    """The plain log line of one window's `record`."""
    of = "" if total is None else f"/{'' if exact else '~'}{total:.0f}"
    gnorm = record.get("grad_norm")
    return (
        f"step {step}{of} | epoch {record['epoch']} | loss {record['loss']:.3f} | "
        f"ppl {record['ppl']:.2f} | {record['tok_per_s']:.0f} tok/s | "
        f"lr {record['lr']:.2e} | gnorm {'?' if gnorm is None else f'{gnorm:.2f}'}"
        f"{extra} | {format_seconds(record['elapsed'])} elapsed | "
        f"{format_seconds(record.get('_left'))} left"
    )


class Report:
    """Metrics, log lines and the bar of one `Trainer.run`.

    Args:
        out: the run directory (metrics.jsonl, tensorboard/).
        dist: the process group; rank 0 writes.
        console: where messages go (train.log too); its terminal decides bar or
            lines.
        tc: the stop rules (for totals and time left) and `tensorboard`.
        clock: training seconds so far, earlier runs of the job included.
        start_step: the step this run starts from.
    """

    def __init__(
        self,
        out: Path,
        dist: Distributed,
        console: RunConsole,
        tc: TrainConfig,
        clock: Callable[[], float],
        start_step: int,
    ):
        from rich.progress import BarColumn, Progress, TextColumn

        self.dist, self.console, self.clock = dist, console, clock
        self.metrics = MetricsWriter(out, tc.tensorboard) if dist.is_main else None
        self.budget = Budget(tc, start_step, time.time())
        self.live = console.is_terminal and dist.is_main
        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.fields[of]}"),
            TextColumn("{task.fields[info]}"),
            TextColumn("{task.fields[times]}"),
            console=console.terminal,
            transient=False,
            disable=not self.live,
        )
        self.task = self.bar.add_task("train", total=None, info="", of="?", times="")
        self.left: float | None = None
        self.total: float | None = None
        self.exact = False
        self._reset()

    def _reset(self) -> None:
        self.loss, self.tok, self.t = 0.0, 0, time.time()
        self.norm, self.norms = 0.0, 0
        self.counts: dict[str, int] = {}

    def add(
        self, loss: float, ntok: int, counts: dict[str, int], grad_norm: float
    ) -> None:
        """One step: this rank's summed loss and counts, the global tokens and the
        gradient norm before clipping (NaN for a skipped step, left out)."""
        self.loss += loss
        self.tok += ntok
        if math.isfinite(grad_norm):
            self.norm += grad_norm
            self.norms += 1
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v

    def pause(self, seconds: float) -> None:
        """Leave `seconds` (validation, saving) out of the throughput."""
        self.t += seconds

    def progress(self, step: int, epochs_done: float, steps_per_epoch: float) -> None:
        """After every step: the bar's position, total and time left."""
        elapsed = self.clock()
        self.left, self.total, self.exact = self.budget.estimate(
            step, epochs_done, steps_per_epoch, elapsed
        )
        if self.live:
            of = "?" if self.total is None else f"{self.total:.0f}"
            self.bar.update(
                self.task,
                completed=step,
                total=self.total,
                of=of if self.exact or self.total is None else f"~{of}",
                times=f"| {format_seconds(elapsed)} elapsed, "
                f"{format_seconds(self.left)} left",
            )

    def log(self, record: dict[str, Any]) -> None:
        """One record into metrics.jsonl (and TensorBoard), rank 0."""
        if self.metrics is not None:
            self.metrics.write(record)

    def window(self, state, lr: float, extra: dict[str, Any]) -> None:
        """Write the window's record and log line or bar text (a collective)."""
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
            "ppl": round(math.exp(min(loss, 100.0)), 2),
            "lr": lr,
            "tok_per_s": round(self.tok / dt, 1),
            **({"grad_norm": round(self.norm / self.norms, 4)} if self.norms else {}),
            **counts,  # e.g. inf_losses: CTC utterances left out
            **extra,  # skipped steps, out-of-memory batches, ...
            "elapsed": round(self.clock(), 1),
            "time": round(time.time(), 1),
        }
        self.log(record)
        shown = {k: v for k, v in {**counts, **extra}.items() if v}  # the non-zero
        info = "".join(f" | {k} {v}" for k, v in shown.items())
        line = window_line(
            state.step, self.total, self.exact, {**record, "_left": self.left}, info
        )
        if self.live:  # the bar says it on the terminal; train.log gets the line
            self.console.to_file(line)
            self.bar.update(
                self.task,
                info=f"loss {loss:.3f} | {record['tok_per_s']:.0f} tok/s | "
                f"lr {lr:.2e} | epoch {state.epoch + 1}{info}",
            )
        else:
            self.console.line(line)
        self._reset()

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
