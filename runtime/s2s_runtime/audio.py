"""Audio files and manifests without torch: soundfile decoding, mono mix-down, and
torchaudio's band-limited sinc resampling (Hann window, 6 zero crossings, roll-off
0.99) in numpy, so a file at another rate gives the samples `s2s transcribe`
computes. Manifests are TSV files with the header ``id path duration [text]``;
relative paths are resolved against the manifest's directory."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import soundfile

from s2s_runtime import RunError

__all__ = ["audio_seconds", "load_audio", "read_manifest", "resample"]

_MIN_RATE, _MAX_RATE = 1000, 768_000
_MAX_RESAMPLE_TERMS = 1_000_000
_ERRORS = (RuntimeError, soundfile.SoundFileError, OSError, ValueError)


def _open(path: Path) -> soundfile.SoundFile:
    """The file opened for reading, its header checked (one open per file: for
    Ogg/Vorbis the open is what costs)."""
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "file not found"
        raise RunError(f"{path}: {reason}")
    try:
        f = soundfile.SoundFile(str(path))
    except _ERRORS as e:
        raise RunError(f"{path}: cannot decode audio ({e})") from None
    problem = None
    if not _MIN_RATE <= f.samplerate <= _MAX_RATE:
        problem = (
            f"{path}: sample rate {f.samplerate} Hz in the header is "
            f"outside {_MIN_RATE}-{_MAX_RATE} Hz (corrupt header?)"
        )
    elif f.frames <= 0:
        problem = f"{path}: empty audio (0 samples)"
    if problem:
        f.close()
        raise RunError(problem)
    return f


def audio_seconds(path: str | Path) -> float:
    """Duration from the header, without decoding."""
    with _open(Path(path)) as f:
        return f.frames / f.samplerate


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform (N,) at `sample_rate`."""
    path = Path(path)
    with _open(path) as f:
        rate = f.samplerate
        g = math.gcd(rate, sample_rate)
        if (rate // g) * (sample_rate // g) > _MAX_RESAMPLE_TERMS:
            raise RunError(
                f"{path}: cannot resample {rate} Hz to {sample_rate} "
                f"Hz (convert the file to {sample_rate} Hz first)"
            )
        try:
            data = f.read(dtype="float32", always_2d=True)
        except _ERRORS as e:
            raise RunError(f"{path}: cannot decode audio ({e})") from None
    wave = data.mean(axis=1, dtype=np.float32)
    if not np.isfinite(wave).all():
        raise RunError(f"{path}: audio contains NaN or infinite samples")
    return resample(wave, rate, sample_rate) if rate != sample_rate else wave


def resample(wave: np.ndarray, orig: int, new: int) -> np.ndarray:
    """torchaudio.functional.resample(wave, orig, new) for a 1-D waveform.

    torchaudio convolves every output phase with a kernel as wide as the whole
    input period (K = orig + 2 * width taps), though each phase's sinc reaches
    only about 2 * width of them; here groups of neighbouring phases multiply just
    the columns their taps cover (the rest are exact zeros in float32): for
    22.05 kHz to 16 kHz 34 of 459 columns. The kernel is made once per rate pair
    (making it cost more than applying it to a few seconds of audio)."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    kernel, width, groups = _resampler(orig, new)  # kernel (new, K)
    n = wave.size
    padded = np.pad(wave.astype(np.float32), (width, width + orig))
    frames = (padded.size - kernel.shape[1]) // orig + 1
    step = padded.strides[0]
    view = np.lib.stride_tricks.as_strided(  # (frames, K): frame f reads from f*orig
        padded, (frames, kernel.shape[1]), (step * orig, step), writeable=False
    )
    out = np.zeros((frames, new), np.float32)
    for j0, j1, lo, hi in groups:  # phases j0..j1-1 read columns lo..hi-1
        taps = np.ascontiguousarray(view[:, lo:hi])  # (frames, hi - lo)
        out[:, j0:j1] = taps @ kernel[j0:j1, lo:hi].T
    return out.reshape(-1)[: math.ceil(new * n / orig)]


@functools.lru_cache(maxsize=8)
def _resampler(orig: int, new: int) -> tuple[np.ndarray, int, list]:
    """The kernel, its padding and its phase groups, made once per rate pair."""
    kernel, width = _sinc_kernel(orig, new)
    kernel.flags.writeable = False
    return kernel, width, _phase_groups(kernel)


def _sinc_kernel(orig: int, new: int) -> tuple[np.ndarray, int]:
    """torchaudio's windowed-sinc kernel (new phases, K taps) and its padding."""
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
    return (kernel * window * base / orig).astype(np.float32), width


def _phase_groups(kernel: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(j0, j1, lo, hi): runs of neighbouring phases j0..j1-1 whose nonzero taps
    lie in columns lo..hi-1, at most twice one phase's reach."""
    new = kernel.shape[0]
    nz = kernel != 0
    if not nz.any():
        return [(0, new, 0, kernel.shape[1])]
    first = np.where(nz.any(1), nz.argmax(1), kernel.shape[1])
    last = np.where(nz.any(1), kernel.shape[1] - nz[:, ::-1].argmax(1), 0)
    taps = int((last - first).max())
    groups, j = [], 0
    while j < new:  # grow a group while its span stays within twice the taps
        lo, hi, k = int(first[j]), int(last[j]), j + 1
        while k < new and max(hi, last[k]) - min(lo, first[k]) <= 2 * taps:
            lo, hi, k = min(lo, int(first[k])), max(hi, int(last[k])), k + 1
        groups.append((j, k, lo, max(hi, lo)))
        j = k
    return groups


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
