"""Speech datasets: one split of a `s2s prep speech` directory, and its batches.

A split holds log-mel features (float16 rows, memory-mapped) and target token ids;
`meta.json` holds the feature settings and the training set's CMVN statistics, which
also travel in every checkpoint so `s2s transcribe` computes the same inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2s.data.binarized import TokenArray, check_count, read_meta
from s2s.data.features import FeatureExtractor, GlobalCMVN
from s2s.data.vocab import PAD, Vocab
from s2s.errors import S2SError

__all__ = [
    "FeatureSettings",
    "Noise",
    "SpeechBatch",
    "SpeechData",
    "add_noise",
    "collate_speech",
    "min_ctc_frames",
    "subsampled_length",
    "SUBSAMPLING",
]


@dataclass(frozen=True)
class FeatureSettings:
    """How waveforms become features; stored in meta.json and checkpoints."""

    kind: str = "fbank"  # fbank (Kaldi) or melspec (torchaudio)
    num_mels: int = 80
    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0

    def extractor(self) -> FeatureExtractor:
        return FeatureExtractor(**asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSettings:
        try:
            return cls(**d)
        except TypeError as e:
            raise S2SError(f"unknown feature settings {d}: {e}") from None


@dataclass
class SpeechBatch:
    feats: torch.Tensor  # (B, T, F) float32, CMVN-normalised, zero-padded
    feat_lens: torch.Tensor  # (B,) frames, on the CPU
    targets: torch.Tensor  # (B, U) token ids, PAD-padded (PAD is the CTC blank)
    target_lens: torch.Tensor  # (B,)
    ids: np.ndarray  # (B,) dataset indices

    def to(self, device: torch.device) -> SpeechBatch:
        return SpeechBatch(
            self.feats.to(device, non_blocking=True),
            self.feat_lens,
            self.targets.to(device, non_blocking=True),
            self.target_lens.to(device),
            self.ids,
        )


class SpeechData:
    """One split of a `s2s prep speech` directory."""

    def __init__(self, directory: str | Path, split: str):
        self.directory = Path(directory)
        self.meta = read_meta(self.directory)
        if self.meta.get("task") != "speech":
            raise S2SError(
                f"{self.directory} holds {self.meta.get('task')} data, not speech "
                f"(made by `s2s prep speech`)"
            )
        if split not in self.meta["shards"]:
            raise S2SError(f"{self.directory}: has no {split!r} split")
        self.split = split
        self.features = FeatureSettings.from_dict(self.meta["features"])
        shards = self.meta["shards"][split]
        self.feats = TokenArray(
            self.directory, shards["feats"], "float16", dim=self.features.num_mels
        )
        self.tgt = TokenArray(self.directory, shards["tgt"], self.meta["dtype"])
        if len(self.feats) != len(self.tgt):
            raise S2SError(f"{self.directory}: {split} audio and text counts differ")
        check_count(self.meta, self.directory, split, len(self.tgt))
        self.cmvn = GlobalCMVN.from_dict(self.meta["cmvn"])

    def __len__(self) -> int:
        return len(self.feats)

    def vocab(self) -> Vocab:
        return Vocab.load(self.directory / self.meta["vocab"]["tgt"])

    def seconds(self) -> float:
        return float(self.feats.lengths.sum()) * self.features.frame_shift_ms / 1000

    def references(self) -> list[str]:
        """The transcripts of the split, as in its manifest."""
        path = self.directory / f"{self.split}.ref.txt"
        return path.read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class Noise:
    """Noise for training batches (`model.noise_prob`, `noise_snr_min`, `_max`)."""

    prob: float
    snr_min: float
    snr_max: float


def add_noise(feats: np.ndarray, snr_db: float, colour: float) -> np.ndarray:
    """Stationary noise added to one utterance's log-mel features.

    Features are the log of mel-band power (`FeatureExtractor`: Kaldi fbank or
    log(melspec)), and the powers of independent signals add, so noise goes in as
    ``log(exp(x) + n)``. The noise's mean power per band is the utterance's average
    power spectrum raised to `colour` (0: flat across the mel bins; 1: shaped like the
    utterance's own speech, like distant babble), scaled so that its total is the
    speech's over ``10 ** (snr_db / 10)``; each cell's power is that mean times an
    Exp(1) draw (a noise periodogram's spread), from torch's global RNG, so training
    stays reproducible under `torch.manual_seed`.

    Shapes: feats (T, F) -> (T, F) float32.
    """
    power = np.exp(feats.astype(np.float64))  # (T, F)
    ltas = power.mean(axis=0)  # (F,) the utterance's average spectrum
    shape = ltas**colour
    mean = shape * (ltas.sum() / shape.sum()) * 10.0 ** (-snr_db / 10.0)  # (F,)
    cells = torch.empty(feats.shape, dtype=torch.float64).exponential_().numpy()
    return np.log(power + mean * cells).astype(np.float32)


def collate_speech(
    data: SpeechData, ids: np.ndarray, noise: Noise | None = None
) -> SpeechBatch:
    """The batch of utterances `ids`, CMVN-normalised and zero-padded; with `noise`
    (training batches only) each utterance gets noise with probability `noise.prob`
    (`add_noise`) before CMVN."""
    mean = data.cmvn.mean.numpy().astype(np.float32)  # (F,)
    std = data.cmvn.std.numpy().astype(np.float32)  # (F,)
    raw = [data.feats[int(i)] for i in ids]  # each (T, F)
    if noise is not None and noise.prob > 0:
        for b, f in enumerate(raw):
            if float(torch.rand(())) < noise.prob:
                u = torch.rand(2).tolist()
                snr = noise.snr_min + u[0] * (noise.snr_max - noise.snr_min)
                raw[b] = add_noise(f, snr, colour=u[1])
    feats = [(f - mean) / std for f in raw]  # each (T, F)
    tgts = [data.tgt[int(i)] for i in ids]
    B, F = len(ids), data.features.num_mels
    x = np.zeros((B, max(len(f) for f in feats), F), dtype=np.float32)
    y = np.full((B, max(1, max(len(t) for t in tgts))), PAD, dtype=np.int64)
    for b, (f, t) in enumerate(zip(feats, tgts, strict=True)):
        x[b, : len(f)] = f
        y[b, : len(t)] = t
    return SpeechBatch(
        feats=torch.from_numpy(x),
        feat_lens=torch.tensor([len(f) for f in feats], dtype=torch.int64),
        targets=torch.from_numpy(y),
        target_lens=torch.tensor([len(t) for t in tgts], dtype=torch.int64),
        ids=np.asarray(ids),
    )


def min_ctc_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Fewest input frames that can emit each target: its length plus one blank
    between every pair of equal neighbours. targets (B, U), lengths (B,) -> (B,)."""
    U = targets.shape[1]
    valid = torch.arange(1, U, device=targets.device) < target_lengths[:, None]
    repeats = ((targets[:, 1:] == targets[:, :-1]) & valid).sum(dim=1)  # (B,)
    return target_lengths + repeats


SUBSAMPLING = 4  # input frames per encoder step, with either subsampler


def subsampled_length(lengths, kind: str = "conv"):
    """Frames (ints or a tensor) left after the front end's 4x subsampling.

    conv: two kernel-3 stride-2 convolutions without padding over at least 7
    frames, ``((max(T, 7) - 1) // 2 - 1) // 2``; stack: ``ceil(T / 4)``.
    """
    if kind == "stack":
        return (lengths + SUBSAMPLING - 1) // SUBSAMPLING
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.clamp_min(7)
    else:
        lengths = max(lengths, 7)
    return ((lengths - 1) // 2 - 1) // 2
