"""Torch-free runtime for models exported by `s2s export`.

It imports numpy, onnxruntime, sentencepiece and (for audio) soundfile, nothing
else: `pip install ./runtime` gives `s2s-run translate|transcribe --model DIR`.
The searches mirror `s2s.decode` line for line, in numpy around the exported
decoder step.
"""

import os

# The runtime's own matrix products are small (the mel filter bank): OpenBLAS's
# worker threads would only spin beside onnxruntime's. Read when numpy loads, so
# set before any module here imports it (a process that loaded numpy earlier
# keeps its setting). Measured: benchmarks/README.md, "Deploy without torch".
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__all__ = ["RunError"]


class RunError(Exception):
    """A user-caused error: printed as one line by `s2s-run`, exit status 1."""
