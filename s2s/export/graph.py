"""A small ONNX graph builder, and the LSTM and linear pieces every exported graph
shares.

The graphs are written node by node from the modules' weights (`onnx.helper`), not
traced: the encoder's CPU path runs `torch._VF.lstm` on reversed copies of the
batch, which no exporter follows, while ONNX's own LSTM operator reads each
sequence within its length (`sequence_lens`) in both directions, which is what the
encoder computes. Shapes: S steps, B batch, N decoder rows, H hidden size.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

__all__ = ["OPSET", "Graph", "lstm_weights"]

OPSET = 17  # LayerNormalization-era operators; every onnxruntime since 1.14 runs it

_TYPES = {
    "float": TensorProto.FLOAT,
    "int64": TensorProto.INT64,
    "bool": TensorProto.BOOL,
}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def lstm_weights(
    lstm: nn.LSTM, layer: int, directions: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nn.LSTM layer weights as ONNX LSTM's W (D, 4H, in), R (D, 4H, H) and
    B (D, 8H): torch orders the gates i, f, g, o; ONNX i, o, f, c."""
    H = lstm.hidden_size
    order = np.concatenate(
        [np.arange(0, H), np.arange(3 * H, 4 * H), np.arange(H, 3 * H)]
    )  # i, o, f, g
    W, R, B = [], [], []
    for d in range(directions):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        W.append(_np(getattr(lstm, "weight_ih" + sfx))[order])
        R.append(_np(getattr(lstm, "weight_hh" + sfx))[order])
        B.append(
            np.concatenate(
                [
                    _np(getattr(lstm, "bias_ih" + sfx))[order],
                    _np(getattr(lstm, "bias_hh" + sfx))[order],
                ]
            )
        )
    return np.stack(W), np.stack(R), np.stack(B)


class Graph:
    """Collects nodes and weights; `op` returns the name of its output(s)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value, hint: str = "c", dtype=None) -> str:
        """A constant (numpy array, torch tensor or Python number/list)."""
        if isinstance(value, torch.Tensor):
            value = _np(value)
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = self._name(hint)
        self.weights.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs):
        outs = [self._name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if outputs == 1 else outs

    def linear(self, x: str, layer: nn.Linear) -> str:
        """x (..., in) @ W^T (+ b) -> (..., out)."""
        y = self.op("MatMul", x, self.const(layer.weight.t(), "w"))
        if layer.bias is not None:
            y = self.op("Add", y, self.const(layer.bias, "b"))
        return y

    def lstm(
        self,
        x: str,
        lstm: nn.LSTM,
        layer: int,
        lens: str = "",
        h0: str = "",
        c0: str = "",
    ) -> tuple[str, str, str]:
        """One layer of `lstm` over x (S, B, in): Y (S, D, B, H), Y_h, Y_c (D, B, H).
        lens: int32 (B,) real steps per sequence, or '' for all."""
        D = 2 if lstm.bidirectional else 1
        W, R, B = lstm_weights(lstm, layer, D)
        return self.op(
            "LSTM",
            x,
            self.const(W, "W"),
            self.const(R, "R"),
            self.const(B, "B"),
            lens,
            h0,
            c0,
            outputs=3,
            hidden_size=lstm.hidden_size,
            direction="bidirectional" if D == 2 else "forward",
        )

    def step_lstm(self, x: str, lstm: nn.LSTM, h: str, c: str) -> tuple[str, str, str]:
        """One time step of a stacked unidirectional `lstm`: x (N, in), h, c
        (L, N, H) -> output (N, H), h, c (L, N, H)."""
        inp = self.op("Unsqueeze", x, self.const([0], "ax"))  # (1, N, in)
        hs, cs = [], []
        for k in range(lstm.num_layers):
            sl = (self.const([k], "k"), self.const([k + 1], "k1"))
            h_k = self.op("Slice", h, *sl)  # (1, N, H)
            c_k = self.op("Slice", c, *sl)
            y, h_n, c_n = self.lstm(inp, lstm, k, "", h_k, c_k)  # y (1, 1, N, H)
            inp = self.op("Squeeze", y, self.const([1], "ax"))  # (1, N, H)
            hs.append(h_n)
            cs.append(c_n)
        out = self.op("Squeeze", inp, self.const([0], "ax"))  # (N, H)
        cat = {"axis": 0}
        h_new = self.op("Concat", *hs, **cat) if len(hs) > 1 else hs[0]
        c_new = self.op("Concat", *cs, **cat) if len(cs) > 1 else cs[0]
        return out, h_new, c_new

    def model(
        self,
        name: str,
        inputs: list[tuple[str, str, list]],
        outputs: list[tuple[str, str, str, list]],
    ) -> onnx.ModelProto:
        """inputs: (name, type, shape); outputs: (graph value, public name, type,
        shape). Shapes name their dynamic axes ('batch', 'time', ...)."""
        for value, public, _, _ in outputs:
            self.nodes.append(helper.make_node("Identity", [value], [public]))
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, _TYPES[t], s) for n, t, s in inputs],
            [helper.make_tensor_value_info(p, _TYPES[t], s) for _, p, t, s in outputs],
            self.weights,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="s2s",
        )
        model.ir_version = 8  # readable by onnxruntime >= 1.14
        onnx.checker.check_model(model, full_check=True)
        return model
