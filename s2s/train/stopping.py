"""When training stops: step, epoch and time limits, and SIGINT/SIGTERM/SIGHUP (a
closed terminal).

A signal finishes the step under way, saves last.pt and exits cleanly; a second one
interrupts at once. Under torchrun a signal or the clock may reach one rank a step
before the others, so the reason to stop is agreed on by all ranks every step.
"""

from __future__ import annotations

import signal
import threading
import time

import torch

from s2s.config import TrainConfig
from s2s.train.distributed import Distributed

__all__ = ["StopRules"]


class StopRules:
    def __init__(
        self, tc: TrainConfig, dist: Distributed, device: torch.device, console
    ):
        self.tc, self.dist, self.device, self.console = tc, dist, device, console
        self.received = 0  # a stop signal this process received
        self.signal = ""  # the stop signal all ranks agreed on
        self.minutes = 0.0  # training minutes at the last check, the same on all ranks
        self._old: dict = {}

    def __enter__(self) -> StopRules:
        self.received, self.signal = 0, ""
        if threading.current_thread() is threading.main_thread():
            self._old = {
                sig: signal.signal(sig, self._on_signal)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            }
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}

    def _on_signal(self, signum: int, frame) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = signum
        self.console.print(
            f"[yellow]{signal.Signals(signum).name}: saving a checkpoint after this "
            f"step (again to abort)"
        )

    def reason(self, step: int, epoch: int, minutes: float) -> str:
        """Why to stop now ("": go on), the same on every rank; a collective."""
        tc = self.tc
        time_up = bool(tc.max_minutes) and minutes >= tc.max_minutes
        # one collective: a signal, the clock and the minutes (for train.cooldown's
        # learning rate, which must not differ between ranks)
        signum, time_up, self.minutes = self.dist.max(
            [self.received, time_up, minutes], self.device
        )
        if signum and not self.signal:
            self.signal = signal.Signals(int(signum)).name
        if self.signal:
            return f"{self.signal} received; resume with --resume"
        if tc.max_steps and step >= tc.max_steps:
            return f"train.max_steps={tc.max_steps} reached"
        if tc.max_epochs and epoch >= tc.max_epochs:
            return f"train.max_epochs={tc.max_epochs} reached"
        if time_up:
            return f"train.max_minutes={tc.max_minutes} reached"
        return ""


def minutes_since(t0: float, earlier_seconds: float) -> float:
    return (earlier_seconds + time.time() - t0) / 60
