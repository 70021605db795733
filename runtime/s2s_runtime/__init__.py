"""Torch-free runtime for models exported by `s2s export`.

It imports numpy, onnxruntime, sentencepiece and (for audio) soundfile, nothing
else: `pip install ./runtime` gives `s2s-run translate|transcribe --model DIR`.
The searches mirror `s2s.decode` line for line, in numpy around the exported
decoder step.
"""

__all__ = ["RunError"]


class RunError(Exception):
    """A user-caused error: printed as one line by `s2s-run`, exit status 1."""
