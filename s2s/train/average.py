"""Checkpoint averaging (`s2s average`)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from s2s.checkpoint import load_checkpoint, numbered_checkpoints, save_checkpoint
from s2s.errors import S2SError

__all__ = ["average_checkpoints"]


def average_checkpoints(run: str | Path, out: str | Path, last: int) -> list[Path]:
    """Average the model parameters of the last `last` step-N.pt files of `run`.

    The result keeps the newest checkpoint's config and vocabularies and no optimizer
    state: it is for decoding. Returns the files used.
    """
    if last < 1:  # [-0:] would be every file, [--2:] the newest alone
        raise S2SError(f"--last must be >= 1, got {last}")
    out = Path(out)
    if out.name in ("last.pt", "best.pt") or re.fullmatch(r"step-\d+\.pt", out.name):
        raise S2SError(
            f"{out}: {out.name} is written by training (last.pt holds what --resume "
            f"needs, step-N.pt what is averaged); average into another file, e.g. "
            f"avg.pt"
        )
    paths = numbered_checkpoints(run)[-last:]
    if not paths:
        raise S2SError(f"{run}: no step-N.pt checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    newest = None
    for p in paths:
        ckpt = load_checkpoint(p)
        if newest is not None and ckpt["vocab"] != newest["vocab"]:
            raise S2SError(f"{p}: different vocabulary from {paths[-1]}")
        for k, v in ckpt["model"].items():
            if k in total and total[k].shape != v.shape:
                raise S2SError(f"{p}: parameter {k} has another shape")
            total[k] = total.get(k, 0) + v.double()
        newest = ckpt
    model = {k: (v / len(paths)).to(newest["model"][k].dtype) for k, v in total.items()}
    # Everything decoding needs (config, vocabularies, feature settings, ...); the
    # optimizer, schedule and RNG states only serve resuming.
    resume_only = {"model", "optimizer", "schedule", "scaler", "rng", "format_version"}
    keep = {k: v for k, v in newest.items() if k not in resume_only}
    try:
        save_checkpoint(
            out, {**keep, "model": model, "averaged": [p.name for p in paths]}
        )
    except OSError as e:
        raise S2SError(f"{out}: cannot write ({e.strerror or e})") from None
    return paths
