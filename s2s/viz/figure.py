"""matplotlib, imported on demand with the Agg backend, and atomic PNG writing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2s.atomic import atomic_file
from s2s.errors import S2SError

__all__ = ["pyplot", "save_png", "DPI"]

DPI = 100  # a figsize of (w, h) inches is a PNG of (100 w, 100 h) pixels

PLOT_HINT = (
    "s2s plot needs matplotlib: pip install 's2s[plot]' (or pip install matplotlib)"
)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed); an S2SError naming
    the extra to install when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise S2SError(PLOT_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, out: Path) -> None:
    """Write `fig` to `out` as PNG (temporary file beside it, then a rename) and
    close it."""
    out = Path(out)
    if not out.parent.is_dir():
        raise S2SError(f"{out}: no such directory {out.parent}")
    try:
        with atomic_file(out, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
    except OSError as e:
        raise S2SError(f"{out}: cannot write ({e.strerror or e})") from None
    finally:
        pyplot().close(fig)
