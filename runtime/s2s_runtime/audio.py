"""Audio files and manifests without torch: soundfile decoding, mono mix-down, and
torchaudio's band-limited sinc resampling (Hann window, 6 zero crossings, roll-off
0.99) in numpy, so a file at another rate gives the samples `s2s transcribe`
computes. Manifests are TSV files with the header ``id path duration [text]``;
relative paths are resolved against the manifest's directory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile

from s2s_runtime import RunError

__all__ = ["audio_seconds", "load_audio", "read_manifest", "resample"]

_MIN_RATE, _MAX_RATE = 1000, 768_000
_MAX_RESAMPLE_TERMS = 1_000_000
_ERRORS = (RuntimeError, soundfile.SoundFileError, OSError, ValueError)


def _info(path: Path):
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "file not found"
        raise RunError(f"{path}: {reason}")
    try:
        info = soundfile.info(str(path))
    except _ERRORS as e:
        raise RunError(f"{path}: cannot decode audio ({e})") from None
    if not _MIN_RATE <= info.samplerate <= _MAX_RATE:
        raise RunError(
            f"{path}: sample rate {info.samplerate} Hz in the header is "
            f"outside {_MIN_RATE}-{_MAX_RATE} Hz (corrupt header?)"
        )
    if info.frames <= 0:
        raise RunError(f"{path}: empty audio (0 samples)")
    return info


def audio_seconds(path: str | Path) -> float:
    """Duration from the header, without decoding."""
    info = _info(Path(path))
    return info.frames / info.samplerate


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform (N,) at `sample_rate`."""
    path = Path(path)
    info = _info(path)
    g = math.gcd(info.samplerate, sample_rate)
    if (info.samplerate // g) * (sample_rate // g) > _MAX_RESAMPLE_TERMS:
        raise RunError(
            f"{path}: cannot resample {info.samplerate} Hz to {sample_rate} "
            f"Hz (convert the file to {sample_rate} Hz first)"
        )
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except _ERRORS as e:
        raise RunError(f"{path}: cannot decode audio ({e})") from None
    wave = data.mean(axis=1, dtype=np.float32)
    if not np.isfinite(wave).all():
        raise RunError(f"{path}: audio contains NaN or infinite samples")
    return resample(wave, rate, sample_rate) if rate != sample_rate else wave


def resample(wave: np.ndarray, orig: int, new: int) -> np.ndarray:
    """torchaudio.functional.resample(wave, orig, new) for a 1-D waveform."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    width_zeros, rolloff = 6, 0.99
    base = min(orig, new) * rolloff
    width = math.ceil(width_zeros * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    t = np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx  # (new, K)
    t = np.clip(t * base, -width_zeros, width_zeros)
    window = np.cos(t * math.pi / width_zeros / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(t == 0, 1.0, np.sin(t) / t)
    kernel = (kernel * window * base / orig).astype(np.float32)  # (new, K)
    n = wave.size
    padded = np.pad(wave.astype(np.float32), (width, width + orig))
    frames = (padded.size - kernel.shape[1]) // orig + 1
    idx = np.arange(frames)[:, None] * orig + np.arange(kernel.shape[1])
    out = padded[idx] @ kernel.T  # (frames, new)
    return out.reshape(-1)[: math.ceil(new * n / orig)].astype(np.float32)


def read_manifest(path: str | Path) -> list[tuple[str, Path]]:
    """(id, audio path) of each row of a TSV manifest; errors name the line."""
    path = Path(path)
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as e:
        raise RunError(f"{path}: cannot read manifest ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise RunError(f"{path}: not valid UTF-8 ({e.reason})") from None
    if not lines:
        raise RunError(f"{path}: empty manifest (no header line)")
    header = lines[0].removeprefix("\ufeff").split("\t")
    if header[:3] != ["id", "path", "duration"]:
        raise RunError(
            f"{path}:1: header must start 'id <TAB> path <TAB> duration', "
            f"found columns {header!r}"
        )
    items, seen = [], {}
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].strip() or not fields[1].strip():
            raise RunError(f"{path}:{n}: expected id, path and duration, tab-separated")
        utt = fields[0].strip()
        if utt in seen:
            raise RunError(
                f"{path}:{n}: duplicate id '{utt}' (first on line {seen[utt]})"
            )
        seen[utt] = n
        items.append((utt, path.parent / fields[1].strip()))
    return items
