"""An exported model directory: its manifest, vocabularies and onnxruntime sessions.

Shapes: B batch, S encoder steps, N decoder rows (a multiple k of B), L layers,
H hidden size, V vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import sentencepiece as spm

from s2s_runtime import RunError

__all__ = ["DecoderState", "ExportedModel", "LM", "Memory", "Vocab"]

FORMAT_VERSION = 2  # 2: the decoder step's top-k; 1 (no top-k) is read too
READS = (1, 2)
PAD, UNK, BOS, EOS = 0, 1, 2, 3


@dataclass
class Memory:
    """Encoder outputs prepared for attention, once per sentence."""

    keys: np.ndarray  # (B, S, Q)
    values: np.ndarray  # (B, S, E)
    mask: np.ndarray  # (B, S) bool, True on real steps

    def select(self, idx: np.ndarray) -> Memory:
        # np.take along one axis is several times faster than fancy indexing.
        return Memory(
            np.take(self.keys, idx, axis=0),
            np.take(self.values, idx, axis=0),
            np.take(self.mask, idx, axis=0),
        )


@dataclass
class DecoderState:
    h: np.ndarray  # (L, N, H)
    c: np.ndarray  # (L, N, H)
    feed: np.ndarray  # (N, H) previous attentional vector
    attn: np.ndarray | None = None  # (N, S) previous weights (location attention)

    def select(self, idx: np.ndarray) -> DecoderState:
        return DecoderState(
            np.take(self.h, idx, axis=1),
            np.take(self.c, idx, axis=1),
            np.take(self.feed, idx, axis=0),
            None if self.attn is None else np.take(self.attn, idx, axis=0),
        )


class Vocab:
    """A SentencePiece model (pad 0, unk 1, bos 2, eos 3)."""

    def __init__(self, path: Path):
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(path))
        except (RuntimeError, OSError) as e:
            raise RunError(f"{path}: not a SentencePiece model: {e}") from None

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, lines: list[str]) -> list[list[int]]:
        return self.sp.encode(lines, out_type=int)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.sp.decode(ids)


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own kinds for bad files
        raise RunError(f"{path}: cannot load the graph: {e}") from None


_STEP_OUT = ["log_probs", "h_out", "c_out", "attn_out"]
_TOP_OUT = ["top_log_probs", "top_ids", "h_out", "c_out", "attn_out"]


class LM:
    """The exported LM step; states (h, c), each (L, N, H)."""

    def __init__(self, session: ort.InferenceSession, layers: int, hidden: int):
        self.session, self.layers, self.hidden = session, layers, hidden

    def init_state(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        z = np.zeros((self.layers, n, self.hidden), np.float32)
        return z, z.copy()

    def step(self, tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        """tokens (N,) -> log-probs (N, V), state."""
        logp, h, c = self.session.run(
            None, {"tokens": tokens.astype(np.int64), "h": state[0], "c": state[1]}
        )
        return logp, (h, c)


class ExportedModel:
    """A directory written by `s2s export`.

    Args:
        directory: the export.
        threads: onnxruntime intra-op threads (0: its default).
    """

    def __init__(self, directory: str | Path, threads: int = 0):
        self.directory = Path(directory)
        path = self.directory / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
        except OSError as e:
            raise RunError(
                f"{path}: cannot read ({e.strerror}); is --model an "
                "`s2s export` directory?"
            ) from None
        except json.JSONDecodeError as e:
            raise RunError(f"{path}:{e.lineno}: not JSON: {e.msg}") from None
        version = self.manifest.get("format_version")
        if version not in READS:
            raise RunError(
                f"{path}: format version {version}; this runtime reads "
                f"{' and '.join(map(str, READS))} (export again, or update s2s-runtime)"
            )
        try:
            self._load(self.manifest, threads)
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(
                f"{path}: malformed manifest ({e!r} is missing or bad); export again"
            ) from None

    def _load(self, m: dict[str, Any], threads: int) -> None:
        """Sessions and vocabularies named by manifest `m`."""
        self.kind: str = m["kind"]
        self.decode: dict[str, Any] = m["decode"]
        graphs = {k: self.directory / v for k, v in m["graphs"].items()}
        self.encoder = _session(graphs["encoder"], threads)
        self.decoder = None
        if "decoder_step" in graphs:
            self.decoder = _session(graphs["decoder_step"], threads)
            # Format 2 has a `k` input and top_log_probs / top_ids outputs; in
            # format 1 the search takes the top-k of log_probs itself.
            names = {i.name for i in self.decoder.get_inputs()}
            self._has_k = "k" in names
            self.location = "attn_prev" in names  # location attention
            self.top_k_in_graph = self._has_k  # False: the search's own top-k
            self.input_feed = bool(m["input_feed"])
            self.hidden = int(m["sizes"]["hidden_size"])
        self.ctc = (
            _session(graphs["ctc_head"], threads) if "ctc_head" in graphs else None
        )
        self.lm = None
        if "lm_step" in graphs:
            lm = m["lm"]
            self.lm = LM(
                _session(graphs["lm_step"], threads), lm["layers"], lm["hidden_size"]
            )
        self.tgt_vocab = Vocab(self.directory / m["vocab"]["tgt"])
        self.src_vocab = None
        if "src" in m["vocab"]:
            self.src_vocab = Vocab(self.directory / m["vocab"]["src"])
        self.blank = int(m.get("blank", PAD))

    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None

    def _prepare(self, out: dict, lens: np.ndarray) -> tuple[Memory, DecoderState]:
        memory = out["memory"]  # (B, S, E)
        mask = np.arange(memory.shape[1])[None, :] < lens[:, None]  # (B, S)
        B = memory.shape[0]
        feed = np.zeros((B, self.hidden), np.float32)
        attn = None
        if self.location:  # uniform over the real steps, as s2s starts
            attn = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            attn = attn.astype(np.float32)
        return Memory(out["keys"], memory, mask), DecoderState(
            out["h0"], out["c0"], feed, attn
        )

    def encode_text(
        self, src: np.ndarray, lens: np.ndarray
    ) -> tuple[Memory, DecoderState]:
        """src int64 (B, S), lens (B,) -> attention memory, initial decoder state."""
        names = [o.name for o in self.encoder.get_outputs()]
        vals = self.encoder.run(None, {"src": src, "src_lens": lens.astype(np.int64)})
        return self._prepare(dict(zip(names, vals, strict=True)), lens)

    def encode_speech(self, feats: np.ndarray, lens: np.ndarray) -> dict[str, Any]:
        """feats float32 (B, T, F) normalised, lens (B,) -> {'memory' (B, S, E),
        'lengths' (B,), 'log_probs' (B, S, V), and with a decoder 'mem', 'state'}."""
        names = [o.name for o in self.encoder.get_outputs()]
        vals = self.encoder.run(
            None, {"feats": feats, "lengths": lens.astype(np.int64)}
        )
        out = dict(zip(names, vals, strict=True))
        res = {"memory": out["memory"], "lengths": out["out_lengths"]}
        (res["log_probs"],) = self.ctc.run(None, {"memory": out["memory"]})
        if self.has_decoder:
            res["mem"], res["state"] = self._prepare(out, out["out_lengths"])
        return res

    def step(
        self, tokens: np.ndarray, state: DecoderState, mem: Memory
    ) -> tuple[np.ndarray, DecoderState]:
        """One decoder step: tokens (N,) -> log-probs (N, V), state. N is B or a
        multiple k of it: rows n*k ... n*k + k - 1 attend over memory row n."""
        feeds = self._feeds(tokens, state, mem)
        if self._has_k:
            feeds["k"] = np.array([1], np.int64)  # the least top-k work
        logp, h, c, a, *w = self.decoder.run(self._outputs(_STEP_OUT), feeds)
        return logp, DecoderState(h, c, a, w[0] if w else None)

    def _outputs(self, names: list[str]) -> list[str]:
        return names + ["attn_weights"] if self.location else names

    def _feeds(
        self, tokens: np.ndarray, state: DecoderState, mem: Memory
    ) -> dict[str, np.ndarray]:
        N, B = tokens.shape[0], mem.values.shape[0]
        if N % B:
            raise ValueError(f"{N} decoder rows for {B} memory rows")
        feeds = {
            "tokens": tokens.astype(np.int64),
            "h": state.h,
            "c": state.c,
            "keys": mem.keys,
            "memory": mem.values,
            "mask": mem.mask,
        }
        if self.input_feed:
            feeds["feed"] = state.feed
        if self.location:
            feeds["attn_prev"] = state.attn
        return feeds

    def step_top(
        self, tokens: np.ndarray, state: DecoderState, mem: Memory, k: int
    ) -> tuple[np.ndarray, np.ndarray, DecoderState]:
        """One decoder step that returns only each row's k best tokens, PAD and
        BOS excluded: values (N, k) and ids (N, k), best first (the lower id
        first among equals), and the state. Needs `top_k_in_graph`."""
        feeds = self._feeds(tokens, state, mem)
        feeds["k"] = np.array([k], np.int64)
        vals, ids, h, c, a, *w = self.decoder.run(self._outputs(_TOP_OUT), feeds)
        return vals, ids, DecoderState(h, c, a, w[0] if w else None)
