"""Transcribe waveforms with an exported speech model, as `s2s.decode.transcribe`
does: the same three searches (ctc, attention, joint), the same batching of
pieces, and the same handling of long audio (ctc: overlapping windows whose
posteriors are stitched at the middle of each overlap; joint, attention: segments
cut at the quietest point before each window's end).

Shapes: T feature frames, T' = subsampled frames, V vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2s_runtime import RunError
from s2s_runtime.ctc import LMScorer, ctc_greedy, ctc_prefix_beam_search
from s2s_runtime.features import Features
from s2s_runtime.joint import joint_beam_search
from s2s_runtime.model import ExportedModel

__all__ = ["Transcriber", "chunk_spans", "segment_spans"]

_SUBSAMPLING = 4
_MIN_OVERLAP = 16
_QUIET_FRAMES = 11
_SEARCH_GROUP = 32  # posteriors a CTC prefix search batch (s2s.decode.transcribe)


def chunk_spans(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Frame spans of at most `window` frames, starts multiples of 4, neighbours
    sharing at least `overlap` frames (`s2s.decode.transcribe.chunk_spans`)."""
    if num_frames <= window:
        return [(0, num_frames)]
    step = max(_SUBSAMPLING, (window - overlap) // _SUBSAMPLING * _SUBSAMPLING)
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + step)
    last = -(-(num_frames - window) // _SUBSAMPLING) * _SUBSAMPLING
    starts[-1] = max(starts[-2] + _SUBSAMPLING, min(starts[-1], last))
    return [(a, min(a + window, num_frames)) for a in starts]


def segment_spans(
    energy: np.ndarray, window: int, search: int
) -> list[tuple[int, int]]:
    """Consecutive spans of at most `window` frames, each cut at the lowest energy
    among the last `search` frames of the window."""
    T, spans, a = energy.size, [], 0
    while T - a > window:
        lo = a + window - min(search, window - 1)
        cut = lo + int(energy[lo : a + window].argmin())
        spans.append((a, cut))
        a = cut
    spans.append((a, T))
    return spans


@dataclass
class _Piece:
    wave: int
    start: int
    end: int


def _padded(log_probs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, V) zero-padded posteriors and their lengths (B,)."""
    lengths = np.array([len(lp) for lp in log_probs], np.int64)
    padded = np.zeros(
        (len(log_probs), int(lengths.max()), log_probs[0].shape[1]), np.float32
    )
    for b, lp in enumerate(log_probs):
        padded[b, : len(lp)] = lp
    return padded, lengths


class Transcriber:
    """Speech to text with an exported ctc or joint model. `cfg` holds the decode
    settings (the manifest's, with overrides); `lm_weight` fuses the exported LM
    into the search of the mode, as `s2s transcribe --lm` does."""

    def __init__(
        self, model: ExportedModel, cfg: dict[str, Any], lm_weight: float | None = None
    ):
        if model.kind not in ("ctc", "joint"):
            raise RunError(
                f"{model.directory} holds a {model.kind} model; transcribe needs a "
                "speech model (use translate)"
            )
        mode = cfg["mode"]
        if mode == "auto":
            mode = "joint" if model.has_decoder else "ctc"
        if mode not in ("joint", "attention", "ctc"):
            raise RunError(f"unknown mode {mode!r}: joint, attention or ctc")
        if mode != "ctc" and not model.has_decoder:
            raise RunError(
                f"mode {mode} needs an attention decoder, and this is a CTC "
                "model; use mode ctc"
            )
        self.model, self.cfg, self.mode = model, cfg, mode
        self.lm, self.lm_weight, self.scorer = None, 0.0, None
        if lm_weight is not None:
            if model.lm is None:
                raise RunError(
                    f"--lm-weight needs an LM in {model.directory} "
                    "(export it with `s2s export ... --lm LM.pt`)"
                )
            self.lm, self.lm_weight = model.lm, lm_weight
            if mode == "ctc":
                self.scorer = LMScorer(model.lm, lm_weight)
        m = model.manifest
        cmvn = json.loads((model.directory / m["cmvn"]).read_text("utf-8"))
        self.features = Features(m["features"], cmvn["mean"], cmvn["std"])
        fps = 1000.0 / self.features.frame_shift_ms
        self.window = max(4 * _MIN_OVERLAP, round(cfg["chunk_seconds"] * fps))
        self.overlap = max(_MIN_OVERLAP, round(cfg["chunk_overlap"] * fps))

    def transcribe(self, waves: list[np.ndarray]) -> list[str]:
        """Mono float32 waveforms (N,) at the model's sample rate -> texts."""
        if not waves:
            return []
        for wave in waves:
            if self.features.num_frames(wave.size) == 0:
                raise RunError(
                    f"audio of {wave.size} samples is shorter than one "
                    f"{self.features.frame_length_ms:g} ms frame"
                )
        if self.mode == "ctc":
            return self.search(self.log_probs(waves))
        return self.decode_segments(waves)

    def _groups(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        pieces = sorted(pieces, key=lambda p: p.end - p.start, reverse=True)
        groups, start = [], 0
        while start < len(pieces):
            longest = pieces[start].end - pieces[start].start
            size = max(1, self.cfg["batch_tokens"] // longest)
            groups.append(pieces[start : start + size])
            start += size
        return groups

    def _features(self, waves, group: list[_Piece]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised features of the pieces, (B, T, F) zero-padded, lengths (B,)."""
        f = self.features
        feats = [
            f(waves[p.wave][p.start * f.shift : (p.end - 1) * f.shift + f.window])
            for p in group
        ]
        lengths = np.array([len(x) for x in feats], np.int64)
        x = np.zeros((len(feats), int(lengths.max()), f.num_mels), np.float32)
        for b, feat in enumerate(feats):
            x[b, : len(feat)] = feat
        return x, lengths

    def log_probs(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Frame posteriors (T', V) of each waveform, windows stitched."""
        pieces = []
        for w, wave in enumerate(waves):
            frames = self.features.num_frames(wave.size)
            pieces += [
                _Piece(w, a, b)
                for a, b in chunk_spans(frames, self.window, self.overlap)
            ]
        out: dict[tuple[int, int], np.ndarray] = {}
        for group in self._groups(pieces):
            enc = self.model.encode_speech(*self._features(waves, group))
            for b, p in enumerate(group):
                out[p.wave, p.start] = enc["log_probs"][b, : enc["lengths"][b]]
        return [self._stitch(out, w, wave) for w, wave in enumerate(waves)]

    def _stitch(self, out: dict, w: int, wave: np.ndarray) -> np.ndarray:
        spans = chunk_spans(
            self.features.num_frames(wave.size), self.window, self.overlap
        )
        if len(spans) == 1:
            return out[w, 0]
        parts, begin = [], 0
        for k, (a, b) in enumerate(spans):
            lp = out[w, a]
            offset = a // _SUBSAMPLING
            if k + 1 < len(spans):
                end = (spans[k + 1][0] + b) // 2 // _SUBSAMPLING
            else:
                end = offset + len(lp)
            parts.append(lp[begin - offset : end - offset])
            begin = end
        return np.concatenate(parts)

    def search(self, log_probs: list[np.ndarray]) -> list[str]:
        """Greedy (beam 1, no LM) or prefix beam search over each posterior; the
        prefix search over groups of posteriors of like length (as s2s's)."""
        blank = self.model.blank
        if self.cfg["beam"] == 1 and self.scorer is None:
            ids = ctc_greedy(*_padded(log_probs), blank)
        else:
            ids = [[] for _ in log_probs]
            lengths = [len(lp) for lp in log_probs]
            order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
            for k in range(0, len(order), _SEARCH_GROUP):
                group = order[k : k + _SEARCH_GROUP]
                nbest = ctc_prefix_beam_search(
                    *_padded([log_probs[i] for i in group]),
                    self.cfg["beam"],
                    blank,
                    prefix_scorer=self.scorer,
                )
                for i, hyps in zip(group, nbest, strict=True):
                    ids[i] = hyps[0][0]
        return [" ".join(t.split()) for t in self.model.tgt_vocab.decode(ids)]

    def segments(self, wave: np.ndarray) -> list[tuple[int, int]]:
        """Frame spans of `wave` for the joint and attention searches."""
        frames = self.features.num_frames(wave.size)
        shift = self.features.shift
        power = (
            wave[: frames * shift].astype(np.float32).reshape(frames, shift) ** 2
        ).mean(1)
        half = _QUIET_FRAMES // 2
        sums = np.convolve(power, np.ones(_QUIET_FRAMES, np.float32), mode="full")
        counts = np.convolve(np.ones(frames), np.ones(_QUIET_FRAMES), mode="full")
        smooth = sums[half : half + frames] / counts[half : half + frames]
        return segment_spans(smooth, self.window, self.overlap)

    def decode_segments(self, waves: list[np.ndarray]) -> list[str]:
        pieces = []
        for w, wave in enumerate(waves):
            pieces += [_Piece(w, a, b) for a, b in self.segments(wave)]
        out: dict[tuple[int, int], list[int]] = {}
        cfg = self.cfg
        for group in self._groups(pieces):
            enc = self.model.encode_speech(*self._features(waves, group))
            nbest = joint_beam_search(
                self.model,
                enc["mem"],
                enc["state"],
                enc["log_probs"],
                enc["lengths"],
                beam=cfg["beam"],
                ctc_weight=cfg["ctc_weight"] if self.mode == "joint" else 0.0,
                length_bonus=cfg["length_bonus"],
                candidates=cfg["ctc_candidates"],
                lm=self.lm,
                lm_weight=self.lm_weight,
                blank=self.model.blank,
            )
            for p, hyps in zip(group, nbest, strict=True):
                out[p.wave, p.start] = hyps[0][0] if hyps else []
        ids: list[list[list[int]]] = [[] for _ in waves]
        for p in pieces:
            ids[p.wave].append(out[p.wave, p.start])
        texts = [" ".join(self.model.tgt_vocab.decode(segs)) for segs in ids]
        return [" ".join(t.split()) for t in texts]
