"""The device a command runs on: `train.device` or decoding's `--device`."""

from __future__ import annotations

import torch

from s2s.errors import S2SError

__all__ = ["pick_device"]


def pick_device(name: str) -> torch.device:
    """The device of `train.device` (or decoding's `--device`) in one process."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise S2SError(f"train.device={name} but no CUDA device is available")
    return device
