"""Checkpoints: written atomically, versioned, self-contained.

A checkpoint holds the model, the resolved config, the vocabularies (SentencePiece
model bytes), for speech the feature settings and CMVN statistics, and for resuming
the optimizer, scheduler, scaler, progress and RNG states. Decoding needs nothing
else.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from s2s.config import Config, config_from_dict
from s2s.data.features import GlobalCMVN
from s2s.data.speech import FeatureSettings
from s2s.data.vocab import Vocab
from s2s.errors import S2SError
from s2s.models.seq2seq import Seq2Seq, build_model
from s2s.models.speech import SpeechCTC

__all__ = [
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_speech_model",
    "numbered_checkpoints",
]

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename: a crash
    at any moment leaves either the old file or the new one, never a torn one."""
    path = Path(path)
    payload = {"format_version": FORMAT_VERSION, **payload}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise S2SError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise S2SError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise S2SError(f"{path}: not an s2s checkpoint")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise S2SError(
            f"{path}: checkpoint format {ckpt['format_version']}, this s2s reads "
            f"format {FORMAT_VERSION}"
        )
    return ckpt


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[Seq2Seq, Config, Vocab, Vocab]:
    """Rebuild the model from a checkpoint alone: (model, config, src, tgt vocab)."""
    ckpt, cfg = _load(path, ("translation",), "s2s translate")
    src_vocab = Vocab(ckpt["vocab"]["src"])
    tgt_vocab = Vocab(ckpt["vocab"]["tgt"])
    model = build_model(cfg.model, len(src_vocab), len(tgt_vocab))
    _load_weights(model, ckpt, path)
    return model.to(device).eval(), cfg, src_vocab, tgt_vocab


def load_speech_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[SpeechCTC, Config, Vocab, FeatureSettings, GlobalCMVN]:
    """Rebuild a speech model (`SpeechCTC`, or `SpeechJoint` for model.task=joint)
    from a checkpoint alone: (model, config, vocabulary, feature settings, CMVN
    statistics)."""
    ckpt, cfg = _load(path, ("ctc", "joint"), "s2s transcribe")
    vocab = Vocab(ckpt["vocab"]["tgt"])
    model = build_model(cfg.model, 0, len(vocab))
    _load_weights(model, ckpt, path)
    features = FeatureSettings.from_dict(ckpt["features"])
    cmvn = GlobalCMVN.from_dict(ckpt["cmvn"])
    return model.to(device).eval(), cfg, vocab, features, cmvn


def _load(
    path: str | Path, tasks: tuple[str, ...], command: str
) -> tuple[dict, Config]:
    ckpt = load_checkpoint(path)
    cfg = config_from_dict(ckpt["config"], source=str(path))
    if cfg.model.task not in tasks:
        raise S2SError(
            f"{path} holds a model.task={cfg.model.task} model; {command} needs "
            f"a {' or '.join(tasks)} model"
        )
    return ckpt, cfg


def _load_weights(model: torch.nn.Module, ckpt: dict, path: str | Path) -> None:
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise S2SError(f"{path}: weights do not fit the stored config: {e}") from None


def numbered_checkpoints(directory: str | Path) -> list[Path]:
    """`step-N.pt` files in a run directory, oldest step first."""
    found = []
    for p in Path(directory).glob("step-*.pt"):
        m = re.fullmatch(r"step-(\d+)\.pt", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]
