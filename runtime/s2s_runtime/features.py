"""Log-mel features in numpy, as `s2s.data.features.FeatureExtractor` computes them
with torchaudio, and the global CMVN of the export.

- fbank: `torchaudio.compliance.kaldi.fbank` with s2s's settings (no dither, DC
  offset removed, pre-emphasis 0.97, Povey window, FFT size rounded up to a power
  of two, power spectrum, Kaldi mel banks from 20 Hz to Nyquist, log floored at
  float32 epsilon), on samples scaled to 16-bit values.
- melspec: `torchaudio.transforms.MelSpectrogram` (periodic Hann window, n_fft =
  window, no centring, HTK mel banks without normalisation), then log(x + 1e-6).

Both give 1 + (N - window) // shift frames for N samples. `tests/test_export.py`
holds them to the torch front end: within 1e-3 on log-mel values of noise; in bins
far below a frame's energy (exact silence, pure tones) both carry float32 rounding
(numpy's FFT runs in float64), and fbank stays as close to torchaudio's float32
result as that is to its float64 one, plus 1e-3.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from s2s_runtime import RunError

__all__ = ["Features"]


def _kaldi_mel(x: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + x / 700.0)


def _kaldi_banks(num_mels: int, n_fft: int, rate: int) -> np.ndarray:
    """(n_fft // 2 + 1, F) Kaldi triangular mel filters, 20 Hz to Nyquist."""
    bins = n_fft // 2
    # Scalars in double, tensors in float32: as torchaudio's get_mel_banks.
    mel_low = 1127.0 * math.log(1.0 + 20.0 / 700.0)
    mel_high = 1127.0 * math.log(1.0 + 0.5 * rate / 700.0)
    delta = (mel_high - mel_low) / (num_mels + 1)
    b = np.arange(num_mels, dtype=np.float32)[:, None]
    left, center, right = (mel_low + (b + k) * delta for k in (0, 1, 2))
    mel = _kaldi_mel((rate / n_fft) * np.arange(bins, dtype=np.float32))
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))  # (F, bins)
    return np.pad(banks, ((0, 0), (0, 1))).T.astype(np.float32)  # (bins + 1, F)


def _htk_banks(num_mels: int, n_fft: int, rate: int) -> np.ndarray:
    """(n_fft // 2 + 1, F) torchaudio `melscale_fbanks` (HTK scale, no norm)."""
    freqs = np.linspace(0, rate // 2, n_fft // 2 + 1, dtype=np.float32)
    m_max = 2595.0 * np.log10(1.0 + (rate / 2) / 700.0)
    m_pts = np.linspace(0.0, m_max, num_mels + 2, dtype=np.float32)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - freqs[:, None]  # (n_freqs, F + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


class Features:
    """Waveform (N,) float32 in [-1, 1] -> (T, F) normalised log-mel frames."""

    def __init__(self, settings: dict[str, Any], mean: list, std: list):
        self.kind = settings["kind"]
        if self.kind not in ("fbank", "melspec"):
            raise RunError(f"unknown feature kind {self.kind!r}")
        self.num_mels = int(settings["num_mels"])
        self.sample_rate = int(settings["sample_rate"])
        self.frame_length_ms = float(settings["frame_length_ms"])
        self.frame_shift_ms = float(settings["frame_shift_ms"])
        self.window = int(self.sample_rate * self.frame_length_ms / 1000)
        self.shift = int(self.sample_rate * self.frame_shift_ms / 1000)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        if self.kind == "fbank":
            self.n_fft = 1 << (self.window - 1).bit_length()
            n = np.arange(self.window, dtype=np.float64)
            hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (self.window - 1))
            self.win = (hann**0.85).astype(np.float32)
            self.banks = _kaldi_banks(self.num_mels, self.n_fft, self.sample_rate)
        else:
            self.n_fft = self.window
            n = np.arange(self.window, dtype=np.float64)
            self.win = (0.5 - 0.5 * np.cos(2 * np.pi * n / self.window)).astype(
                np.float32
            )
            self.banks = _htk_banks(self.num_mels, self.n_fft, self.sample_rate)

    def num_frames(self, num_samples: int) -> int:
        if num_samples < self.window:
            return 0
        return 1 + (num_samples - self.window) // self.shift

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """(N,) -> (T, F) float32 log-mel features (not normalised)."""
        T = self.num_frames(wave.size)
        if T == 0:
            raise RunError(
                f"audio of {wave.size} samples is shorter than one "
                f"{self.frame_length_ms:g} ms frame ({self.window} samples)"
            )
        wave = wave.astype(np.float32)
        if self.kind == "fbank":
            wave = wave * np.float32(32768.0)
        # (T, window): a strided view, copied once by the first operation below
        view = np.lib.stride_tricks.sliding_window_view(wave, self.window)
        view = view[: (T - 1) * self.shift + 1 : self.shift]
        if self.kind == "fbank":
            frames = view - view.mean(axis=1, keepdims=True)
            # pre-emphasis, the first sample against itself (as Kaldi)
            frames[:, 1:] -= np.float32(0.97) * frames[:, :-1].copy()
            frames[:, 0] *= np.float32(0.03)
            frames *= self.win
        else:
            frames = view * self.win
        spec = np.fft.rfft(frames, n=self.n_fft, axis=1)  # (T, n_fft/2 + 1)
        power = np.square(spec.real, dtype=np.float32)
        power += np.square(spec.imag, dtype=np.float32)
        mel = power @ self.banks  # (T, F)
        if self.kind == "fbank":
            return np.log(np.maximum(mel, np.finfo(np.float32).eps))
        return np.log(mel + np.float32(1e-6))

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """(N,) -> (T, F) CMVN-normalised features."""
        return (self.log_mel(wave) - self.mean) / self.std
