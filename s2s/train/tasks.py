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

__all__ = ["Task", "Backward"]

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
