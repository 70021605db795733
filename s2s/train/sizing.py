"""Will the model fit? Counted before a byte of it is allocated.

`model.hidden_size=100000` describes a 40-billion-parameter model: building it would
try to allocate 160 GB and die with the allocator's message, or be killed by the
kernel. The model is first built on the meta device (shapes only, no storage), its
parameters counted, and the memory training needs compared with what the device has.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from s2s.config import ModelConfig
from s2s.errors import S2SError

__all__ = ["count_parameters", "available_bytes", "check_model_fits"]

# fp32 weights, their gradients and AdamW's two moments: the least training holds.
TRAIN_BYTES_PER_PARAM = 16


def count_parameters(build: Callable[[], torch.nn.Module]) -> int:
    """Parameters of the model `build()` makes, built on the meta device."""
    with torch.device("meta"):
        model = build()
    return sum(p.numel() for p in model.parameters())


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new model on `device` (None where it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu" and sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_model_fits(
    build: Callable[[], torch.nn.Module], mc: ModelConfig, device: torch.device
) -> int:
    """Raise S2SError naming the size when training the model `build()` makes
    cannot fit in `device`'s free memory; returns its parameter count."""
    n = count_parameters(build)
    free = available_bytes(device)
    need = n * TRAIN_BYTES_PER_PARAM
    if free is not None and need > free:
        sizes = (
            f"model.emb_dim={mc.emb_dim}, model.enc_hidden_size={mc.enc_hidden_size}, "
            f"model.hidden_size={mc.hidden_size}"
        )
        raise S2SError(
            f"the model ({sizes}) has {n / 1e9:,.2f}G parameters: {_gb(4 * n)} of "
            f"weights, at least {_gb(need)} to train, but {device} has "
            f"{_gb(free)} free"
        )
    return n
