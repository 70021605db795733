"""Precision contexts shared by training and decoding."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch

from s2s.errors import S2SError

__all__ = ["autocast_for", "for_decoding", "train_precision"]


def train_precision(precision: str, device: torch.device) -> str:
    """The precision `train.precision` means on `device`: `auto` is bf16 on a CPU
    with bf16 instructions (AVX-512 BF16: 1.38 times the steps per second of fp32
    for the asr-cs model at the same loss, benchmarks/train_precision.py in
    recipes/asr-cs/RESULTS.md) and fp32 elsewhere (other
    CPUs emulate bf16, tens of times slower; on a GPU recipes/mt-de-en measured
    fp32 and bf16 alike). The others mean themselves."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and _cpu_has_bf16() else "fp32"


def for_decoding(model: torch.nn.Module, device: torch.device, precision: str):
    """The model as decoding runs it: int8 swaps its nn.Linear and nn.LSTM layers for
    dynamically quantized ones (int8 weights, activations quantized per batch; CPU
    only); other precisions keep the model and run it under `autocast_for`."""
    _check_name(precision)
    if precision != "int8":
        return model
    if device.type != "cpu":
        raise S2SError(
            "precision int8 decodes on the CPU only: add --device cpu, or use bf16 "
            "on a GPU"
        )
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice
        warnings.simplefilter("ignore")
        return quantize_dynamic(
            model, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8
        )


def autocast_for(device: torch.device, precision: str):
    """The autocast context for a precision name on a device (fp32, int8: none)."""
    _check_name(precision)
    if precision in ("fp32", "int8"):
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


def _check_name(precision: str) -> None:
    if precision not in ("fp32", "bf16", "fp16", "int8"):
        raise S2SError(f"unknown precision {precision!r}: fp32, bf16, fp16 or int8")


def _cpu_has_bf16() -> bool:
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())
