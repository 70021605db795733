"""s2s: BiLSTM encoder, attention LSTM decoder: translation and speech recognition.

The Python API (`s2s.decode.api`), loaded on first use so that `import s2s` stays
light (no torch):

    from s2s import Translator
    Translator("runs/x/best.pt", beam=5).translate(["Guten Morgen."])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from s2s._version import __version__
from s2s.errors import S2SError

if TYPE_CHECKING:
    from s2s.decode.api import Transcriber, Translator

__all__ = ["Translator", "Transcriber", "S2SError", "__version__"]


def __getattr__(name: str) -> object:
    if name in ("Translator", "Transcriber"):
        from s2s.decode import api

        return getattr(api, name)
    raise AttributeError(f"module 's2s' has no attribute {name!r}")
