"""Running out of device memory: shared by training and decoding.

Training skips a batch that does not fit (`s2s.train.trainer`); decoding splits a
batch that does not fit in halves and retries (`split_on_oom`), down to a single
input, which then is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from s2s.errors import S2SError

__all__ = ["OutOfMemory", "release_memory", "split_on_oom"]

# torch.cuda.OutOfMemoryError is this class too.
OutOfMemory = torch.OutOfMemoryError

T = TypeVar("T")
R = TypeVar("R")


def release_memory(device: torch.device) -> None:
    """Hand cached blocks back after an out-of-memory error, so that the next
    (smaller) batch does not fail on fragmentation."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def split_on_oom(
    run: Callable[[list[T]], list[R]],
    items: list[T],
    device: torch.device,
    hint: str,
) -> list[R]:
    """`run(items)`, or on out-of-memory `run` over each half, recursively.

    `run` must return one result per item, in order. A single item that does not
    fit raises S2SError with `hint` (what the user can lower).
    """
    try:
        return run(items)
    except OutOfMemory:
        pass  # leave the except block first: its traceback holds the tensors
    release_memory(device)
    if len(items) == 1:
        raise S2SError(f"out of memory on {device} with a batch of one input; {hint}")
    half = len(items) // 2
    return split_on_oom(run, items[:half], device, hint) + split_on_oom(
        run, items[half:], device, hint
    )
