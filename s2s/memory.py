"""Device memory: running out of it, and reusing it on the CPU.

Training skips a batch that does not fit (`s2s.train.trainer`); decoding splits a
batch that does not fit in halves and retries (`split_on_oom`), down to a single
input, which then is an error. `keep_freed_memory` stops the C library from handing
freed memory back to the kernel between steps.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

from s2s.errors import S2SError

__all__ = ["OutOfMemory", "keep_freed_memory", "release_memory", "split_on_oom"]

# torch.cuda.OutOfMemoryError is this class too.
OutOfMemory = torch.OutOfMemoryError

T = TypeVar("T")
R = TypeVar("R")


def keep_freed_memory() -> None:
    """Linux with glibc: serve every allocation up to 32 MB (glibc's largest
    setting) from the heap and never trim the heap, so that a tensor freed in one
    training or decoding step is reused by the next. With glibc's defaults (large
    blocks mapped straight from the kernel, the heap's free top trimmed) a 16 MB
    tensor made again and again was fresh pages every time, each one faulted in
    and zeroed by the kernel (tests/test_memory.py). Elsewhere (macOS, musl) this
    does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, (1 << 31) - 1)


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
