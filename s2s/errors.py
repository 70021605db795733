"""User-facing errors.

Anything a user can cause (a bad file, a bad flag, a mismatched checkpoint) raises
`S2SError` with a message that names the file and line where there is one. The CLI
prints the message and exits non-zero; every other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

__all__ = ["S2SError", "where"]


class S2SError(Exception):
    """An error caused by input or configuration, reported without a traceback."""


def where(path: object, line: int | None = None) -> str:
    """Format a location as `path:line` (or just `path`) for error messages."""
    return f"{path}:{line}" if line is not None else f"{path}"
