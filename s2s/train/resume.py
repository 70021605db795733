"""Resuming a run from its directory alone.

`s2s train --out R --resume` continues the run in R with the config stored in
`R/last.pt` (and its data directory, unless `--data` names another copy of the same
data). A YAML file or `--set` given again may change what does not make the
continuation another run (`LAUNCH_KEYS`: limits, logging, validation and checkpoint
intervals, the device, decoding defaults), and with a warning what only changes the
batches (`INEXACT_KEYS`); a change to anything else (the model, the optimizer and
its schedule, the seed) is an error naming the key: that is a new run, in another
directory.

A run directory without `last.pt` but with other checkpoints belongs to another run:
training never starts over it. `metrics.jsonl` rows written after the step `last.pt`
holds (by a run killed before its next save) are dropped on resume, so the log
holds every step once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2s.atomic import atomic_file
from s2s.config import Config, config_from_dict, load_config
from s2s.errors import S2SError

__all__ = [
    "LAUNCH_KEYS",
    "INEXACT_KEYS",
    "RESUME_STATE",
    "resume_config",
    "config_changes",
    "check_continuation",
    "check_fresh_start",
    "check_resumable",
    "trim_metrics",
    "versions_note",
]

# May differ from last.pt's config at every launch: they change when or how the run
# is watched and stopped, not what it computes. Every decode.* key too: training
# uses the decode section only for validation's maximum lengths, and `s2s translate`
# defaults.
LAUNCH_KEYS = frozenset(
    {
        "train.max_steps",
        "train.max_epochs",
        "train.max_minutes",
        "train.max_bad_steps",
        "train.device",
        "train.threads",
        "train.deterministic",
        "train.valid_every",
        "train.valid_bleu",
        "train.valid_bleu_sents",
        "train.patience",
        "train.save_every",
        "train.keep_last",
        "train.log_every",
        "train.init_from",  # read by a fresh run only
    }
)
# May differ too, but then the continuation is not bit-for-bit the run that was
# interrupted: the epoch's batches (or the arithmetic) change, the data and the
# model do not. Useful on a machine with less memory, or more processes.
INEXACT_KEYS = frozenset({"train.batch_tokens", "train.accum_steps", "train.precision"})

# What `last.pt` has and a weights-only checkpoint (best.pt, step-N.pt, an average)
# lacks.
RESUME_STATE = ("optimizer", "schedule", "scaler", "rng", "state")


def _flat(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section, values in config.items()
        for key, value in values.items()
    }


def _may_change(key: str) -> bool:
    return key.startswith("decode.") or key in LAUNCH_KEYS or key in INEXACT_KEYS


def config_changes(saved: dict[str, Any], cfg: Config) -> dict[str, tuple[Any, Any]]:
    """`key: (checkpoint's value, this launch's value)` for every key that differs.

    Values compare as the config stores them (tuples as lists, as YAML and
    checkpoints hold them)."""
    old = _flat(config_from_dict(saved, source="checkpoint").to_dict())
    new = _flat(cfg.to_dict())
    return {k: (old[k], new[k]) for k in new if old.get(k) != new[k]}


def check_continuation(saved: dict[str, Any], cfg: Config, path: Path) -> list[str]:
    """Raise S2SError naming every key whose change would make resuming `path` a
    different run; returns the allowed changes as `key old -> new` strings."""
    changes = config_changes(saved, cfg)
    fixed = [k for k in changes if not _may_change(k)]
    if fixed:
        shown = ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in fixed)
        raise S2SError(
            f"{path}: {shown}: resuming continues the run with its own settings, and "
            f"{'these make' if len(fixed) > 1 else 'this makes'} another run; drop "
            f"{'them' if len(fixed) > 1 else 'it'} from the YAML/--set (last.pt holds "
            f"the run's config), or train a new run into another --out"
        )
    return [f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items()]


def resume_config(
    path: str | Path | None,
    overrides: list[str],
    data: Path | None,
    out: Path,
    resume: bool,
) -> tuple[Config, Path]:
    """What `s2s train` launches with: (config, data directory).

    Resuming (`resume` and `out/last.pt` there): the checkpoint's config, then the
    YAML file at `path` (if any), then `--set` overrides, and the data directory the
    checkpoint names unless `data` is given (the Trainer then checks that the
    changes are allowed, `check_continuation`). Otherwise the defaults, YAML and
    overrides, and `data`, which is then required."""
    last = out / "last.pt"
    if not (resume and last.is_file()):
        if data is None:
            raise S2SError("--data is required (--resume takes it from last.pt)")
        return load_config(path, overrides), data
    from s2s.checkpoint import load_checkpoint

    ckpt = load_checkpoint(last)
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        raise S2SError(f"{last}: no config in the checkpoint; it cannot be resumed")
    if data is None:
        if not ckpt.get("data_dir"):
            raise S2SError(
                f"{last} does not name its data directory (an older s2s wrote it): "
                f"give --data"
            )
        data = Path(ckpt["data_dir"])
    return load_config(path, overrides, base=saved), data


def check_resumable(ckpt: dict[str, Any], path: Path) -> None:
    """A weights-only checkpoint copied over last.pt cannot resume: say so."""
    missing = [k for k in RESUME_STATE if k not in ckpt]
    if missing:
        raise S2SError(
            f"{path} holds weights without the training state ({', '.join(missing)} "
            f"missing): it is a best.pt, step-N.pt or averaged checkpoint, which "
            f"can be decoded or averaged but not resumed"
        )


def _checkpoints(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.pt") if p.is_file())


def check_fresh_start(out: Path, resume: bool) -> None:
    """Starting at step 0 in `out`: refuse when checkpoints of another run are
    there (they would be mixed with ours; `keep_last` would delete ours, the newest
    by name, and keep theirs). A `metrics.jsonl` alone (a run killed before its
    first checkpoint) is started over with --resume, refused without."""
    found = _checkpoints(out) if out.is_dir() else []
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        what = "--resume needs last.pt" if resume else "they belong to another run"
        raise S2SError(
            f"{out} holds checkpoints ({shown}) but no last.pt: {what}; choose "
            f"another --out, or remove them to start over"
        )
    if not resume and (out / "metrics.jsonl").exists():
        raise S2SError(
            f"{out}/metrics.jsonl exists (a run that stopped before its first "
            f"checkpoint?): pass --resume to start that run over, or choose another "
            f"--out"
        )


def trim_metrics(path: Path, step: int) -> int:
    """Drop the records of `metrics.jsonl` after `step` (and a line torn by a kill)
    by rewriting it atomically; returns how many were dropped."""
    if not path.exists():
        return 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise S2SError(f"{path}: cannot read the run's log ({e.strerror})") from None
    keep = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the end of a line the killed run did not finish
        if isinstance(record, dict) and record.get("step", 0) <= step:
            keep.append(line)
    dropped = len(lines) - len(keep)
    if dropped:
        with atomic_file(path) as f:
            f.write("".join(line + "\n" for line in keep))
    return dropped


def versions_note(ckpt: dict[str, Any]) -> str:
    """Which s2s and torch wrote `ckpt`, when this process runs others ("" when
    they are the same)."""
    import torch

    from s2s._version import __version__

    theirs = ckpt.get("versions") or {}
    ours = {"s2s": __version__, "torch": str(torch.__version__)}
    if theirs == ours:
        return ""
    written = ", ".join(f"{k} {theirs.get(k, 'unknown')}" for k in ours)
    return f" (written by {written}; this is s2s {__version__}, torch {ours['torch']})"
