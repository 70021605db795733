"""Speech front end: SpecAugment and 4x frame subsampling (speed perturbation is
data preparation: `s2s.data.audio.speed_perturb`).

These sit between the log-mel features (`s2s.data.features`) and the BiLSTM encoder.
Sequences travel as ``(x, lengths) -> (y, lengths)`` with x batch-first, (B, T, F).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from s2s.data.speech import subsampled_length

__all__ = ["SpecAugment", "Subsampler"]


class SpecAugment(nn.Module):
    """Frequency and time masking (Park et al., 2019), without time warping.

    Active only in training mode; in eval mode the input is returned unchanged. Each
    utterance gets its own masks, drawn from torch's global RNG so training is
    reproducible under `torch.manual_seed`. Masks cover only an utterance's first
    `lengths[b]` frames; padding frames are never touched.

    Args:
        freq_masks: number of frequency masks per utterance.
        freq_width: maximum width of a frequency mask in bins (uniform in [0, width]).
        time_masks: number of time masks per utterance.
        time_width_ratio: maximum width of a time mask as a fraction of the
            utterance's length (uniform in [0, floor(ratio * length)]).
        max_time_width: optional cap in frames on the time-mask width.
        mask_value: the value written into masked cells (0 is the mean after CMVN).

    Shapes:
        forward: x (B, T, F), lengths (B,) -> (B, T, F), lengths (unchanged).
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 27,
        time_masks: int = 2,
        time_width_ratio: float = 0.05,
        max_time_width: int | None = None,
        mask_value: float = 0.0,
    ) -> None:
        super().__init__()
        self.freq_masks = freq_masks
        self.freq_width = freq_width
        self.time_masks = time_masks
        self.time_width_ratio = time_width_ratio
        self.max_time_width = max_time_width
        self.mask_value = mask_value

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.training or (self.freq_masks == 0 and self.time_masks == 0):
            return x, lengths
        B, T, F = x.shape
        lengths = lengths.to(x.device)
        valid = torch.arange(T, device=x.device) < lengths[:, None]  # (B, T)
        mask = torch.zeros(B, T, F, dtype=torch.bool, device=x.device)
        if self.freq_masks > 0:
            bins = torch.full((B,), F, device=x.device)  # (B,)
            freq = _bands(bins.clamp_max(self.freq_width), bins, self.freq_masks, F)
            mask |= freq[:, None, :] & valid[:, :, None]
        if self.time_masks > 0:
            max_width = (lengths * self.time_width_ratio).floor()  # (B,)
            if self.max_time_width is not None:
                max_width = max_width.clamp_max(self.max_time_width)
            mask |= _bands(max_width, lengths, self.time_masks, T)[:, :, None]
        return x.masked_fill(mask, self.mask_value), lengths


def _bands(
    max_width: torch.Tensor, extent: torch.Tensor, count: int, size: int
) -> torch.Tensor:
    """Union of `count` random bands per row, each of width uniform in
    [0, max_width[b]] and lying inside [0, extent[b]); returns a (B, size) bool mask."""
    B = max_width.shape[0]
    u_width = torch.rand(B, count, device=max_width.device)  # (B, n)
    u_start = torch.rand(B, count, device=max_width.device)  # (B, n)
    width = (u_width * (max_width[:, None] + 1)).floor()  # (B, n)
    start = (u_start * (extent[:, None] - width + 1).clamp_min(1)).floor()  # (B, n)
    pos = torch.arange(size, device=max_width.device)  # (size,)
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])
    return inside.any(dim=1)  # (B, n, size) -> (B, size)


class Subsampler(nn.Module):
    """Reduce the frame rate 4x before the encoder.

    Args:
        in_dim: feature dimension F.
        out_dim: output dimension D.
        kind: ``"conv"``: two 3x3 stride-2 Conv2d + ReLU over (time, frequency), then
            a Linear to D (ESPnet's Conv2dSubsampling). ``"stack"``: concatenate 4
            consecutive frames, then a Linear to D.
        channels: conv channels (default `out_dim`); ignored by ``"stack"``.

    Lengths (see `output_lengths`):
        conv: ``T' = ((max(T, 7) - 1) // 2 - 1) // 2``. Each output frame sees 7 input
        frames, so only whole windows inside the utterance are kept. An utterance
        shorter than 7 frames is zero-padded to 7 and yields 1 frame instead of
        none, so every non-empty input gives a non-empty output.
        stack: ``T' = ceil(T / 4)``; the last group is zero-padded, no frame is dropped.

    Frames past each length are zeroed first, so the output for an utterance does
    not depend on how much padding its batch has.

    Shapes:
        forward: x (B, T, F), lengths (B,) -> y (B, T', D), lengths' (B,).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        kind: Literal["conv", "stack"] = "conv",
        channels: int | None = None,
    ) -> None:
        super().__init__()
        if kind not in ("conv", "stack"):
            raise ValueError(f"kind must be 'conv' or 'stack', got {kind!r}")
        self.kind = kind
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.conv = None
        if kind == "conv":
            if in_dim < 7:
                raise ValueError(f"conv subsampling needs in_dim >= 7, got {in_dim}")
            channels = channels or out_dim
            self.conv = nn.Sequential(
                nn.Conv2d(1, channels, kernel_size=3, stride=2),
                nn.ReLU(),
                nn.Conv2d(channels, channels, kernel_size=3, stride=2),
                nn.ReLU(),
            )
            self.proj = nn.Linear(channels * subsampled_length(in_dim), out_dim)
        else:
            self.proj = nn.Linear(4 * in_dim, out_dim)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Map input lengths (B,) to output lengths (B,); works on ints too."""
        return subsampled_length(lengths, self.kind)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, F = x.shape
        lengths = lengths.to(x.device)
        valid = torch.arange(T, device=x.device) < lengths[:, None]  # (B, T)
        x = x.masked_fill(~valid[:, :, None], 0.0)  # (B, T, F)
        if self.conv is None:
            x = nn.functional.pad(x, (0, 0, 0, -T % 4))  # (B, 4 * T', F)
            x = x.reshape(B, -1, 4 * F)  # (B, T', 4F)
            return self.proj(x), self.output_lengths(lengths)
        if T < 7:
            x = nn.functional.pad(x, (0, 0, 0, 7 - T))  # (B, 7, F)
        y = self.conv(x.unsqueeze(1))  # (B, C, T', F')
        y = y.transpose(1, 2).flatten(2)  # (B, T', C * F')
        return self.proj(y), self.output_lengths(lengths)  # (B, T', D)
