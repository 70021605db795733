"""One training per run directory: an advisory lock on `OUT/.lock`.

A second `s2s train` into a directory a live training holds is refused before it
touches anything there (it would otherwise remove the live run's temporary
checkpoint, interleave metrics.jsonl and overwrite best.pt). The lock is an
`flock` on an open file, so the kernel releases it when the process dies, however
it dies: no stale lock to clear by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from s2s.errors import S2SError

__all__ = ["lock_run_dir", "unlock_run_dir"]

LOCK_NAME = ".lock"
# This process's locks by directory: a second Trainer in the same process (tests,
# a notebook) re-enters its own lock instead of deadlocking on it.
_held: dict[str, int] = {}


def lock_run_dir(directory: str | Path) -> None:
    """Take `directory`'s lock or fail naming the process that holds it."""
    key = os.path.realpath(directory)
    if key in _held:
        return
    path = Path(directory) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise S2SError(f"{path}: cannot create the run lock ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise S2SError(
            f"{directory} is in use by another training (pid {holder}); wait for "
            f"it to end or choose another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = fd


def unlock_run_dir(directory: str | Path) -> None:
    """Release the lock this process holds on `directory` (if any)."""
    fd = _held.pop(os.path.realpath(directory), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
