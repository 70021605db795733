"""The exported graphs of each model: encoder, one decoder step, CTC head, LM step.

Each mirrors the torch code it replaces (in eval mode: no dropout):

- `text_encoder`: `Seq2Seq.encode` - embeddings, BiLSTM, `AttentionDecoder.prepare`.
- `speech_encoder`: `SpeechCTC.encoder_outputs` after feature extraction - padding
  zeroed, 4x subsampling, BiLSTM - and for joint models `prepare` too.
- `ctc_head`: `CTCHead` - encoder outputs to log-probabilities.
- `decoder_step`: `AttentionDecoder.step` - embedding (plus the previous attentional
  vector with input feeding), one LSTM step, attention over keys projected once by
  the encoder graph, the output layer and log-softmax.
- `lm_step`: `LSTMLM.step`.

Shapes: B batch, S encoder steps, T feature frames, F mel bins, N decoder rows (a
multiple k of B: beam search's k beams of a sentence share its memory row), L
layers, H hidden size, E encoder output size, Q attention key size, V vocabulary.
"""

from __future__ import annotations

import numpy as np
import onnx
from torch import nn

from s2s.data.vocab import BOS, PAD
from s2s.export.graph import Graph
from s2s.models.ctc import CTCHead
from s2s.models.decoder import AttentionDecoder
from s2s.models.encoder import RNNEncoder
from s2s.models.frontend import Subsampler
from s2s.models.lm import LSTMLM

__all__ = ["ctc_head", "decoder_step", "lm_step", "speech_encoder", "text_encoder"]

_STATE = ["layers", "rows", "hidden"]


def _bilstm(g: Graph, x: str, lens: str, encoder: RNNEncoder) -> tuple[str, str]:
    """`RNNEncoder` over x (B, S, in), lens int64 (B,) -> outputs (B, S, E) zeroed
    past each length, final (B, E) (the last layer's two final states)."""
    lens32 = g.op("Cast", lens, to=onnx.TensorProto.INT32)
    inp = g.op("Transpose", x, perm=[1, 0, 2])  # (S, B, in)
    for layer in range(encoder.lstm.num_layers):
        y, y_h, _ = g.lstm(inp, encoder.lstm, layer, lens32)  # y (S, 2, B, H)
        y = g.op("Transpose", y, perm=[0, 2, 1, 3])  # (S, B, 2, H)
        inp = g.op("Reshape", y, g.const([0, 0, -1], "shape"))  # (S, B, 2H)
    out = g.op("Transpose", inp, perm=[1, 0, 2])  # (B, S, E)
    final = g.op("Transpose", y_h, perm=[1, 0, 2])  # (B, 2, H)
    final = g.op("Reshape", final, g.const([0, -1], "shape"))  # (B, E)
    valid = _valid(g, out, lens, axis=1)  # (B, S, 1) float
    return g.op("Mul", out, valid), final


def _valid(g: Graph, x: str, lens: str, axis: int) -> str:
    """(B, S, 1) float: 1 on the first lens[b] steps of axis `axis` of x, else 0."""
    size = g.op("Gather", g.op("Shape", x), g.const(axis, "ax", np.int64))
    steps = g.op(
        "Range", g.const(0, "zero", np.int64), size, g.const(1, "one", np.int64)
    )
    less = g.op("Less", steps, g.op("Unsqueeze", lens, g.const([1], "ax")))  # (B, S)
    return g.op(
        "Unsqueeze", g.op("Cast", less, to=onnx.TensorProto.FLOAT), g.const([2], "ax")
    )


def _prepare(g: Graph, decoder: AttentionDecoder, out: str, final: str) -> list:
    """`AttentionDecoder.prepare`: keys (B, S, Q), h0, c0 (L, B, H) as outputs."""
    L, H = decoder.num_layers, decoder.hidden_size
    hc = g.op("Tanh", g.linear(final, decoder.bridge))  # (B, 2 * L * H)
    hc = g.op("Reshape", hc, g.const([0, 2, L, H], "shape"))  # (B, 2, L, H)
    hc = g.op("Transpose", hc, perm=[1, 2, 0, 3])  # (2, L, B, H)
    h0, c0 = g.op("Split", hc, g.const([1, 1], "split"), outputs=2, axis=0)
    ax = g.const([0], "ax")
    h0, c0 = g.op("Squeeze", h0, ax), g.op("Squeeze", c0, ax)  # (L, B, H)
    att = decoder.attention
    keys = out if att.kind == "dot" else g.linear(out, att.key_proj)  # (B, S, Q)
    return [
        (keys, "keys", "float", ["batch", "steps", att_size(decoder)]),
        (h0, "h0", "float", _STATE),
        (c0, "c0", "float", _STATE),
    ]


def att_size(decoder: AttentionDecoder) -> int:
    """Q, the size of the attention keys."""
    att = decoder.attention
    return att.key_proj.out_features if att.kind != "dot" else decoder.hidden_size


def text_encoder(
    embed: nn.Embedding, encoder: RNNEncoder, decoder: AttentionDecoder
) -> onnx.ModelProto:
    """src int64 (B, S), src_lens int64 (B,) -> memory (B, S, E), keys, h0, c0."""
    g = Graph()
    x = g.op("Gather", g.const(embed.weight, "embed"), "src")  # (B, S, emb)
    out, final = _bilstm(g, x, "src_lens", encoder)
    E = encoder.output_size
    return g.model(
        "encoder",
        [("src", "int64", ["batch", "steps"]), ("src_lens", "int64", ["batch"])],
        [
            (out, "memory", "float", ["batch", "steps", E]),
            *_prepare(g, decoder, out, final),
        ],
    )


def speech_encoder(
    subsampler: Subsampler, encoder: RNNEncoder, decoder: AttentionDecoder | None
) -> onnx.ModelProto:
    """feats float (B, T, F) normalised, lengths int64 (B,) -> memory (B, S, E),
    lengths (B,) after subsampling, and with a decoder keys, h0, c0."""
    g = Graph()
    F = subsampler.in_dim
    x = g.op("Mul", "feats", _valid(g, "feats", "lengths", axis=1))  # (B, T, F)
    T = g.op("Gather", g.op("Shape", x), g.const([1], "ax", np.int64))  # (1,)
    if subsampler.kind == "stack":
        four = g.const([4], "four", np.int64)
        pad_t = g.op("Mod", g.op("Sub", four, g.op("Mod", T, four)), four)
        lens = g.op(
            "Div",
            g.op("Add", "lengths", g.const(3, "three", np.int64)),
            g.const(4, "four", np.int64),
        )
    else:
        pad_t = g.op(
            "Max",
            g.op("Sub", g.const([7], "seven", np.int64), T),
            g.const([0], "zero", np.int64),
        )
        lens = g.op("Max", "lengths", g.const(7, "seven", np.int64))
        for _ in range(2):
            lens = g.op(
                "Div",
                g.op("Sub", lens, g.const(1, "one", np.int64)),
                g.const(2, "two", np.int64),
            )
    pads = g.op(
        "Concat",
        g.const([0, 0, 0, 0], "z", np.int64),
        pad_t,
        g.const([0], "z", np.int64),
        axis=0,
    )
    x = g.op("Pad", x, pads)  # (B, T + pad, F)
    if subsampler.kind == "stack":
        y = g.op("Reshape", x, g.const([0, -1, 4 * F], "shape"))  # (B, T', 4F)
    else:
        conv1, conv2 = subsampler.conv[0], subsampler.conv[2]
        y = g.op("Unsqueeze", x, g.const([1], "ax"))  # (B, 1, T, F)
        for conv in (conv1, conv2):
            y = g.op(
                "Conv",
                y,
                g.const(conv.weight, "conv_w"),
                g.const(conv.bias, "conv_b"),
                kernel_shape=[3, 3],
                strides=[2, 2],
            )
            y = g.op("Relu", y)  # (B, C, T', F')
        y = g.op("Transpose", y, perm=[0, 2, 1, 3])  # (B, T', C, F')
        y = g.op("Reshape", y, g.const([0, 0, -1], "shape"))  # (B, T', C * F')
    y = g.linear(y, subsampler.proj)  # (B, T', D)
    out, final = _bilstm(g, y, lens, encoder)
    outputs = [
        (out, "memory", "float", ["batch", "steps", encoder.output_size]),
        (lens, "out_lengths", "int64", ["batch"]),
    ]
    if decoder is not None:
        outputs += _prepare(g, decoder, out, final)
    return g.model(
        "encoder",
        [("feats", "float", ["batch", "frames", F]), ("lengths", "int64", ["batch"])],
        outputs,
    )


def ctc_head(head: CTCHead) -> onnx.ModelProto:
    """memory (B, S, E) -> log_probs (B, S, V)."""
    g = Graph()
    logp = g.op("LogSoftmax", g.linear("memory", head.proj), axis=-1)
    return g.model(
        "ctc_head",
        [("memory", "float", ["batch", "steps", head.proj.in_features])],
        [(logp, "log_probs", "float", ["batch", "steps", head.proj.out_features])],
    )


def decoder_step(decoder: AttentionDecoder) -> onnx.ModelProto:
    """tokens int64 (N,), h, c (L, N, H), [feed (N, H) with input feeding],
    keys (B, S, Q), memory (B, S, E), mask bool (B, S), k int64 (1,),
    [attn_prev (N, S) with location attention]
    -> log_probs (N, V), h, c, attn_out (N, H) (the next step's feed),
    top_log_probs (N, k), top_ids int64 (N, k), [attn_weights (N, S), the next
    step's attn_prev]."""
    g = Graph()
    H, Q = decoder.hidden_size, att_size(decoder)
    E = decoder.combine.in_features - H  # the memory size
    x = g.op("Gather", g.const(decoder.embed.weight, "embed"), "tokens")  # (N, emb)
    inputs = [
        ("tokens", "int64", ["rows"]),
        ("h", "float", _STATE),
        ("c", "float", _STATE),
    ]
    if decoder.input_feed:
        x = g.op("Concat", x, "feed", axis=1)  # (N, emb + H)
        inputs.append(("feed", "float", ["rows", H]))
    s, h, c = g.step_lstm(x, decoder.lstm, "h", "c")  # s (N, H)
    batch = g.op("Slice", g.op("Shape", "keys"), g.const([0], "k"), g.const([1], "k1"))
    shape = g.op("Concat", batch, g.const([-1, H], "shape", np.int64), axis=0)
    s3 = g.op("Reshape", s, shape)  # (B, k, H)
    att = decoder.attention
    if att.kind in ("mlp", "location"):
        q = g.linear(s3, att.query_proj)  # (B, k, Q)
        ax1, ax2 = g.const([1], "ax"), g.const([2], "ax")
        energy = g.op("Add", g.op("Unsqueeze", "keys", ax1), g.op("Unsqueeze", q, ax2))
        if att.kind == "location":  # + loc_proj(conv(previous weights))
            keys_shape = g.op("Shape", "keys")
            steps = g.op("Slice", keys_shape, g.const([1], "k"), g.const([2], "k2"))
            conv = att.loc_conv
            pad = conv.padding[0]
            prev = g.op("Unsqueeze", "attn_prev", ax1)  # (N, 1, S)
            f = g.op("Conv", prev, g.const(conv.weight, "conv"), pads=[pad, pad])
            loc = g.linear(g.op("Transpose", f, perm=[0, 2, 1]), att.loc_proj)
            minus1, q_size = g.const([-1], "k", np.int64), g.const([Q], "k", np.int64)
            shape4 = g.op("Concat", batch, minus1, steps, q_size, axis=0)
            energy = g.op("Add", energy, g.op("Reshape", loc, shape4))  # (B, k, S, Q)
        hidden = g.op("Tanh", energy)  # (B, k, S, Q)
        scores = g.op(
            "Squeeze", g.linear(hidden, att.v), g.const([3], "ax")
        )  # (B, k, S)
    else:
        scores = g.op(
            "MatMul", s3, g.op("Transpose", "keys", perm=[0, 2, 1])
        )  # (B, k, S)
    mask = g.op("Unsqueeze", "mask", g.const([1], "ax"))  # (B, 1, S)
    scores = g.op("Where", mask, scores, g.const(np.float32(-np.inf), "ninf"))
    weights = g.op("Softmax", scores, axis=-1)  # (B, k, S)
    context = g.op("MatMul", weights, "memory")  # (B, k, E)
    a = g.op("Concat", context, s3, axis=-1)  # (B, k, E + H)
    a = g.op("Tanh", g.linear(a, decoder.combine))  # (B, k, H)
    a = g.op("Reshape", a, g.const([-1, H], "shape"))  # (N, H)
    y = a if decoder.out_proj is None else g.linear(a, decoder.out_proj)
    logp = g.op("LogSoftmax", g.linear(y, decoder.output), axis=-1)  # (N, V)
    V = decoder.output.out_features
    # The k best tokens of each row, PAD and BOS excluded (never emitted, as in
    # s2s.decode.beam), best first, the lower id first among equals: what greedy
    # and beam search need without copying out and sorting (N, V) log-probs
    # (benchmarks/export_speed.py). k is an input (manifest format 2).
    banned = np.zeros(V, np.float32)
    banned[[PAD, BOS]] = -np.inf
    top_v, top_i = g.op(
        "TopK", g.op("Add", logp, g.const(banned, "banned")), "k", outputs=2, axis=-1
    )
    inputs += [
        ("keys", "float", ["batch", "steps", Q]),
        ("memory", "float", ["batch", "steps", E]),
        ("mask", "bool", ["batch", "steps"]),
        ("k", "int64", [1]),
    ]
    outputs = [
        (logp, "log_probs", "float", ["rows", V]),
        (h, "h_out", "float", _STATE),
        (c, "c_out", "float", _STATE),
        (a, "attn_out", "float", ["rows", H]),
        (top_v, "top_log_probs", "float", ["rows", "top"]),
        (top_i, "top_ids", "int64", ["rows", "top"]),
    ]
    if att.kind == "location":  # this step's weights are the next one's attn_prev
        flat = g.op("Concat", g.const([-1], "shape", np.int64), steps, axis=0)
        weights = g.op("Reshape", weights, flat)  # (N, S)
        inputs.append(("attn_prev", "float", ["rows", "steps"]))
        outputs.append((weights, "attn_weights", "float", ["rows", "steps"]))
    return g.model("decoder_step", inputs, outputs)


def lm_step(lm: LSTMLM) -> onnx.ModelProto:
    """tokens int64 (N,), h, c (L, N, H) -> log_probs (N, V), h, c."""
    g = Graph()
    x = g.op("Gather", g.const(lm.embed.weight, "embed"), "tokens")  # (N, E)
    y, h, c = g.step_lstm(x, lm.lstm, "h", "c")  # (N, H)
    if lm.out_proj is not None:
        y = g.linear(y, lm.out_proj)
    logp = g.op("LogSoftmax", g.linear(y, lm.output), axis=-1)  # (N, V)
    return g.model(
        "lm_step",
        [("tokens", "int64", ["rows"]), ("h", "float", _STATE), ("c", "float", _STATE)],
        [
            (logp, "log_probs", "float", ["rows", lm.output.out_features]),
            (h, "h_out", "float", _STATE),
            (c, "c_out", "float", _STATE),
        ],
    )
