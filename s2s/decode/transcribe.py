"""Transcribe waveforms with a speech checkpoint: features, CMVN, encoder, search.

Three searches (`decode.mode`): ctc, prefix beam search over the CTC head (greedy at
beam 1 without an LM); attention, beam search with the decoder alone; joint, the
decoder's beam search with every hypothesis also scored by CTC (`s2s.decode.joint`).
A CTC model has only the first; a joint model all three. Each can fuse an LSTM
language model (`--lm`, `s2s.decode.fusion`) and a word list (`--lexicon`,
`s2s.decode.lexicon`).

Audio longer than `decode.chunk_seconds` is split so memory stays bounded on long
recordings, differently per mode. Audio comes in as `AudioSource`s, read a window at
a time (a file through `AudioReader`), so no long recording is ever whole in memory:

- ctc: encoded in overlapping windows. Window starts are multiples of the 4x
  subsampling, so window k's output frame j is frame `start_k / 4 + j` of the whole
  file; frame posteriors are stitched at the middle of each overlap (where both
  windows have seen the most context), each window's share kept as it is encoded,
  and the whole file is then searched at once: memory is one batch of windows plus
  the posteriors, T' x V floats (18 MB an hour for 51 characters).
  With a BiLSTM, windowed posteriors differ slightly from whole-file ones near
  window edges: the overlap is that context.
- joint, attention: a decoder's output cannot be stitched frame by frame, so the
  audio is cut into consecutive segments, each at most a window long, at the
  quietest point (lowest smoothed energy, from one pass over the audio in
  windows) of the last `chunk_overlap` seconds before the window's end; each
  segment is decoded on its own and the texts are
  joined by a space. A word that straddles a cut (no pause in that stretch) can
  come out wrong, and nothing links the segments' hypotheses.

Shapes: T feature frames, T' = subsampled frames, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from s2s.config import DecodeConfig
from s2s.data.audio import AudioSource, Waveform
from s2s.data.batching import longest_first
from s2s.data.features import GlobalCMVN
from s2s.data.speech import SUBSAMPLING, FeatureSettings
from s2s.data.vocab import Vocab
from s2s.decode.beam import ScorerSum, TokenBonus
from s2s.decode.ctc import ctc_greedy, ctc_prefix_beam_search
from s2s.decode.fusion import LMScorer
from s2s.decode.joint import joint_beam_search
from s2s.decode.lexicon import Lexicon, LexiconScorer
from s2s.errors import S2SError
from s2s.memory import split_on_oom
from s2s.models.lm import LSTMLM
from s2s.models.speech import SpeechCTC, SpeechJoint
from s2s.precision import autocast_for, for_decoding

__all__ = ["Transcriber", "chunk_spans", "segment_spans", "speech_mode"]

_OOM_HINT = "lower decode.chunk_seconds or decode.batch_tokens, or decode on the CPU"
_MIN_OVERLAP = 16  # frames; stitching needs > 14 with the conv subsampler
_QUIET_FRAMES = 11  # energy smoothing for cuts, 0.11 s: longer than gaps in words
_SEARCH_GROUP = 32  # posteriors a CTC prefix search batch (Transcriber.search)
_ENERGY_FRAMES = 30_000  # frames of audio a read when finding cuts (5 minutes)


def speech_mode(model: SpeechCTC, mode: str) -> str:
    """The search `mode` (auto, joint, attention, ctc) resolved for `model`."""
    joint = isinstance(model, SpeechJoint)
    if mode == "auto":
        return "joint" if joint else "ctc"
    if mode not in ("joint", "attention", "ctc"):
        raise S2SError(f"unknown mode {mode!r}: joint, attention or ctc")
    if mode != "ctc" and not joint:
        raise S2SError(
            f"mode {mode} needs an attention decoder, and this checkpoint is a CTC "
            "model (model.task=ctc); use mode ctc, or train model.task=joint"
        )
    return mode


def chunk_spans(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Frame spans [a, b) of at most `window` frames covering [0, num_frames).

    Starts are multiples of 4; neighbours share at least `overlap` frames; the
    last span ends at `num_frames` and is a full window when the audio allows.
    """
    if num_frames <= window:
        return [(0, num_frames)]
    step = max(SUBSAMPLING, (window - overlap) // SUBSAMPLING * SUBSAMPLING)
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + step)
    # Pull the last window back so that it is a full one ending at num_frames.
    last = -(-(num_frames - window) // SUBSAMPLING) * SUBSAMPLING
    starts[-1] = max(starts[-2] + SUBSAMPLING, min(starts[-1], last))
    return [(a, min(a + window, num_frames)) for a in starts]


def segment_spans(
    energy: torch.Tensor, window: int, search: int
) -> list[tuple[int, int]]:
    """Consecutive frame spans [a, b) of at most `window` frames covering the
    frames of `energy` (T,); each cut is at the lowest energy among the last
    `search` frames of the window."""
    T, spans, a = energy.numel(), [], 0
    while T - a > window:
        lo = a + window - min(search, window - 1)
        cut = lo + int(energy[lo : a + window].argmin())
        spans.append((a, cut))
        a = cut
    spans.append((a, T))
    return spans


@dataclass
class _Piece:
    wave: int  # index of the waveform
    start: int  # first feature frame
    end: int  # one past the last feature frame
    # The output frames that go into the whole file's posteriors.
    keep: slice = field(default_factory=lambda: slice(None))


def _length_groups(lengths: list[int]) -> list[list[int]]:
    """Indices of `lengths`, longest first, `_SEARCH_GROUP` a group."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[k : k + _SEARCH_GROUP] for k in range(0, len(order), _SEARCH_GROUP)]


def _sources(waves: list[torch.Tensor | AudioSource]) -> list[AudioSource]:
    """Waveforms in memory wrapped as `AudioSource`s; sources as they are."""
    return [Waveform(w) if isinstance(w, torch.Tensor) else w for w in waves]


def _stitched(spans: list[tuple[int, int]]) -> list[slice]:
    """Which output frames of each window of `chunk_spans` go into the whole
    file's posteriors: neighbours meet at the middle of their overlap."""
    keeps, begin = [], 0  # begin: first global output frame still to fill
    for k, (a, b) in enumerate(spans):
        offset = a // SUBSAMPLING  # global index of this window's frame 0
        end = (spans[k + 1][0] + b) // 2 // SUBSAMPLING if k + 1 < len(spans) else None
        keeps.append(slice(begin - offset, None if end is None else end - offset))
        begin = end
    return keeps


class Transcriber:
    """Speech to text with a `SpeechCTC` or `SpeechJoint` model and the
    checkpoint's front end. `cfg.mode` picks the search (`speech_mode`); `lm` and
    `lm_weight` fuse a language model, `lexicon` a word list, into every search (the
    joint and attention searches: `joint_beam_search`; CTC prefix search: one
    `ScorerSum`, with `cfg.length_bonus` as a `TokenBonus`)."""

    def __init__(
        self,
        model: SpeechCTC,
        vocab: Vocab,
        features: FeatureSettings,
        cmvn: GlobalCMVN,
        cfg: DecodeConfig,
        device: torch.device,
        precision: str = "fp32",
        lm: LSTMLM | None = None,
        lm_weight: float = 0.0,
        lexicon: Lexicon | None = None,
        lexicon_weight: float = 0.0,
    ):
        self.mode = speech_mode(model, cfg.mode)
        self.model = for_decoding(model.to(device).eval(), device, precision)
        # Shallow fusion, also at beam 1: the joint and attention searches step the
        # LM themselves; CTC prefix beam search gets it as a scorer.
        self.lm = lm.to(device).eval() if lm is not None else None
        self.lm_weight = lm_weight
        # A word list (`s2s.decode.lexicon`) joins every search as a scorer.
        self.fusion = []
        if lexicon is not None:
            self.fusion.append(LexiconScorer(lexicon, lexicon_weight))
        scorers = list(self.fusion)
        if self.lm is not None and self.mode == "ctc":
            scorers.insert(0, LMScorer(self.lm, lm_weight))
        if cfg.length_bonus and self.mode == "ctc":  # the others add it themselves
            scorers.append(TokenBonus(cfg.length_bonus))
        self.scorer = ScorerSum(scorers) if scorers else None  # CTC prefix search's
        self.vocab, self.features, self.cmvn = vocab, features, cmvn
        self.extract = features.extractor()
        self.cfg, self.device = cfg, device
        self.amp = autocast_for(device, precision)
        frames_per_second = 1000.0 / features.frame_shift_ms
        self.window = max(
            4 * _MIN_OVERLAP, round(cfg.chunk_seconds * frames_per_second)
        )
        self.overlap = max(_MIN_OVERLAP, round(cfg.chunk_overlap * frames_per_second))

    def transcribe(self, waves: list[torch.Tensor | AudioSource]) -> list[str]:
        """Mono waveforms (N,), or `AudioSource`s, at the checkpoint's sample rate
        -> texts."""
        if not waves:
            return []
        waves = _sources(waves)
        if self.mode == "ctc":
            return self.search(self.log_probs(waves))
        return self.decode_segments(waves)

    @torch.inference_mode()
    def log_probs(self, waves: list[torch.Tensor | AudioSource]) -> list[torch.Tensor]:
        """Frame posteriors of each waveform, (T', V) float32 on the CPU."""
        waves = _sources(waves)
        pieces = []
        for w, wave in enumerate(waves):
            frames = self._num_frames(wave)
            spans = chunk_spans(frames, self.window, self.overlap)
            keeps = _stitched(spans)
            pieces += [
                _Piece(w, a, b, k) for (a, b), k in zip(spans, keeps, strict=True)
            ]
        out: dict[tuple[int, int], torch.Tensor] = {}
        for group in self._groups(pieces):
            # Out of memory: halve the batch and retry, down to one window.
            encoded = split_on_oom(
                lambda part: self._encode(waves, part), group, self.device, _OOM_HINT
            )
            for p, lp in zip(group, encoded, strict=True):
                # A copy, so the batch's (B, T', V) tensor is freed.
                out[p.wave, p.start] = lp[p.keep].clone()
        parts: list[list[torch.Tensor]] = [[] for _ in waves]
        for p in pieces:  # in order of waves, then time
            parts[p.wave].append(out.pop((p.wave, p.start)))
        return [torch.cat(ps) if len(ps) > 1 else ps[0] for ps in parts]

    def _num_frames(self, wave: AudioSource) -> int:
        frames = self.extract.num_frames(wave.num_samples)
        if frames == 0:
            raise S2SError(
                f"audio of {wave.num_samples} samples is shorter than one "
                f"{self.features.frame_length_ms:g} ms frame"
            )
        return frames

    def _encode(
        self, waves: list[AudioSource], group: list[_Piece]
    ) -> list[torch.Tensor]:
        """Frame posteriors of each piece of `group`, (T', V) float32 on the CPU."""
        x, lengths = self._features(waves, group)
        with self.amp:
            log_probs, out_lengths = self.model(x, lengths)
        log_probs = log_probs.float().cpu()  # (B, T', V)
        return [log_probs[b, :n] for b, n in enumerate(out_lengths.tolist())]

    def _groups(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        """Longest first, at most `batch_tokens` padded feature frames a group."""
        sizes = [p.end - p.start for p in pieces]
        batches = longest_first(sizes, self.cfg.batch_tokens)
        return [[pieces[i] for i in batch] for batch in batches]

    def _features(
        self, waves: list[AudioSource], group: list[_Piece]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features of the pieces: (B, T, F) on the device, lengths (B,)."""
        shift, window = self.extract.shift, self.extract.window
        feats = []
        for p in group:
            samples = waves[p.wave].read(p.start * shift, (p.end - 1) * shift + window)
            feats.append(self.cmvn.normalize(self.extract(samples)))  # (T, F)
        lengths = torch.tensor([len(f) for f in feats])
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, F)
        return x.to(self.device), lengths

    def segments(self, wave: torch.Tensor | AudioSource) -> list[tuple[int, int]]:
        """Frame spans of `wave` for the joint and attention searches."""
        (wave,) = _sources([wave])
        frames = self.extract.num_frames(wave.num_samples)
        shift = self.extract.shift
        block = _ENERGY_FRAMES
        power = torch.cat(
            [
                wave.read(a * shift, min(a + block, frames) * shift)
                .float()
                .reshape(-1, shift)
                .pow(2)
                .mean(1)
                for a in range(0, frames, block)
            ]
        )  # (T,)
        smooth = torch.nn.functional.avg_pool1d(
            power[None, None],
            _QUIET_FRAMES,
            stride=1,
            padding=_QUIET_FRAMES // 2,
            count_include_pad=False,
        )[0, 0]  # (T,)
        return segment_spans(smooth, self.window, self.overlap)

    @torch.inference_mode()
    def decode_segments(self, waves: list[torch.Tensor | AudioSource]) -> list[str]:
        """Joint or attention search over each segment; texts joined per wave."""
        waves = _sources(waves)
        pieces = []
        for w, wave in enumerate(waves):
            self._num_frames(wave)
            pieces += [_Piece(w, a, b) for a, b in self.segments(wave)]
        out: dict[tuple[int, int], list[int]] = {}
        for group in self._groups(pieces):
            # Out of memory: halve the batch and retry, down to one segment.
            best = split_on_oom(
                lambda part: self._search(waves, part), group, self.device, _OOM_HINT
            )
            for p, hyp in zip(group, best, strict=True):
                out[p.wave, p.start] = hyp
        ids: list[list[list[int]]] = [[] for _ in waves]
        for p in pieces:  # in order of waves, then time
            ids[p.wave].append(out[p.wave, p.start])
        texts = [" ".join(self.vocab.decode(segs)) for segs in ids]
        return [" ".join(text.split()) for text in texts]

    def _search(self, waves: list[AudioSource], group: list[_Piece]) -> list[list[int]]:
        """The best token ids of each piece of `group` (joint or attention search)."""
        cfg = self.cfg
        x, lengths = self._features(waves, group)
        with self.amp:
            log_probs, out_lengths, mem, state = self.model.encode_both(x, lengths)
            nbest = joint_beam_search(
                self.model.decoder,
                mem,
                state,
                log_probs,
                out_lengths,
                beam=cfg.beam,
                ctc_weight=cfg.ctc_weight if self.mode == "joint" else 0.0,
                length_bonus=cfg.length_bonus,
                candidates=cfg.ctc_candidates,
                lm=self.lm,
                lm_weight=self.lm_weight,
                blank=self.model.blank,
                fusion=self.fusion,
            )
        return [hyps[0][0] if hyps else [] for hyps in nbest]

    def search(self, log_probs: list[torch.Tensor]) -> list[str]:
        """Greedy (beam 1) or prefix beam search over each (T', V) posterior.

        The prefix search runs over groups of `_SEARCH_GROUP` posteriors, longest
        first: one batch of all would pad each to the longest and step through its
        frames (the asr-cs test set: 15,322 frames in all, the longest 546, so 6.3
        times the work; ranked by length, the groups cost 2.7 times less)."""
        if self.cfg.beam == 1 and self.scorer is None:
            lengths = torch.tensor([len(lp) for lp in log_probs])
            padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True)
            ids = ctc_greedy(padded, lengths, self.model.blank)
        else:
            ids = [[] for _ in log_probs]
            for group in _length_groups([len(lp) for lp in log_probs]):
                part = [log_probs[i] for i in group]
                padded = torch.nn.utils.rnn.pad_sequence(part, batch_first=True)
                if self.scorer is not None:  # the LM states live on the LM's device
                    padded = padded.to(self.device)
                nbest = ctc_prefix_beam_search(
                    padded,
                    torch.tensor([len(lp) for lp in part]),
                    self.cfg.beam,
                    self.model.blank,
                    prefix_scorer=self.scorer,
                )
                for i, hyps in zip(group, nbest, strict=True):
                    ids[i] = hyps[0][0]
        # A character model may emit word boundaries twice in a row: one space.
        return [" ".join(text.split()) for text in self.vocab.decode(ids)]
