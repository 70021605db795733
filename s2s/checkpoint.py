"""Checkpoints: written atomically, versioned, self-contained.

A checkpoint holds the model, the resolved config, the vocabularies (SentencePiece
model bytes), for speech the feature settings and CMVN statistics, and for resuming
the optimizer, scheduler, scaler, progress and RNG states. Decoding needs nothing
else.
"""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from s2s.atomic import TMP_SUFFIX, atomic_file
from s2s.config import Config, config_from_dict
from s2s.data.features import GlobalCMVN
from s2s.data.speech import FeatureSettings
from s2s.data.vocab import Vocab
from s2s.errors import S2SError
from s2s.models.lm import LSTMLM
from s2s.models.seq2seq import Seq2Seq, build_model
from s2s.models.speech import SpeechCTC

__all__ = [
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "non_finite_weight",
    "load_model",
    "load_speech_model",
    "load_lm_model",
    "target_vocab",
    "numbered_checkpoints",
    "check_output_dir",
    "remove_stale_temporaries",
    "rng_state",
    "set_rng_state",
]

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename: a crash
    at any moment leaves either the old file or the new one, never a torn one.

    Weights with NaN or infinite values are refused (`S2SError`), never written. A
    failed write (a full disk, a missing directory) is an `OSError`, also where
    torch reports it as a RuntimeError. The payload records the versions of the
    writer (an average's too, whatever its inputs recorded)."""
    from s2s._version import __version__

    path = Path(path)
    bad = non_finite_weight(payload.get("model", {}))
    if bad:
        raise S2SError(f"not writing {path}: weight {bad} holds NaN or infinite values")
    versions = {"s2s": __version__, "torch": str(torch.__version__)}
    payload = {"format_version": FORMAT_VERSION, **payload, "versions": versions}
    with atomic_file(path, "wb") as f:
        try:
            torch.save(payload, f)
        except RuntimeError as e:  # torch's zip writer after a failed write
            cause = e.__cause__ or e.__context__
            if isinstance(cause, OSError):
                raise cause from None
            raise OSError(errno.EIO, f"torch could not write it: {e}") from None
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def non_finite_weight(state: dict[str, Any]) -> str:
    """The name of the first floating-point tensor of `state` holding NaN or inf
    ("" when all are finite)."""
    for name, t in state.items():
        if (
            isinstance(t, torch.Tensor)
            and t.is_floating_point()
            and not bool(torch.isfinite(t).all())
        ):
            return name
    return ""


def verify_archive(path: Path) -> None:
    """torch.load does not check the CRC-32 its zip archive stores for every
    entry; one flipped bit in a weight would load silently. Check them all."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, EOFError) as e:
        raise S2SError(
            f"{path}: not a readable checkpoint (damaged archive: {e})"
        ) from None
    except OSError as e:
        raise S2SError(f"{path}: cannot read ({e.strerror or e})") from None
    if bad is not None:
        raise S2SError(
            f"{path}: damaged: entry {bad} fails its CRC check (the file changed "
            f"after it was written); use another checkpoint"
        )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise S2SError(f"{path}: no such checkpoint")
    verify_archive(path)
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
    for key in ("config", "model"):
        if not isinstance(ckpt.get(key), dict):
            raise S2SError(f"{path}: not an s2s checkpoint (no {key!r})")
    bad = non_finite_weight(ckpt["model"])
    if bad:
        raise S2SError(f"{path}: damaged: weight {bad} holds NaN or infinite values")
    return ckpt


def target_vocab(path: str | Path) -> Vocab:
    """The target vocabulary of a checkpoint (`s2s prep text --vocab-from`)."""
    return target_vocab_and_features(path)[0]


def target_vocab_and_features(path: str | Path) -> tuple[Vocab, dict | None]:
    """A checkpoint's target vocabulary and its audio feature settings (None for a
    text checkpoint): `s2s prep speech --vocab-from`."""
    ckpt = load_checkpoint(path)
    proto = ckpt.get("vocab", {}).get("tgt")
    if proto is None:
        raise S2SError(f"{path}: the checkpoint holds no target vocabulary")
    return Vocab(proto), ckpt.get("features")


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


def load_lm_model(
    path: str | Path, device: str | torch.device = "cpu", command: str = "this command"
) -> tuple[LSTMLM, Config, Vocab]:
    """Rebuild a language model from a checkpoint alone: (model, config, vocab)."""
    ckpt, cfg = _load(path, ("lm",), command)
    vocab = Vocab(ckpt["vocab"]["tgt"])
    model = build_model(cfg.model, 0, len(vocab))
    _load_weights(model, ckpt, path)
    return model.to(device).eval(), cfg, vocab


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
    sides = ("src", "tgt") if cfg.model.task == "translation" else ("tgt",)
    vocab = ckpt.get("vocab")
    if not isinstance(vocab, dict) or not all(
        isinstance(vocab.get(s), bytes) for s in sides
    ):
        raise S2SError(f"{path}: not an s2s checkpoint (no {'/'.join(sides)} vocab)")
    if cfg.model.task in ("ctc", "joint"):
        for key in ("features", "cmvn"):
            if not isinstance(ckpt.get(key), dict):
                raise S2SError(f"{path}: not an s2s checkpoint (no {key!r})")
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


def remove_stale_temporaries(directory: str | Path) -> None:
    """Delete the half-written checkpoints a killed run left behind (`s2s.atomic`'s
    temporaries; `.NAME.pt.*.tmp` from older s2s)."""
    for pattern in (f".*.pt.*{TMP_SUFFIX}", ".*.pt.*.tmp"):
        for p in Path(directory).glob(pattern):
            p.unlink(missing_ok=True)


def check_output_dir(directory: str | Path, checkpoint_bytes: int) -> None:
    """Fail before training, not hours into it: `directory` must be writable and
    have room for three checkpoints of `checkpoint_bytes` (last.pt, its temporary
    copy while it is replaced, and best.pt plus step-N.pt)."""
    directory = Path(directory)
    probe = directory / f".s2s-write-test-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"s2s")
        probe.unlink()
    except OSError as e:
        raise S2SError(
            f"{directory}: cannot write checkpoints here ({e.strerror or e})"
        ) from None
    free = shutil.disk_usage(directory).free
    need = 3 * checkpoint_bytes
    if free < need:
        raise S2SError(
            f"{directory}: {free / 2**20:.0f} MiB free, but training needs about "
            f"{need / 2**20:.0f} MiB (three checkpoints of "
            f"{checkpoint_bytes / 2**20:.0f} MiB); free some space or choose "
            f"another --out"
        )


def rng_state(device: torch.device) -> dict[str, Any]:
    """The random states a resumed run must continue from (this process's)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if device.type == "cuda" and isinstance(cuda, torch.Tensor):
        torch.cuda.set_rng_state(cuda, device)
    elif device.type == "cuda" and cuda:  # written by an older s2s: every device's
        torch.cuda.set_rng_state_all(cuda)
