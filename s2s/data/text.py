"""Reading text files line by line, strictly.

Every reader names the file and line of what it rejects: bytes that are not UTF-8, NUL
bytes, empty lines, and parallel files whose line counts differ. Lines end at LF only
(as `wc -l` counts them): a CR before it is dropped, a lone CR inside a line becomes
a space like any other whitespace. Lines are streamed, so memory stays bounded
whatever the corpus size.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from s2s.errors import S2SError, where

__all__ = ["iter_lines", "iter_parallel", "clean_line"]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def clean_line(raw: bytes, path: object, lineno: int) -> str:
    """Decode one raw line (newline included or not) into normalised text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        hint = " (it looks like UTF-16)" if raw[:2] in _UTF16_BOMS else ""
        raise S2SError(
            f"{where(path, lineno)}: not valid UTF-8 (byte {raw[e.start]:#04x} at "
            f"column {e.start + 1}){hint}"
        ) from None
    # A byte-order mark is not text, wherever it is: files joined with `cat` carry
    # one at the start of each part.
    text = text.replace("\ufeff", "")
    if "\x00" in text:
        raise S2SError(f"{where(path, lineno)}: contains a NUL byte")
    text = text.rstrip("\r\n")
    # Tabs and odd spaces become plain spaces; NFC so that equal text is equal bytes.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _open(path: str | Path) -> BinaryIO:
    if str(path) == "-":
        if sys.stdin is None:
            raise S2SError("<stdin>: cannot read: standard input is closed")
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's ExitStack
    except OSError as e:
        raise S2SError(f"{path}: cannot open: {e.strerror}") from None


def iter_lines(path: str | Path, allow_empty: bool = True) -> Iterator[str]:
    """Yield the cleaned lines of `path` (`-` is stdin)."""
    name = "<stdin>" if str(path) == "-" else path
    with ExitStack() as stack:
        f = _open(path)
        if str(path) != "-":
            stack.enter_context(f)
        for lineno, raw in enumerate(f, 1):
            line = clean_line(raw, name, lineno)
            if not line and not allow_empty:
                raise S2SError(f"{where(name, lineno)}: empty line")
            yield line


def iter_parallel(
    src_path: str | Path, tgt_path: str | Path, drop_empty: bool = False
) -> Iterator[tuple[int, str, str]]:
    """Yield `(line_number, source, target)` from two line-aligned files.

    An empty line on either side is an error unless `drop_empty`, in which case the
    pair is skipped (the caller counts what it does not receive: yielded line
    numbers have gaps). Different line counts are an error naming the shorter file.
    """
    with open_pair(src_path, tgt_path) as (fs, ft):
        lineno = 0
        while True:
            rs, rt = fs.readline(), ft.readline()
            if not rs or not rt:
                break
            lineno += 1
            s = clean_line(rs, src_path, lineno)
            t = clean_line(rt, tgt_path, lineno)
            if not s or not t:
                if drop_empty:
                    continue
                empty = src_path if not s else tgt_path
                raise S2SError(
                    f"{where(empty, lineno)}: empty line (use --drop-empty to skip "
                    f"such pairs)"
                )
            yield lineno, s, t
        if rs or rt:
            longer, shorter = (src_path, tgt_path) if rs else (tgt_path, src_path)
            raise S2SError(
                f"{shorter} has {lineno} lines but {longer} has more "
                f"(first unmatched line: {where(longer, lineno + 1)})"
            )


class open_pair:
    """Open two files for binary reading, closing both on exit."""

    def __init__(self, a: str | Path, b: str | Path):
        self.paths = (a, b)
        self.stack = ExitStack()

    def __enter__(self) -> tuple[BinaryIO, BinaryIO]:
        files = []
        for p in self.paths:
            f = _open(p)
            self.stack.enter_context(f)
            files.append(f)
        return files[0], files[1]

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
