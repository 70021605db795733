"""Transcribe waveforms with a CTC checkpoint: features, CMVN, encoder, search.

Audio longer than `decode.chunk_seconds` is encoded in overlapping windows, so
memory stays bounded on long recordings. Window starts are multiples of the 4x
subsampling, so window k's output frame j is frame `start_k / 4 + j` of the whole
file; frame posteriors are stitched at the middle of each overlap (where both
windows have seen the most context) and the whole file is then searched at once.
With a BiLSTM, windowed posteriors differ slightly from whole-file ones near window
edges: the overlap is that context.

Shapes: T feature frames, T' = subsampled frames, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s2s.config import DecodeConfig
from s2s.data.features import GlobalCMVN
from s2s.data.speech import FeatureSettings
from s2s.data.vocab import Vocab
from s2s.decode.ctc import ctc_greedy, ctc_prefix_beam_search
from s2s.errors import S2SError
from s2s.memory import split_on_oom
from s2s.models.speech import SpeechCTC
from s2s.precision import autocast_for

__all__ = ["Transcriber", "chunk_spans"]

_SUBSAMPLING = 4  # frames per encoder step (both subsamplers)
_MIN_OVERLAP = 16  # frames; stitching needs > 14 with the conv subsampler


def chunk_spans(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Frame spans [a, b) of at most `window` frames covering [0, num_frames).

    Starts are multiples of 4; neighbours share at least `overlap` frames; the
    last span ends at `num_frames` and is a full window when the audio allows.
    """
    if num_frames <= window:
        return [(0, num_frames)]
    step = max(_SUBSAMPLING, (window - overlap) // _SUBSAMPLING * _SUBSAMPLING)
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + step)
    # Pull the last window back so that it is a full one ending at num_frames.
    last = -(-(num_frames - window) // _SUBSAMPLING) * _SUBSAMPLING
    starts[-1] = max(starts[-2] + _SUBSAMPLING, min(starts[-1], last))
    return [(a, min(a + window, num_frames)) for a in starts]


@dataclass
class _Piece:
    wave: int  # index of the waveform
    start: int  # first feature frame
    end: int  # one past the last feature frame


class Transcriber:
    """Speech to text with a `SpeechCTC` model and the checkpoint's front end."""

    def __init__(
        self,
        model: SpeechCTC,
        vocab: Vocab,
        features: FeatureSettings,
        cmvn: GlobalCMVN,
        cfg: DecodeConfig,
        device: torch.device,
        precision: str = "fp32",
    ):
        self.model = model.to(device).eval()
        self.vocab, self.features, self.cmvn = vocab, features, cmvn
        self.extract = features.extractor()
        self.cfg, self.device = cfg, device
        self.amp = autocast_for(device, precision)
        frames_per_second = 1000.0 / features.frame_shift_ms
        self.window = max(
            4 * _MIN_OVERLAP, round(cfg.chunk_seconds * frames_per_second)
        )
        self.overlap = max(_MIN_OVERLAP, round(cfg.chunk_overlap * frames_per_second))

    def transcribe(self, waves: list[torch.Tensor]) -> list[str]:
        """Mono waveforms (N,) at the checkpoint's sample rate -> texts."""
        if not waves:
            return []
        log_probs = self.log_probs(waves)
        return self.search(log_probs)

    @torch.inference_mode()
    def log_probs(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Frame posteriors of each waveform, (T', V) float32 on the CPU."""
        pieces = []
        for w, wave in enumerate(waves):
            frames = self.extract.num_frames(wave.numel())
            if frames == 0:
                raise S2SError(
                    f"audio of {wave.numel()} samples is shorter than one "
                    f"{self.features.frame_length_ms:g} ms frame"
                )
            spans = chunk_spans(frames, self.window, self.overlap)
            pieces += [_Piece(w, a, b) for a, b in spans]
        out: dict[tuple[int, int], torch.Tensor] = {}
        pieces.sort(key=lambda p: p.end - p.start, reverse=True)
        start = 0
        while start < len(pieces):
            longest = pieces[start].end - pieces[start].start
            size = max(1, self.cfg.batch_tokens // longest)
            group = pieces[start : start + size]
            # Out of memory: halve the batch and retry, down to one window.
            encoded = split_on_oom(
                lambda part: self._encode(waves, part),
                group,
                self.device,
                "lower decode.chunk_seconds, or transcribe on the CPU",
            )
            for p, lp in zip(group, encoded, strict=True):
                out[p.wave, p.start] = lp
            start += size
        return [self._stitch(out, w, wave) for w, wave in enumerate(waves)]

    def _encode(
        self, waves: list[torch.Tensor], group: list[_Piece]
    ) -> list[torch.Tensor]:
        shift, window = self.extract.shift, self.extract.window
        feats = []
        for p in group:
            samples = waves[p.wave][p.start * shift : (p.end - 1) * shift + window]
            feats.append(self.cmvn.normalize(self.extract(samples)))  # (T, F)
        lengths = torch.tensor([len(f) for f in feats])
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, F)
        with self.amp:
            log_probs, out_lengths = self.model(x.to(self.device), lengths)
        log_probs = log_probs.float().cpu()  # (B, T', V)
        return [log_probs[b, :n] for b, n in enumerate(out_lengths.tolist())]

    def _stitch(
        self, out: dict[tuple[int, int], torch.Tensor], w: int, wave: torch.Tensor
    ) -> torch.Tensor:
        spans = chunk_spans(
            self.extract.num_frames(wave.numel()), self.window, self.overlap
        )
        if len(spans) == 1:
            return out[w, 0]
        parts, begin = [], 0  # begin: first global output frame still to fill
        for k, (a, b) in enumerate(spans):
            lp = out[w, a]
            offset = a // _SUBSAMPLING  # global index of this window's frame 0
            if k + 1 < len(spans):
                end = (spans[k + 1][0] + b) // 2 // _SUBSAMPLING  # overlap middle
            else:
                end = offset + len(lp)
            parts.append(lp[begin - offset : end - offset])
            begin = end
        return torch.cat(parts)  # (T', V)

    def search(self, log_probs: list[torch.Tensor]) -> list[str]:
        """Greedy (beam 1) or prefix beam search over each (T', V) posterior."""
        lengths = torch.tensor([len(lp) for lp in log_probs])
        padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True)
        blank = self.model.blank
        if self.cfg.beam == 1:
            ids = ctc_greedy(padded, lengths, blank)
        else:
            nbest = ctc_prefix_beam_search(padded, lengths, self.cfg.beam, blank)
            ids = [hyps[0][0] for hyps in nbest]
        # A character model may emit word boundaries twice in a row: one space.
        return [" ".join(text.split()) for text in self.vocab.decode(ids)]
