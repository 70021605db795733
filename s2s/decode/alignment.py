"""What a model looks at while it decodes one input, for pictures (`s2s plot
attention`): the decoder's attention over the source pieces of a translation, and
for speech the log-mel features, the CTC posteriors and (joint models) the
decoder's attention over the encoder frames.

The hypothesis comes from the checkpoint's search (`decode.beam`; for a joint
model `decode.mode` joint or attention) and its tokens are fed back through
`AttentionDecoder.step`, which returns each step's attention weights; a CTC model
(or mode ctc) names its tokens by greedy best-path decoding. Shapes: S source
tokens (EOS included), U target tokens (EOS included), T feature frames, T' encoder
frames, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from s2s.config import DecodeConfig
from s2s.data.features import GlobalCMVN
from s2s.data.speech import FeatureSettings
from s2s.data.vocab import BOS, EOS, Vocab
from s2s.decode.ctc import ctc_greedy
from s2s.decode.joint import joint_beam_search
from s2s.decode.search import beam_search, greedy_search
from s2s.decode.transcribe import speech_mode
from s2s.errors import S2SError
from s2s.models.decoder import AttentionDecoder, DecoderState, Memory
from s2s.models.seq2seq import Seq2Seq
from s2s.models.speech import SpeechCTC

__all__ = [
    "TranslationAlignment",
    "SpeechAlignment",
    "translation_alignment",
    "speech_alignment",
]


@dataclass
class TranslationAlignment:
    src_pieces: list[str]  # S, with </s>
    tgt_pieces: list[str]  # U, with </s>
    weights: np.ndarray  # (U, S) attention of each output token
    text: str  # the translation


@dataclass
class SpeechAlignment:
    feats: np.ndarray  # (T, F) log-mel features before CMVN
    frame_seconds: float  # seconds between feature frames
    log_probs: np.ndarray  # (T', V) CTC log-posteriors
    blank: int
    pieces: list[str]  # the vocabulary: id -> piece
    text: str  # the transcript of the checkpoint's search
    mode: str  # that search: ctc, joint or attention
    tgt_pieces: list[str] | None = None  # U, with </s> (joint models)
    weights: np.ndarray | None = None  # (U, T') decoder attention (joint models)


def _forced_attention(
    decoder: AttentionDecoder, mem: Memory, state: DecoderState, ids: list[int]
) -> np.ndarray:
    """Feed BOS + `ids` through the decoder: attention rows (len(ids) + 1, S), the
    last one the step that emits EOS."""
    rows = []
    tokens = torch.tensor([BOS, *ids], device=mem.values.device)  # (U,)
    for t in range(tokens.numel()):
        _, state, attn = decoder.step(tokens[t : t + 1], state, mem)  # attn (1, S)
        rows.append(attn[0].float().cpu())
    return torch.stack(rows).numpy()  # (U, S)


def _pieces(vocab: Vocab, ids: list[int]) -> list[str]:
    return [vocab.sp.id_to_piece(i) for i in ids]


@torch.inference_mode()
def translation_alignment(
    model: Seq2Seq,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    cfg: DecodeConfig,
    sentence: str,
) -> TranslationAlignment:
    """Translate `sentence` (greedy at decode.beam 1, else beam search) and return
    the attention of every output token over the source pieces."""
    model.eval()
    device = next(model.parameters()).device
    ids = src_vocab.encode([sentence])[0] + [EOS]
    if len(ids) == 1:
        raise S2SError("the input is empty: give a sentence with --input")
    if len(ids) > cfg.max_input_tokens:
        raise S2SError(
            f"the input is {len(ids)} tokens long, over "
            f"decode.max_input_tokens={cfg.max_input_tokens}"
        )
    src = torch.tensor([ids], device=device)  # (1, S)
    lens = torch.tensor([len(ids)])
    max_len = (lens.float() * cfg.max_len_ratio).long() + cfg.max_len_a
    if cfg.beam == 1:
        hyp = greedy_search(model, src, lens, max_len)[0][0]
    else:
        hyp = beam_search(model, src, lens, max_len, cfg.beam, cfg.lenpen)[0][0][0]
    mem, state = model.encode(src, lens)
    weights = _forced_attention(model.decoder, mem, state, hyp)  # (U, S)
    return TranslationAlignment(
        src_pieces=_pieces(src_vocab, ids),
        tgt_pieces=_pieces(tgt_vocab, [*hyp, EOS]),
        weights=weights,
        text=tgt_vocab.decode([hyp])[0],
    )


@torch.inference_mode()
def speech_alignment(
    model: SpeechCTC,
    vocab: Vocab,
    features: FeatureSettings,
    cmvn: GlobalCMVN,
    cfg: DecodeConfig,
    wave: torch.Tensor,
) -> SpeechAlignment:
    """Features, CTC posteriors and (joint models) decoder attention of one
    waveform (N,) at the checkpoint's sample rate, encoded whole (at most
    decode.chunk_seconds long)."""
    model.eval()
    device = next(model.parameters()).device
    extract = features.extractor()
    seconds = wave.numel() / features.sample_rate
    if seconds > cfg.chunk_seconds:
        raise S2SError(
            f"the audio is {seconds:.1f} s long; plotting takes at most "
            f"decode.chunk_seconds={cfg.chunk_seconds:g} s (cut it shorter)"
        )
    raw = extract(wave)  # (T, F)
    x = cmvn.normalize(raw)[None].to(device)  # (1, T, F)
    lengths = torch.tensor([raw.size(0)])
    mode = speech_mode(model, cfg.mode)
    pieces = _pieces(vocab, list(range(len(vocab))))
    result = SpeechAlignment(
        feats=raw.numpy(),
        frame_seconds=features.frame_shift_ms / 1000.0,
        log_probs=np.empty((0, len(vocab)), dtype=np.float32),
        blank=model.blank,
        pieces=pieces,
        text="",
        mode=mode,
    )
    if not hasattr(model, "decoder"):  # a CTC model: greedy CTC names the tokens
        log_probs, out_lengths = model(x, lengths)  # (1, T', V)
        result.log_probs = log_probs[0].float().cpu().numpy()
        ids = ctc_greedy(log_probs.cpu(), out_lengths, model.blank)[0]
        result.text = " ".join(vocab.decode([ids])[0].split())
        return result
    log_probs, out_lengths, mem, state = model.encode_both(x, lengths)
    result.log_probs = log_probs[0].float().cpu().numpy()
    if mode == "ctc":
        ids = ctc_greedy(log_probs.cpu(), out_lengths, model.blank)[0]
    else:
        nbest = joint_beam_search(
            model.decoder,
            mem,
            state,
            log_probs,
            out_lengths,
            beam=cfg.beam,
            ctc_weight=cfg.ctc_weight if mode == "joint" else 0.0,
            length_bonus=cfg.length_bonus,
            candidates=cfg.ctc_candidates,
            blank=model.blank,
        )
        ids = nbest[0][0][0] if nbest[0] else []
    result.text = " ".join(vocab.decode([ids])[0].split())
    result.tgt_pieces = _pieces(vocab, [*ids, EOS])
    result.weights = _forced_attention(model.decoder, mem, state, ids)  # (U, T')
    return result
