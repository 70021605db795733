"""Reading input lines as `s2s.data.text.iter_lines` does: LF ends a line, a CR
before it is dropped, byte-order marks are dropped wherever they are, whitespace
is folded to single spaces after NFC; bytes that are not UTF-8 and NUL bytes are
errors naming the file and line."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator

from s2s_runtime import RunError

__all__ = ["iter_lines"]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _clean(raw: bytes, name: str, lineno: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        hint = " (it looks like UTF-16)" if raw[:2] in _UTF16_BOMS else ""
        raise RunError(
            f"{name}:{lineno}: not valid UTF-8 (byte {raw[e.start]:#04x} at "
            f"column {e.start + 1}){hint}"
        ) from None
    text = text.replace("\ufeff", "")
    if "\x00" in text:
        raise RunError(f"{name}:{lineno}: contains a NUL byte")
    return " ".join(unicodedata.normalize("NFC", text.rstrip("\r\n")).split())


def iter_lines(path: str) -> Iterator[str]:
    """The cleaned lines of `path` (`-` is stdin)."""
    if path == "-":
        for lineno, raw in enumerate(sys.stdin.buffer, 1):
            yield _clean(raw, "<stdin>", lineno)
        return
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise RunError(f"{path}: cannot open: {e.strerror}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            yield _clean(raw, path, lineno)
