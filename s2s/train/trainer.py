"""The training loop: batches in, optimizer steps out; validation, checkpoints, logs.

The loop knows tasks (translation, CTC, joint, LM) only through
`s2s.train.tasks.Task`: the task reads the data, collates batches, runs one
forward/backward and validates.

Resuming is exact: the batch order of an epoch is a function of (seed, epoch), and a
checkpoint stores the position inside it with every optimizer, schedule and RNG
state (and a task's carried state: the LM's hidden state), so an
interrupted-then-resumed run ends with the same parameters as one that ran straight
through.

Under torchrun the same loop runs in every process (`s2s.train.distributed`): each
rank runs its share of a step's batches, gradients are summed over ranks, and every
decision (skip a step, stop) is agreed on, so ranks never diverge. Rank 0 alone
validates and writes checkpoints, metrics and the progress bar.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2s.config import Config, validate
from s2s.errors import S2SError
from s2s.memory import OutOfMemory, keep_freed_memory, release_memory
from s2s.precision import autocast_for, train_precision
from s2s.train.distributed import (
    Distributed,
    reseed_cuda,
    seed_rank,
    shard,
)
from s2s.train.init_from import init_from_checkpoint
from s2s.train.lock import unlock_run_dir
from s2s.train.progress import Report
from s2s.train.runlog import RunConsole, check_tensorboard, write_run_config
from s2s.train.saving import Checkpointing
from s2s.train.schedule import LRSchedule, budget_used
from s2s.train.sizing import check_model_fits
from s2s.train.state import RunState, selection_score
from s2s.train.stopping import StopRules, minutes_since
from s2s.train.task_loading import load_task

__all__ = ["Trainer", "RunState"]


def use_deterministic_algorithms() -> None:
    """train.deterministic: what torch offers for reproducible GPU runs."""
    # cuBLAS needs a fixed workspace before its first use to be reproducible.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: CTC loss backward on CUDA has no deterministic kernel.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class Trainer(Checkpointing):
    """Trains a model from a `s2s prep` directory into a run directory."""

    def __init__(
        self,
        cfg: Config,
        data_dir: str | Path,
        out_dir: str | Path,
        resume: bool = False,
        console=None,
    ):
        from rich.console import Console

        validate(cfg)  # a Config built in Python has not met the checks yet
        self.cfg, self.tc = cfg, cfg.train
        self.out = Path(out_dir)
        self.data_dir = Path(data_dir)
        keep_freed_memory()
        if self.tc.threads:
            torch.set_num_threads(self.tc.threads)
        if self.tc.deterministic:
            use_deterministic_algorithms()
        if self.tc.tensorboard:
            check_tensorboard()
        self.dist, self.device = Distributed.from_env(self.tc.device)
        # Other ranks print nothing: rank 0 speaks for the run (and keeps train.log).
        self.console = RunConsole(
            console or Console(stderr=True, quiet=not self.dist.is_main)
        )
        self.precision = train_precision(self.tc.precision, self.device)
        self.amp = autocast_for(self.device, self.precision)
        self.task = load_task(cfg, data_dir)
        check_model_fits(self.task.build_model, cfg.model, self.device)

        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.model = self.task.build_model()
        self.model.to(self.device)
        started = ""  # what train.init_from copied, for the log
        if self.tc.init_from and not (self.out / "last.pt").exists():
            extras = self.task.checkpoint_extras()
            started = init_from_checkpoint(
                self.model, self.tc.init_from, extras, data_dir
            )
        if self.dist.enabled:
            self.dist.broadcast_parameters(self.model)
            seed_rank(self.tc.seed, self.dist.rank)
        # fused: one kernel over all parameters, CPU and CUDA (clip + step of the
        # 9.75M model on 2 CPU threads: benchmarks/optimizer_step.py).
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=self.tc.lr,
            betas=self.tc.betas,
            weight_decay=self.tc.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.schedule = LRSchedule(self.tc)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.precision == "fp16"
        )
        self.state = RunState()
        self.stop_rules = StopRules(self.tc, self.dist, self.device, self.console)
        self._saved = "no checkpoint written yet"
        self._started: float | None = None  # time.time() when run() began
        self._seconds_before = 0.0  # training time of earlier runs, at run()
        last = self.out / "last.pt"
        exists = self.dist.main_only(self._prepare_out_dir)
        if exists and not resume:
            raise S2SError(
                f"{last} exists: pass --resume to continue that run, or choose "
                f"another --out"
            )
        if not exists:  # step 0: never over another run's files
            self.dist.main_only(lambda: self._start_over(resume))
        if self.dist.is_main:
            self.console.attach(self.out / "train.log")
        if started:
            self.console.print(started)
        if exists:
            self._resume(last)
        self.report: Report | None = None

    # -- one optimizer step ------------------------------------------------------

    def _step(
        self, group: list[np.ndarray]
    ) -> tuple[float, int, dict[str, int], float]:
        """Forward/backward this rank's batches of `group`, sum the gradients over
        ranks, then one optimizer step. Returns (this rank's summed loss, target
        tokens of the whole group, this rank's task counts, the gradient norm
        before clipping: NaN when the step was skipped)."""
        st, dist = self.state, self.dist
        self.model.train()
        # The whole group's tokens: every rank knows them from the batch list.
        ntok = sum(self.task.units("train", ids) for ids in group)
        st.step += 1
        if self.device.type == "cuda":
            reseed_cuda(self.tc.seed, dist.rank, st.step)
        for g in self.optimizer.param_groups:
            g["lr"] = self._lr(st.step)
        loss_sum, counts, oom = 0.0, {}, False
        try:
            split = getattr(self.task, "shard_batch", None)  # the LM: its rows
            for ids in shard(group, dist.rank, dist.world, split):
                batch = self.task.collate("train", ids).to(self.device)
                loss, batch_counts = self.task.forward_backward(
                    self.model,
                    batch,
                    scale=1.0 / ntok,
                    backward=lambda x: self.scaler.scale(x).backward(),
                    autocast=self.amp,
                )
                loss_sum += loss
                for k, v in batch_counts.items():
                    counts[k] = counts.get(k, 0) + v
        except OutOfMemory:
            oom = True  # handled outside: the traceback holds the batch's tensors
        batch = None
        any_oom, bad_loss = dist.max([oom, not math.isfinite(loss_sum)], self.device)
        if any_oom:
            self.optimizer.zero_grad(set_to_none=True)
            release_memory(self.device)
            st.oom_skipped += 1
            st.oom_in_a_row += 1
            where = "a rank" if dist.enabled else self.device
            self.console.print(
                f"[yellow]step {st.step}: out of memory on {where}, step skipped; if "
                f"this repeats, lower train.batch_tokens (now {self.tc.batch_tokens})"
            )
            return 0.0, 0, {}, math.nan
        st.oom_in_a_row = 0
        dist.sum_gradients(self.model.parameters())
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.tc.clip_norm or float("inf")
        )
        if torch.isfinite(norm):
            self.scaler.step(self.optimizer)
            st.nonfinite_in_a_row = 0
        else:
            st.skipped_steps += 1
            # fp16 with a finite loss: an overflow the scaler handles below.
            if not self.scaler.is_enabled() or bad_loss:
                st.nonfinite_in_a_row += 1
                self.console.print(
                    f"[yellow]step {st.step}: non-finite gradient, skipped"
                )
        scale = self.scaler.get_scale()
        self.scaler.update()
        if self.scaler.is_enabled() and self.scaler.get_scale() < scale:
            st.scale_drops += 1
            self.console.print(
                f"[yellow]step {st.step}: fp16 overflow, loss scale lowered to "
                f"{self.scaler.get_scale():g}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, ntok, counts, float(norm)

    # -- validation --------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        self.model.eval()
        result = self.task.validate(self.model, self.device, self.precision, self.amp)
        self.model.train()
        return result

    def _after_validation(self) -> str:
        """Validate (rank 0), keep best.pt, apply the schedule and patience on
        every rank; returns a stop reason when patience ran out."""
        st, tc = self.state, self.tc
        result = self.dist.main_only(self.validate)
        numbers = {k: round(v, 4) for k, v in result.items()}
        self.report.log(
            {
                "step": st.step,
                **numbers,
                "elapsed": round(self._clock(), 1),
                "time": round(time.time(), 1),
            }
        )
        score = selection_score(result, tc.select_by)  # lower is better
        self._check_finite("them")  # as best.pt or later as last.pt
        self.schedule.on_validation(result["valid_loss"])
        # A NaN score is never an improvement (nor would it compare as one later).
        improved = math.isfinite(score) and (st.best is None or score < st.best)
        if improved:
            st.best, st.bad_evals = score, 0
            st.best_valid = {"step": st.step, **numbers}  # for `s2s info`
            self.dist.main_only(
                lambda: self._write(self.out / "best.pt", self._payload)
            )
        else:
            st.bad_evals += 1
        shown = " ".join(
            f"{k.removeprefix('valid_')} {v:.3f}"
            if isinstance(v, float)
            else f"{k.removeprefix('valid_')} {v}"
            for k, v in result.items()
        )
        self.console.print(
            f"step {st.step}: valid {shown}" + (" *" if improved else "")
        )
        if tc.patience and st.bad_evals >= tc.patience:
            return f"no improvement in {tc.patience} validations"
        return ""

    # -- the loop ----------------------------------------------------------------

    def run(self) -> RunState:
        tc, st = self.tc, self.state
        if not (tc.max_steps or tc.max_epochs or tc.max_minutes or tc.patience):
            raise S2SError(
                "no stopping rule: set train.max_steps, train.max_epochs, "
                "train.max_minutes or train.patience"
            )
        n_params = sum(p.numel() for p in self.model.parameters())
        ranks = f" x {self.dist.world} processes" if self.dist.enabled else ""
        self.console.print(
            f"training {n_params / 1e6:.2f}M parameters on {self.device}{ranks} "
            f"({self.precision}); {self.task.describe()}; writing {self.out}"
        )
        t0 = self._started = time.time()
        self._seconds_before = st.seconds  # earlier runs of this job
        self.dist.main_only(lambda: write_run_config(self.out, self.cfg))
        self.report = report = Report(
            self.out, self.dist, self.console, tc, self._clock, st.step
        )
        try:
            with self.stop_rules, report.bar:
                stop = self._loop(t0)
            rules = self.stop_rules
            if self.last_valid != st.step and not rules.signal:
                self._after_validation()
            if self.last_save != st.step:
                self.save()
        except S2SError as e:  # the CLI prints it; train.log keeps it too
            self.console.to_file(f"error: {e}", markup=False)
            raise
        finally:
            report.close()
            if self.dist.is_main:
                unlock_run_dir(self.out)
        st.seconds = self._clock()
        self._started = None
        self.console.print(f"stopped at step {st.step}: {stop}")
        return st

    def _loop(self, t0: float) -> str:
        """Train until a stop rule fires; returns why."""
        tc, st, report = self.tc, self.state, self.report
        self.last_valid = self.last_save = st.step
        stop = self._stop_reason(t0)  # a resumed run may have nothing left to do
        # One step: the next accum_steps batches of every rank, or of all ranks
        # together when the task splits each batch between them (the LM's rows).
        per_step = tc.accum_steps
        if not hasattr(self.task, "shard_batch"):
            per_step *= self.dist.world
        while not stop:
            batches = self.task.batches("train", tc.seed, st.epoch)
            self._fit_position(len(batches))
            if st.batch >= len(batches):  # resumed by an s2s that did not know
                st.epoch, st.batch = st.epoch + 1, 0  # the list's length
                stop = self._stop_reason(t0)
                continue
            n_batches = max(len(batches), 1)
            per_epoch = n_batches / per_step  # steps, for the time left
            report.progress(st.step, st.epoch + st.batch / n_batches, per_epoch)
            while st.batch < len(batches) and not stop:
                group = batches[st.batch : st.batch + per_step]
                report.add(*self._step(group))
                error = st.bad_run(tc.max_bad_steps, tc.batch_tokens, self.device)
                if error:  # nothing saved since the last good step
                    raise S2SError(f"{error}; {self._saved}")
                st.batch += len(group)
                epoch_done = st.batch >= len(batches)
                if epoch_done:
                    st.epoch, st.batch = st.epoch + 1, 0
                report.progress(st.step, st.epoch + st.batch / n_batches, per_epoch)
                if st.step % tc.log_every == 0:
                    report.window(st, self._lr(st.step), self._counters())
                stop = self._stop_reason(t0)
                paused = time.time()  # validation and saving are not training
                if (
                    st.step % tc.valid_every == 0 or stop
                ) and not self.stop_rules.signal:
                    stop = self._after_validation() or stop
                    self.last_valid = st.step
                if st.step % tc.save_every == 0 or stop:
                    self.save()
                    self.last_save = st.step
                report.pause(time.time() - paused)
                if epoch_done:
                    break
        return stop

    def _fit_position(self, n_batches: int) -> None:
        """Resumed with another train.batch_tokens: the saved position indexes
        the epoch's old batch list; keep the share of the epoch done instead."""
        st = self.state
        if st.epoch_batches and st.epoch_batches != n_batches:
            st.batch = st.batch * n_batches // st.epoch_batches
        st.epoch_batches = n_batches

    def _lr(self, step: int) -> float:
        """Step `step`'s learning rate; train.cooldown reads the budget spent by
        the last stop check (the previous step's end, or the start of this run)."""
        used = budget_used(self.tc, step - 1, self.stop_rules.minutes)
        return self.schedule.lr(step, used)

    def _stop_reason(self, t0: float) -> str:
        st = self.state
        minutes = minutes_since(t0, self._seconds_before)
        return self.stop_rules.reason(st.step, st.epoch, minutes)

    def _counters(self) -> dict[str, Any]:
        """Run-wide counts for every metrics record."""
        st = self.state
        counters: dict[str, Any] = {
            "skipped_steps": st.skipped_steps,
            "oom_skipped": st.oom_skipped,
        }
        if self.scaler.is_enabled():
            counters.update(
                scale_drops=st.scale_drops, loss_scale=self.scaler.get_scale()
            )
        return counters
