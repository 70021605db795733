"""What a checkpoint holds, on one screen (`s2s info`), and its config
(`s2s config show CKPT`).
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import torch

from s2s._version import __version__
from s2s.checkpoint import load_checkpoint
from s2s.config import Config, apply_overrides, config_from_dict, load_config
from s2s.data.vocab import Vocab
from s2s.errors import S2SError

__all__ = [
    "checkpoint_info",
    "checkpoint_task",
    "config_of",
    "is_checkpoint",
    "config_changes",
]

_ZIP = b"PK\x03\x04"  # torch.save's format is a zip archive


def is_checkpoint(path: Path) -> bool:
    """Whether `path` is a file torch.save wrote (not YAML)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == _ZIP
    except OSError:
        return False


def config_of(path: Path | None, overrides: list[str]) -> Config:
    """The config of a YAML file or a checkpoint, with `--set` overrides."""
    if path is not None and is_checkpoint(path):
        ckpt = load_checkpoint(path)
        cfg = config_from_dict(ckpt["config"], source=str(path))
        return apply_overrides(cfg, overrides)
    return load_config(path, overrides)


def checkpoint_task(path: Path) -> str:
    """The model.task of checkpoint `path`."""
    ckpt = load_checkpoint(path)
    return config_from_dict(ckpt["config"], source=str(path)).model.task


def config_changes(cfg: Config) -> list[tuple[str, Any, Any]]:
    """(section.key, value, default) for every key that differs from the default."""
    default = Config().to_dict()
    return [
        (f"{section}.{key}", value, default[section][key])
        for section, keys in cfg.to_dict().items()
        for key, value in keys.items()
        if value != default[section][key]
    ]


def _count_parameters(weights: dict[str, torch.Tensor]) -> int:
    """Parameters of a state dict; tied weights (one storage) counted once."""
    seen, total = set(), 0
    for t in weights.values():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            total += t.numel()
    return total


def _model_line(cfg: Config) -> str:
    m = cfg.model
    enc = f"BiLSTM encoder {m.enc_layers} x {m.enc_hidden_size} per direction"
    dec = f"LSTM decoder {m.dec_layers} x {m.hidden_size}, {m.attention} attention" + (
        ", input feeding" if m.input_feed else ""
    )
    if m.task == "translation":
        return f"translation: embeddings {m.emb_dim}, {enc}, {dec}"
    front = f"{m.num_mels} mel bins, {m.subsample} subsampling to {m.emb_dim}"
    if m.task == "ctc":
        return f"speech, CTC: {front}, {enc}, CTC output layer"
    if m.task == "joint":
        return (
            f"speech, joint CTC/attention (ctc_weight {m.ctc_weight:g}): {front}, "
            f"{enc}, CTC output layer and {dec}"
        )
    return (
        f"language model: embeddings {m.emb_dim}, LSTM {m.dec_layers} x {m.hidden_size}"
    )


def _vocab_line(ckpt: dict[str, Any]) -> str:
    vocab = ckpt.get("vocab") or {}
    parts = []
    for side in ("src", "tgt"):
        if vocab.get(side):
            parts.append((side, Vocab(vocab[side])))
    if len(parts) == 2 and parts[0][1].digest == parts[1][1].digest:
        return f"{len(parts[0][1]):,} pieces, shared by source and target"
    names = {"src": "source", "tgt": "target"}
    if len(parts) == 1:
        return f"{len(parts[0][1]):,} pieces"
    return ", ".join(f"{names[side]} {len(v):,} pieces" for side, v in parts)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def checkpoint_info(path: Path) -> str:
    """A one-screen summary of checkpoint `path`."""
    ckpt = load_checkpoint(path)
    cfg = config_from_dict(ckpt["config"], source=str(path))
    state = ckpt.get("state") or {}
    size = path.stat().st_size
    written = datetime.datetime.fromtimestamp(path.stat().st_mtime)
    kind = "full (resumable)" if "optimizer" in ckpt else "weights only"
    if "averaged" in ckpt:
        kind = f"average of {', '.join(ckpt['averaged'])}"
    lines = [
        f"checkpoint   {path} ({size / 2**20:.1f} MiB, {kind}, written "
        f"{written:%Y-%m-%d %H:%M})",
        f"model        {_model_line(cfg)}",
        f"parameters   {_count_parameters(ckpt['model']):,}",
    ]
    try:
        lines.append(f"vocabulary   {_vocab_line(ckpt)}")
    except S2SError as e:
        raise S2SError(f"{path}: {e}") from None
    if "features" in ckpt:
        feats = ckpt["features"]
        shown = ", ".join(f"{k} {v}" for k, v in feats.items())
        lines.append(f"features     {shown}")
    seconds = state.get("seconds", 0.0)
    lines.append(
        f"trained      {state.get('step', 0):,} steps, epoch "
        f"{state.get('epoch', 0) + 1}, {_minutes(seconds)} "
        f"(train.max_steps={cfg.train.max_steps}, "
        f"max_minutes={cfg.train.max_minutes:g}, max_epochs={cfg.train.max_epochs})"
    )
    best = state.get("best_valid") or {}
    if best:
        numbers = ", ".join(
            f"{k.removeprefix('valid_')} {_number(v)}"
            for k, v in best.items()
            if k != "step"
        )
        lines.append(
            f"best valid   {numbers} (step {best.get('step', '?')}, by "
            f"{cfg.train.select_by})"
        )
    elif state.get("best") is not None:
        score = state["best"]
        if cfg.train.select_by == "bleu":  # stored negated: lower is better
            score = -score
        lines.append(f"best valid   {cfg.train.select_by} {_number(score)}")
    changes = config_changes(cfg)
    lines.append(f"config       {len(changes)} keys differ from the defaults:")
    width = max((len(k) for k, _, _ in changes), default=0)
    for key, value, default in changes:
        lines.append(f"  {key:<{width}}  {_fmt(value)}  (default {_fmt(default)})")
    versions = ckpt.get("versions") or {}
    wrote = ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"
    lines.append(
        f"versions     written by {wrote}; this is s2s {__version__}, "
        f"torch {torch.__version__}"
    )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    """A config value as YAML writes it (true, 0.003, [0.9, 0.98])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and (math.isinf(value) or value == int(value)):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
