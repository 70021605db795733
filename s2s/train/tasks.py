"""Tasks: what the training loop needs to know about translation, CTC, ...

The trainer (`s2s.train.trainer`) is one loop for every task; a task object owns
what differs between them: the data of a prep directory, grouping it into batches,
turning a batch of indices into tensors, one forward/backward, the
validation numbers, and what a checkpoint must carry besides the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from s2s.config import Config
from s2s.data.binarized import read_meta
from s2s.errors import S2SError

__all__ = ["Task", "load_task", "Backward"]

Backward = Callable[[torch.Tensor], None]


class Task(Protocol):
    def describe(self) -> str:
        """What the training split holds, for the first log line."""
        ...

    def build_model(self) -> nn.Module:
        """The model of `cfg.model`, sized for this data."""
        ...

    def batches(
        self, split: str, seed: int = 0, epoch: int = 0, shuffle: bool = True
    ) -> list[np.ndarray]:
        """Item indices of `split` in batches of `train.batch_tokens` (a pure
        function of its arguments: exact resuming relies on it)."""
        ...

    def units(self, split: str, ids: np.ndarray) -> int:
        """What the loss of items `ids` is normalised by (target tokens)."""
        ...

    def collate(self, split: str, ids: np.ndarray) -> Any:
        """Items `ids` of `split` as a batch with a `.to(device)` method."""
        ...

    def forward_backward(
        self, model: nn.Module, batch: Any, scale: float, backward: Backward, autocast
    ) -> tuple[float, dict[str, int]]:
        """Run the batch under `autocast`, call `backward(loss_sum * scale)`, and
        return the summed loss and counts to report (e.g. infinite CTC losses)."""
        ...

    def validate(
        self, model: nn.Module, device: torch.device, precision: str, autocast
    ) -> dict[str, float]:
        """valid_loss plus the task's numbers (valid_bleu, valid_wer, ...)."""
        ...

    def checkpoint_extras(self) -> dict[str, Any]:
        """What decoding needs besides config and weights: vocabularies, ..."""
        ...

    def check_resume(self, ckpt: dict[str, Any], path: Path) -> None:
        """Raise S2SError if `ckpt` was trained on data that differs from ours."""
        ...

    # Optional, for a task that carries state from one batch to the next (the LM's
    # hidden state): `state_dict() -> dict` and `load_state_dict(dict)`. The
    # trainer stores it in last.pt as "task_state" (under torchrun every rank's,
    # like the RNG states) and restores it on resume (with the same world size).
    #
    # Optional, for such a task under torchrun: `shard_batch(ids, rank, world)`,
    # rank's part of batch `ids` (or None). Every rank then runs every batch, its
    # part of it, in order, instead of every world-th batch
    # (`s2s.train.distributed.shard`); the LM splits its rows this way.


# Which `s2s prep` output each model.task trains on, and the task to suggest for it.
_DATA_FOR_TASK = {
    "translation": "translation",
    "ctc": "speech",
    "joint": "speech",
    "lm": "monolingual",
}
_TASK_FOR_DATA = {
    "translation": "translation",
    "speech": "ctc (or joint)",
    "monolingual": "lm",
}


def load_task(cfg: Config, data_dir: str | Path) -> Task:
    """The task of `cfg.model.task`, reading the prep directory `data_dir`."""
    kind = read_meta(data_dir).get("task")
    task = cfg.model.task
    if kind != _DATA_FOR_TASK[task]:
        other = _TASK_FOR_DATA.get(kind)
        hint = f"; set model.task={other}" if other else ""
        raise S2SError(
            f"{data_dir} holds {kind} data (s2s prep), but model.task={task} needs "
            f"{_DATA_FOR_TASK[task]} data{hint}"
        )
    if task == "translation":
        from s2s.train.translation_task import TranslationTask

        return TranslationTask(cfg, data_dir)
    if task == "joint":
        from s2s.train.joint_task import JointTask

        return JointTask(cfg, data_dir)
    if task == "lm":
        from s2s.train.lm_task import LMTask

        return LMTask(cfg, data_dir)
    from s2s.train.ctc_task import CTCTask

    return CTCTask(cfg, data_dir)
