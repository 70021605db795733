"""Log-mel features and global mean/variance normalisation.

`FeatureExtractor` turns a waveform into (T, num_mels) log-mel frames; `GlobalCMVN`
accumulates per-dimension mean and variance over the training set and normalises with
them. Both kinds of features give ``1 + (N - window) // shift`` frames for N samples.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torchaudio
from torch import nn

from s2s.errors import S2SError

__all__ = ["FeatureExtractor", "GlobalCMVN"]


class FeatureExtractor(nn.Module):
    """Log-mel filterbank features.

    Args:
        kind: ``"fbank"`` for Kaldi-compatible filterbanks
            (`torchaudio.compliance.kaldi.fbank`, no dither, so deterministic), or
            ``"melspec"`` for `torchaudio.transforms.MelSpectrogram` followed by
            ``log(x + 1e-6)``.
        num_mels: number of mel bins F.
        sample_rate: the rate of the waveforms passed in.
        frame_length_ms: analysis window length.
        frame_shift_ms: hop between frames.

    Shapes:
        forward: wave (N,) -> feats (T, F) float32, T = ``num_frames(N)``.
    """

    def __init__(
        self,
        kind: Literal["fbank", "melspec"] = "fbank",
        num_mels: int = 80,
        sample_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
    ) -> None:
        super().__init__()
        if kind not in ("fbank", "melspec"):
            raise ValueError(f"kind must be 'fbank' or 'melspec', got {kind!r}")
        self.kind = kind
        self.num_mels = num_mels
        self.sample_rate = sample_rate
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.window = int(sample_rate * frame_length_ms / 1000)
        self.shift = int(sample_rate * frame_shift_ms / 1000)
        self.melspec = None
        if kind == "melspec":
            # center=False and n_fft=window give the same frame count as Kaldi.
            self.melspec = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=self.window,
                win_length=self.window,
                hop_length=self.shift,
                n_mels=num_mels,
                center=False,
            )

    def num_frames(self, num_samples: int) -> int:
        """Number of frames for a waveform of `num_samples` (0 if shorter than one
        window)."""
        if num_samples < self.window:
            return 0
        return 1 + (num_samples - self.window) // self.shift

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Compute (T, F) log-mel features of a mono waveform (N,).

        Raises:
            S2SError: the waveform is shorter than one analysis window.
        """
        if wave.dim() != 1:
            raise ValueError(f"expected a 1-D waveform, got shape {tuple(wave.shape)}")
        if wave.numel() < self.window:
            raise S2SError(
                f"audio of {wave.numel()} samples is shorter than one "
                f"{self.frame_length_ms:g} ms frame ({self.window} samples)"
            )
        wave = wave.float()
        if self.melspec is not None:
            power = self.melspec(wave)  # (F, T)
            return torch.log(power + 1e-6).transpose(0, 1).contiguous()  # (T, F)
        # Kaldi expects 16-bit sample values; scaling keeps its log floor far below.
        return torchaudio.compliance.kaldi.fbank(
            wave.unsqueeze(0) * 32768.0,  # (1, N)
            num_mel_bins=self.num_mels,
            frame_length=self.frame_length_ms,
            frame_shift=self.frame_shift_ms,
            sample_frequency=float(self.sample_rate),
            dither=0.0,
        )  # (T, F)


class GlobalCMVN:
    """Global cepstral mean and variance normalisation.

    Statistics are accumulated in float64 (sum, sum of squares, frame count) one
    utterance at a time, so the whole training set never has to be in memory.

    Args:
        dim: feature dimension F.
        floor: smallest standard deviation used when normalising, so constant
            dimensions do not divide by zero.
    """

    def __init__(self, dim: int, floor: float = 1e-5) -> None:
        self.dim = dim
        self.floor = floor
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_sq = torch.zeros(dim, dtype=torch.float64)
        self.count = 0

    def update(self, feats: torch.Tensor) -> None:
        """Add the frames of one utterance, feats (T, F), to the statistics."""
        if feats.dim() != 2 or feats.shape[1] != self.dim:
            raise ValueError(
                f"expected (T, {self.dim}) features, got {tuple(feats.shape)}"
            )
        feats = feats.detach().to("cpu", torch.float64)  # (T, F)
        self.sum += feats.sum(dim=0)
        self.sum_sq += feats.square().sum(dim=0)
        self.count += feats.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """(F,) float64 mean over all frames seen."""
        self._check_nonempty()
        return self.sum / self.count

    @property
    def std(self) -> torch.Tensor:
        """(F,) float64 population standard deviation, at least `floor`."""
        mean = self.mean
        var = (self.sum_sq / self.count - mean.square()).clamp_min(0.0)
        return var.sqrt().clamp_min(self.floor)

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """Return (feats - mean) / std for feats (..., F), in feats' dtype/device."""
        mean = self.mean.to(feats.device, feats.dtype)  # (F,)
        std = self.std.to(feats.device, feats.dtype)  # (F,)
        return (feats - mean) / std

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python statistics (lists and numbers) for checkpoints and JSON."""
        return {
            "dim": self.dim,
            "floor": self.floor,
            "count": self.count,
            "sum": self.sum.tolist(),
            "sum_sq": self.sum_sq.tolist(),
        }

    @classmethod
    def from_dict(cls, stats: dict[str, Any]) -> GlobalCMVN:
        """Rebuild from `to_dict` output; raises S2SError if it is malformed."""
        missing = {"dim", "floor", "count", "sum", "sum_sq"} - set(stats)
        if missing:
            raise S2SError(f"CMVN statistics lack {sorted(missing)}")
        cmvn = cls(int(stats["dim"]), float(stats["floor"]))
        if len(stats["sum"]) != cmvn.dim or len(stats["sum_sq"]) != cmvn.dim:
            raise S2SError(f"CMVN statistics do not have dimension {cmvn.dim}")
        cmvn.sum = torch.tensor(stats["sum"], dtype=torch.float64)
        cmvn.sum_sq = torch.tensor(stats["sum_sq"], dtype=torch.float64)
        cmvn.count = int(stats["count"])
        return cmvn

    def _check_nonempty(self) -> None:
        if self.count == 0:
            raise S2SError("CMVN statistics are empty: no frames were accumulated")
