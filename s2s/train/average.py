"""Checkpoint averaging (`s2s average`): the last N numbered checkpoints, or the N
with the best validation scores (ESPnet's choice for speech, where a small corpus
overfits and the newest checkpoints are no longer the best)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from s2s.checkpoint import load_checkpoint, numbered_checkpoints, save_checkpoint
from s2s.errors import S2SError
from s2s.train.state import selection_score

__all__ = ["average_checkpoints", "best_checkpoints", "validation_scores"]


def validation_scores(run: Path, select_by: str) -> dict[int, float]:
    """step -> the validation score training ranks best.pt by (`selection_score`),
    from `run`/metrics.jsonl. A validation repeated
    at a step (a resumed run) counts its newest record."""
    path = run / "metrics.jsonl"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise S2SError(f"{path}: cannot read the run's log ({e.strerror})") from None
    scores: dict[int, float] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the end of a line a killed run did not finish
        if not isinstance(record, dict) or "valid_loss" not in record:
            continue
        score = selection_score(record, select_by)
        if isinstance(score, (int, float)) and math.isfinite(score):
            scores[int(record["step"])] = float(score)
    return scores


def best_checkpoints(run: str | Path, n: int, select_by: str) -> list[Path]:
    """The `n` step-N.pt files of `run` with the best validation scores (ties: the
    later step), oldest step first. Checkpoints of steps without a validation
    record are passed over; an error when none has one."""
    run = Path(run)
    scores = validation_scores(run, select_by)
    scored = [
        (scores[step], -step, p)
        for p in numbered_checkpoints(run)
        if (step := int(p.stem.removeprefix("step-"))) in scores
    ]
    if not scored:
        raise S2SError(
            f"{run}: no step-N.pt checkpoint has a validation record in "
            f"metrics.jsonl (validate at the steps checkpoints are saved: "
            f"train.valid_every dividing train.save_every)"
        )
    chosen = sorted(scored)[:n]
    return [p for _, _, p in sorted(chosen, key=lambda c: -c[1])]


def average_checkpoints(
    run: str | Path, out: str | Path, last: int = 5, best: int = 0
) -> list[Path]:
    """Average the model parameters of the last `last` step-N.pt files of `run`, or
    when `best` is not 0, of the `best` ones by validation score (`train.select_by`
    of the run's newest checkpoint; see `best_checkpoints`).

    The result keeps the newest checkpoint's config and vocabularies and no optimizer
    state: it is for decoding. Returns the files used.
    """
    if best < 0:
        raise S2SError(f"--best must be >= 1, got {best}")
    if not best and last < 1:  # [-0:] would be every file, [--2:] the newest alone
        raise S2SError(f"--last must be >= 1, got {last}")
    out = Path(out)
    if out.name in ("last.pt", "best.pt") or re.fullmatch(r"step-\d+\.pt", out.name):
        raise S2SError(
            f"{out}: {out.name} is written by training (last.pt holds what --resume "
            f"needs, step-N.pt what is averaged); average into another file, e.g. "
            f"avg.pt"
        )
    if best:
        numbered = numbered_checkpoints(run)
        if not numbered:
            raise S2SError(f"{run}: no step-N.pt checkpoints to average")
        select_by = load_checkpoint(numbered[-1])["config"]["train"]["select_by"]
        paths = best_checkpoints(run, best, select_by)
    else:
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
