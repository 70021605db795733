"""Precision contexts shared by training and decoding."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch

from s2s.errors import S2SError

__all__ = ["autocast_for"]


def autocast_for(device: torch.device, precision: str):
    """The autocast context for a precision name on a device (fp32: none)."""
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise S2SError("precision fp16 needs a CUDA device; use bf16 on the CPU")
    if precision == "bf16" and device.type == "cpu" and not _cpu_has_bf16():
        warnings.warn(
            "this CPU has no AVX-512 BF16 instructions: bf16 matrix products are "
            "emulated and far slower than fp32 here; use precision fp32",
            stacklevel=2,
        )
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _cpu_has_bf16() -> bool:
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())
