"""The run directory and checkpoints of a `Trainer`: the out directory checked and
locked, last.pt / step-N.pt / best.pt written, and a run resumed from last.pt.

`Checkpointing` is the half of `s2s.train.trainer.Trainer` that deals with files; it
reads the trainer's model, optimizer, schedule, scaler, state, task and
process group, and is not used alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from s2s.checkpoint import (
    check_output_dir,
    load_checkpoint,
    numbered_checkpoints,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from s2s.errors import S2SError
from s2s.train.distributed import seed_rank
from s2s.train.lock import lock_run_dir
from s2s.train.resume import (
    INEXACT_KEYS,
    check_continuation,
    check_fresh_start,
    check_resumable,
    trim_metrics,
    versions_note,
)
from s2s.train.state import RunState

__all__ = ["Checkpointing"]


class Checkpointing:
    """Run directory, saving and resuming, for `Trainer` (which sets every
    attribute these methods read)."""

    def _prepare_out_dir(self) -> bool:
        """Rank 0: check the run directory can take our checkpoints; whether a
        last.pt is there to resume."""
        # A full checkpoint: weights and AdamW's two moments, fp32.
        n_bytes = sum(3 * 4 * p.numel() for p in self.model.parameters()) + 2**20
        check_output_dir(self.out, n_bytes)
        lock_run_dir(self.out)  # before anything here is touched
        remove_stale_temporaries(self.out)
        return (self.out / "last.pt").exists()

    def _start_over(self, resume: bool) -> None:
        """Rank 0, no last.pt: refuse another run's checkpoints; with --resume, a
        run killed before its first checkpoint starts over, its log too."""
        check_fresh_start(self.out, resume)
        dropped = trim_metrics(self.out / "metrics.jsonl", 0)
        if dropped:
            self.console.print(
                f"no checkpoint in {self.out}: starting at step 0, {dropped} "
                f"metrics.jsonl records of the run that stopped before its first "
                f"checkpoint dropped"
            )

    # -- checkpoints -------------------------------------------------------------

    def _payload(
        self, rng: list[dict] | None = None, task_states: list[dict] | None = None
    ) -> dict[str, Any]:
        """What a checkpoint holds; with the RNG states of every rank (`rng`), also
        what resuming needs, including the task's carried state of every rank
        (`task_states`) when it has one."""
        payload = {
            "config": self.cfg.to_dict(),
            "data_dir": str(self.data_dir.resolve()),  # `--resume` needs no --data
            **self.task.checkpoint_extras(),
            "model": self.model.state_dict(),
            "state": {**asdict(self.state), "seconds": self._clock()},
        }
        if rng is not None:
            payload.update(
                optimizer=self.optimizer.state_dict(),
                schedule=self.schedule.state_dict(),
                scaler=self.scaler.state_dict(),
                rng=rng[0],
            )
            if len(rng) > 1:
                payload["rng_ranks"] = rng
            if task_states is not None:  # e.g. the LM's carried state
                payload["task_state"] = task_states[0]
                if len(task_states) > 1:
                    payload["task_state_ranks"] = task_states
        return payload

    def _write(self, path: Path, payload: Callable[[], dict[str, Any]]) -> None:
        try:
            save_checkpoint(path, payload())
        except OSError as e:
            raise S2SError(
                f"cannot write {path} ({e.strerror or e}); stopped at step "
                f"{self.state.step}, {self._saved}"
            ) from None
        except S2SError as e:  # e.g. non-finite weights, never written
            raise S2SError(
                f"{e}; stopped at step {self.state.step}, {self._saved}"
            ) from None

    def _clock(self) -> float:
        """Training seconds of this job so far, earlier runs included."""
        if self._started is None:
            return self.state.seconds
        return self._seconds_before + time.time() - self._started

    def save(self) -> None:
        """last.pt with everything needed to resume; step-N.pt with the weights
        only (for `s2s average`), a third of the size."""
        st = self.state
        st.seconds = self._clock()  # this run's time so far, for max_minutes
        rng = self.dist.gather(rng_state(self.device))  # every rank's, for resuming
        task_states = None
        if hasattr(self.task, "state_dict"):  # per rank, like the RNG states
            task_states = self.dist.gather(self.task.state_dict())
        self._check_finite("them")

        def write() -> None:
            self._write(self.out / "last.pt", lambda: self._payload(rng, task_states))
            if self.tc.keep_last:
                self._write(self.out / f"step-{st.step}.pt", self._payload)
            steps = numbered_checkpoints(self.out)
            for old in steps[: max(len(steps) - self.tc.keep_last, 0)]:
                old.unlink()

        self.dist.main_only(write)
        self._saved = f"{self.out / 'last.pt'} holds step {st.step}"

    def _check_finite(self, what: str) -> None:
        """Weights with NaN or inf are never saved: stop, naming what is kept."""
        if not all(bool(p.isfinite().all()) for p in self.model.parameters()):
            raise S2SError(
                f"step {self.state.step}: the weights are not finite, not saving "
                f"{what}; {self._saved} (lower train.lr?)"
            )

    def _resume(self, path: Path) -> None:
        if self.dist.enabled and not path.is_file():
            raise S2SError(
                f"{path}: rank {self.dist.rank} cannot see the checkpoint rank 0 "
                f"resumes from; --out must be on a filesystem all nodes share"
            )
        ckpt = load_checkpoint(path)
        check_resumable(ckpt, path)
        self.task.check_resume(ckpt, path)
        changes = check_continuation(ckpt["config"], self.cfg, path)
        inexact = [c for c in changes if c.split()[0] in INEXACT_KEYS]
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        if ckpt["scaler"] or not self.scaler.is_enabled():  # fp16 now, not before:
            self.scaler.load_state_dict(ckpt["scaler"])  # a fresh loss scale
        self.state = RunState(**ckpt["state"])
        self._saved = f"{path} holds step {self.state.step}"
        rank, world = self.dist.rank, self.dist.world
        ranks = ckpt.get("rng_ranks", [ckpt["rng"]])
        if len(ranks) == world:
            set_rng_state(ranks[rank], self.device)
        else:  # the weights resume exactly, dropout's randomness cannot
            seed_rank(self.tc.seed + self.state.step, rank)
            self.console.print(
                f"[yellow]{path} comes from a run of world size {len(ranks)}, this "
                f"one has {world}: it continues, but not bit-for-bit"
            )
        if "task_state" in ckpt and len(ranks) == world and not inexact:
            # Per rank too (the LM: its rows' state). Split differently between
            # ranks, or into other rows, it starts afresh from the next batch.
            states = ckpt.get("task_state_ranks", [ckpt["task_state"]])
            self.task.load_state_dict(states[rank])
        if inexact:
            self.console.print(
                f"[yellow]{', '.join(inexact)}: the run continues with other "
                f"batches, not bit-for-bit as it would have"
            )
        self.console.print(
            f"resumed {path} at step {self.state.step} (epoch {self.state.epoch + 1}, "
            f"batch {self.state.batch}) with the config it holds{versions_note(ckpt)}; "
            + (f"changed: {'; '.join(changes)}" if changes else "nothing changed")
        )
        recorded = ckpt.get("data_dir")
        if recorded and Path(recorded) != self.data_dir.resolve():
            self.console.print(
                f"{path} was trained on {recorded}; it continues on "
                f"{self.data_dir} (same vocabulary)"
            )
        self.dist.main_only(lambda: self._trim_log(self.state.step))

    def _trim_log(self, step: int) -> None:
        """Rank 0: drop the records a killed run wrote after its last save."""
        dropped = trim_metrics(self.out / "metrics.jsonl", step)
        if dropped:
            self.console.print(
                f"metrics.jsonl: {dropped} records after step {step} dropped (written "
                f"after the last checkpoint; those steps run again)"
            )
