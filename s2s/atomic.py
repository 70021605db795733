"""Writing files and directories whole or not at all.

Every writer of user data goes through here:

- `atomic_file(path)`: a temporary file beside `path`, flushed, fsynced, then
  renamed over it. A crash or a signal at any moment leaves the old file (or none),
  never a torn one that looks complete.
- `open_output(path)`: the same for a command's `--output` (`-` is stdout, a device
  such as /dev/null is written directly), with write errors turned into one-line
  `S2SError`s naming the output.
- `build_dir(path)`: a directory built beside `path` and swapped in when complete,
  so `s2s prep` never leaves a directory half old, half new; the old files are
  unlinked, not rewritten, so a process that memory-maps them keeps reading the
  old data instead of dying with SIGBUS.
- `refuse_same_file(inputs, output)`: an output that is one of the inputs (also
  through a symbolic link) is an error before anything is opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from s2s.errors import S2SError

__all__ = [
    "atomic_file",
    "build_dir",
    "fsync_dir",
    "open_output",
    "refuse_same_file",
    "remove_stale",
    "signals_raise",
]

TMP_SUFFIX = ".s2s-tmp"
# Errors of writing (not of reading an input) while a directory is built.
_WRITE_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EIO}


def fsync_dir(directory: str | Path) -> None:
    """Make a rename in `directory` durable (best effort where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; rename it over `path` when
    the block ends without an exception, delete it otherwise. OSErrors (a missing
    or read-only directory, a full disk) propagate as they are."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent or ".", prefix=f".{path.name}.", suffix=TMP_SUFFIX
    )
    # mkstemp makes 0600; the result gets the mode open() would have given.
    with contextlib.suppress(OSError):
        os.fchmod(fd, _mode(path, 0o666))
    f = os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        # Closing flushes what is buffered: on a full disk that fails again.
        with contextlib.suppress(OSError):
            f.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _mode(path: Path, default: int) -> int:
    """The permission bits of the existing `path`, else `default` less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return default & ~umask


def remove_stale(directory: str | Path, name: str = "*") -> None:
    """Delete temporaries (`.NAME.*.s2s-tmp`) a killed writer of `name` left in
    `directory` (of every name by default)."""
    for p in Path(directory).glob(f".{name}.*{TMP_SUFFIX}"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


class _Output:
    """A text stream whose write errors are `S2SError`s naming the output."""

    def __init__(self, f: IO[str], name: str):
        self._f, self.name = f, name

    def write(self, text: str) -> None:
        try:
            self._f.write(text)
        except BrokenPipeError:
            raise  # `s2s translate | head`: the reader has all it wants
        except OSError as e:
            raise _write_error(self.name, e) from None

    def flush(self) -> None:
        try:
            self._f.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _write_error(self.name, e) from None


def _write_error(name: str, e: OSError) -> S2SError:
    if name == "<stdout>":
        # Python would flush the same bytes again at exit and fail noisily.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    return S2SError(f"{name}: cannot write: {e.strerror or e}")


@contextlib.contextmanager
def open_output(output: str | Path) -> Iterator[_Output]:
    """The output of a command, opened before any work is done so that an
    unwritable one fails at once. `-` is stdout; an existing device or pipe is
    written in place; anything else is written whole at the end of the block or
    not at all (an exception, including a signal, leaves the old file)."""
    if str(output) == "-":
        if sys.stdout is None or _closed(1):
            raise S2SError("<stdout>: cannot write: standard output is closed")
        out = _Output(sys.stdout, "<stdout>")
        yield out
        out.flush()
        return
    path = Path(output)
    if path.is_dir():
        raise S2SError(f"{output}: cannot write: Is a directory")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        try:
            f = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as e:
            raise S2SError(f"{output}: cannot write: {e.strerror}") from None
        out = _Output(f, str(output))
        try:
            yield out
            out.flush()
        finally:
            with contextlib.suppress(OSError):
                f.close()
        return
    try:
        ctx = atomic_file(path)
        f = ctx.__enter__()
    except OSError as e:
        raise S2SError(f"{output}: cannot write: {e.strerror or e}") from None
    out = _Output(f, str(output))
    try:
        yield out
        out.flush()
    except BaseException:
        ctx.__exit__(*sys.exc_info())
        raise
    try:
        ctx.__exit__(None, None, None)
    except OSError as e:
        raise S2SError(f"{output}: cannot write: {e.strerror or e}") from None


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def refuse_same_file(inputs: Iterable[str | Path], output: str | Path) -> None:
    """Error if `output` is one of `inputs` (same file, through links too)."""
    if str(output) == "-" or not os.path.exists(output):
        return
    for inp in inputs:
        if str(inp) == "-":
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(inp, output):
                raise S2SError(
                    f"{output}: the output is the input {inp}; writing it would "
                    f"destroy the input, choose another --output"
                )


@contextlib.contextmanager
def build_dir(
    path: str | Path, marker: str, inputs: Iterable[str | Path] = ()
) -> Iterator[Path]:
    """Build a directory in a temporary one beside `path`, then swap it in.

    `path` may not exist, be empty, or be a directory holding `marker` (one a
    previous run of the same writer made, e.g. `meta.json` of `s2s prep`);
    anything else is refused rather than replaced, and so is a `path` holding one
    of the `inputs` (the swap would delete it). On an exception the temporary
    directory is removed and `path` is untouched.
    """
    path = Path(path)
    for inp in inputs:
        if Path(inp).resolve().is_relative_to(path.resolve()):
            raise S2SError(
                f"{path}: holds the input {inp}, which replacing the directory "
                f"would delete; choose another --out"
            )
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise S2SError(f"{path}: exists and is not a directory")
        if any(path.iterdir()) and not (path / marker).is_file():
            raise S2SError(
                f"{path}: not empty and not made by s2s (no {marker}); choose an "
                f"empty or new directory"
            )
    parent = path.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent, path.name)
        tmp = Path(
            tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        )
        tmp.chmod(_mode(path, 0o777))  # mkdtemp makes 0700
    except OSError as e:
        raise S2SError(f"{path}: cannot create ({e.strerror or e})") from None
    try:
        yield tmp
        for f in tmp.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        _swap(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in _WRITE_ERRORS:
            raise S2SError(f"{path}: cannot write ({e.strerror or e})") from None
        raise
    fsync_dir(parent)


def _swap(new: Path, path: Path) -> None:
    """Put directory `new` at `path`, exchanging the two in one step where Linux
    allows; the old one is then deleted file by file (open memory maps of its
    files stay valid: unlinked, not rewritten)."""
    if not path.exists():
        os.rename(new, path)
        return
    if _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = Path(
        tempfile.mkdtemp(dir=new.parent, prefix=f".{path.name}.old.", suffix=TMP_SUFFIX)
    )
    os.rename(path, old / "d")
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): swap two paths atomically; False if the system
    (or its file system) cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


@contextlib.contextmanager
def signals_raise(*signums: int) -> Iterator[None]:
    """Turn `signums` (e.g. SIGTERM, SIGHUP) into KeyboardInterrupt inside the
    block, so `finally` clauses run and temporaries are removed."""

    def handler(signum: int, frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {}
    try:
        for s in signums:
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread: leave the handlers alone
        pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
