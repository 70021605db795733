"""The training loop: batches in, optimizer steps out; validation, checkpoints, logs.

The loop knows tasks (translation, CTC) only through `s2s.train.tasks.Task`: the
task reads the data, collates batches, runs one forward/backward and validates.

Resuming is exact: the batch order of an epoch is a function of (seed, epoch), and a
checkpoint stores the position inside it with every optimizer, schedule and RNG
state, so an interrupted-then-resumed run ends with the same parameters as one that
ran straight through.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2s.config import Config
from s2s.errors import S2SError
from s2s.precision import autocast_for
from s2s.train.checkpoint import (
    load_checkpoint,
    numbered_checkpoints,
    save_checkpoint,
)
from s2s.train.schedule import LRSchedule
from s2s.train.tasks import load_task

__all__ = ["Trainer", "RunState", "pick_device"]


@dataclass
class RunState:
    step: int = 0  # optimizer steps taken
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # next batch of the epoch's batch list
    best: float | None = None  # best validation score so far (lower is better)
    bad_evals: int = 0  # validations since the best one
    seconds: float = 0.0  # training time of earlier runs of this job
    skipped_steps: int = 0  # steps dropped for non-finite gradients


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise S2SError(f"train.device={name} but no CUDA device is available")
    return device


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
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

        self.cfg, self.tc = cfg, cfg.train
        self.out = Path(out_dir)
        self.console = console or Console(stderr=True)
        if self.tc.threads:
            torch.set_num_threads(self.tc.threads)
        self.device = pick_device(self.tc.device)
        self.amp = autocast_for(self.device, self.tc.precision)
        self.task = load_task(cfg, data_dir)

        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.model = self.task.build_model()
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=self.tc.lr,
            betas=self.tc.betas,
            weight_decay=self.tc.weight_decay,
        )
        self.schedule = LRSchedule(self.tc)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.tc.precision == "fp16"
        )
        self.state = RunState()
        self._signal = ""  # name of a stop signal received while training
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and (self.out / "last.pt").exists():
            self._resume(self.out / "last.pt")
        elif (self.out / "last.pt").exists():
            raise S2SError(
                f"{self.out / 'last.pt'} exists: pass --resume to continue that run, "
                f"or choose another --out"
            )
        self.metrics = open(self.out / "metrics.jsonl", "a")  # noqa: SIM115

    # -- checkpoints -------------------------------------------------------------

    def _payload(self, with_optimizer: bool = True) -> dict[str, Any]:
        payload = {
            "config": self.cfg.to_dict(),
            **self.task.checkpoint_extras(),
            "model": self.model.state_dict(),
            "state": asdict(self.state),
        }
        if with_optimizer:
            payload.update(
                optimizer=self.optimizer.state_dict(),
                schedule=self.schedule.state_dict(),
                scaler=self.scaler.state_dict(),
                rng=_rng_state(),
            )
            if hasattr(self.task, "state_dict"):  # e.g. the LM's carried state
                payload["task_state"] = self.task.state_dict()
        return payload

    def save(self) -> None:
        """last.pt with everything needed to resume; step-N.pt with the weights
        only (for `s2s average`), a third of the size."""
        save_checkpoint(self.out / "last.pt", self._payload())
        save_checkpoint(
            self.out / f"step-{self.state.step}.pt", self._payload(with_optimizer=False)
        )
        for old in numbered_checkpoints(self.out)[: -self.tc.keep_last]:
            old.unlink()

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        self.task.check_resume(ckpt, path)
        old_model = ckpt["config"]["model"]
        new_model = self.cfg.to_dict()["model"]
        diff = [k for k in new_model if old_model.get(k) != new_model[k]]
        if diff:
            raise S2SError(
                f"{path}: model settings differ from the checkpoint's: "
                + ", ".join(
                    f"model.{k} {old_model.get(k)!r} -> {new_model[k]!r}" for k in diff
                )
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = RunState(**ckpt["state"])
        _set_rng_state(ckpt["rng"])
        if "task_state" in ckpt:
            self.task.load_state_dict(ckpt["task_state"])
        self.console.print(
            f"resumed {path} at step {self.state.step} (epoch {self.state.epoch + 1}, "
            f"batch {self.state.batch})"
        )

    # -- one optimizer step ------------------------------------------------------

    def _step(self, group: list[np.ndarray]) -> tuple[float, int, dict[str, int]]:
        """Forward/backward every batch of `group`, then one optimizer step.
        Returns (summed loss, target tokens, the task's counts)."""
        self.model.train()
        ntok = sum(self.task.units("train", ids) for ids in group)
        step = self.state.step + 1
        lr = self.schedule.lr(step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        loss_sum, counts = 0.0, {}
        for ids in group:
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
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.tc.clip_norm or float("inf")
        )
        if torch.isfinite(norm):
            self.scaler.step(self.optimizer)
        else:
            self.state.skipped_steps += 1
            self.console.print(f"[yellow]step {step}: non-finite gradient, skipped")
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step = step
        return loss_sum, ntok, counts

    # -- validation --------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        self.model.eval()
        result = self.task.validate(
            self.model, self.device, self.tc.precision, self.amp
        )
        self.model.train()
        return result

    def _log(self, record: dict[str, Any]) -> None:
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()

    # -- the loop ----------------------------------------------------------------

    def run(self) -> RunState:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        tc, st = self.tc, self.state
        if not (tc.max_steps or tc.max_epochs or tc.max_minutes or tc.patience):
            raise S2SError(
                "no stopping rule: set train.max_steps, train.max_epochs, "
                "train.max_minutes or train.patience"
            )
        n_params = sum(p.numel() for p in self.model.parameters())
        self.console.print(
            f"training {n_params / 1e6:.2f}M parameters on {self.device} "
            f"({tc.precision}); {self.task.describe()}; writing {self.out}"
        )
        t0 = time.time()
        window = {"loss": 0.0, "tok": 0, "t": time.time(), "counts": {}}
        self._signal = ""
        old_handlers = {}
        if threading.current_thread() is threading.main_thread():
            old_handlers = {
                sig: signal.signal(sig, self._on_signal)
                for sig in (signal.SIGINT, signal.SIGTERM)
            }
        last_valid = last_save = st.step
        stop = self._stop_reason(t0)  # a resumed run may have nothing left to do
        columns = [
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(
                "train", total=tc.max_steps or None, completed=st.step, info=""
            )
            while not stop:
                batches = self.task.batches("train", tc.seed, st.epoch)
                while st.batch < len(batches) and not stop:
                    group = batches[st.batch : st.batch + tc.accum_steps]
                    loss, ntok, counts = self._step(group)
                    st.batch += len(group)
                    epoch_done = st.batch >= len(batches)
                    if epoch_done:
                        st.epoch, st.batch = st.epoch + 1, 0
                    window["loss"] += loss
                    window["tok"] += ntok
                    for k, v in counts.items():
                        window["counts"][k] = window["counts"].get(k, 0) + v
                    if st.step % tc.log_every == 0:
                        self._log_window(window, bar, task)
                    bar.update(task, completed=st.step)
                    stop = self._stop_reason(t0)
                    paused = time.time()  # validation and saving are not training
                    if (st.step % tc.valid_every == 0 or stop) and not self._signal:
                        stop = self._after_validation(bar, task) or stop
                        last_valid = st.step
                    if st.step % tc.save_every == 0 or stop:
                        self.save()
                        last_save = st.step
                    window["t"] += time.time() - paused
                    if epoch_done:
                        break
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if last_valid != st.step and not self._signal:
            self._after_validation(None, None)
        if last_save != st.step:
            self.save()
        st.seconds += time.time() - t0
        self.console.print(f"stopped at step {st.step}: {stop}")
        self.metrics.close()
        return st

    def _on_signal(self, signum: int, frame) -> None:
        """SIGINT/SIGTERM: finish the step under way, save last.pt, exit cleanly.
        A second signal interrupts at once."""
        if self._signal:
            raise KeyboardInterrupt
        self._signal = signal.Signals(signum).name
        self.console.print(
            f"[yellow]{self._signal}: saving a checkpoint after this step "
            f"(again to abort)"
        )

    def _stop_reason(self, t0: float) -> str:
        tc, st = self.tc, self.state
        if self._signal:
            return f"{self._signal} received; resume with --resume"
        if tc.max_steps and st.step >= tc.max_steps:
            return f"train.max_steps={tc.max_steps} reached"
        if tc.max_epochs and st.epoch >= tc.max_epochs:
            return f"train.max_epochs={tc.max_epochs} reached"
        minutes = (st.seconds + time.time() - t0) / 60
        if tc.max_minutes and minutes >= tc.max_minutes:
            return f"train.max_minutes={tc.max_minutes} reached"
        return ""

    def _log_window(self, window: dict, bar, task) -> None:
        st = self.state
        dt = max(time.time() - window["t"], 1e-9)
        loss = window["loss"] / max(window["tok"], 1)
        record = {
            "step": st.step,
            "epoch": st.epoch + 1,
            "loss": round(loss, 4),
            "lr": self.schedule.lr(st.step),
            "tok_per_s": round(window["tok"] / dt, 1),
            **window["counts"],  # e.g. inf_losses: CTC utterances left out
            "time": round(time.time(), 1),
        }
        self._log(record)
        counts = "".join(f" | {k} {v}" for k, v in window["counts"].items())
        bar.update(
            task,
            info=f"loss {loss:.3f} | {record['tok_per_s']:.0f} tok/s | "
            f"lr {record['lr']:.2e} | epoch {st.epoch + 1}{counts}",
        )
        window.update(loss=0.0, tok=0, t=time.time(), counts={})

    def _after_validation(self, bar, task) -> str:
        """Validate, keep best.pt, apply the schedule and patience; returns a stop
        reason when patience ran out."""
        st, tc = self.state, self.tc
        result = self.validate()
        self._log({"step": st.step, **{k: round(v, 4) for k, v in result.items()}})
        # Lower is better: BLEU counts negated; without the number, the loss.
        key = f"valid_{tc.select_by}"
        score = result.get(key, result["valid_loss"])
        if key == "valid_bleu" and key in result:
            score = -score
        self.schedule.on_validation(result["valid_loss"])
        improved = st.best is None or score < st.best
        if improved:
            st.best, st.bad_evals = score, 0
            save_checkpoint(self.out / "best.pt", self._payload(with_optimizer=False))
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
