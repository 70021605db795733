"""`s2s export`: a checkpoint -> one self-contained directory for `s2s-run`.

The directory holds the ONNX graphs (`s2s.export.graphs`), the SentencePiece
model(s), the vocabulary as text, for speech the feature settings and CMVN
statistics, and `manifest.json`, which names all of them with the model's kind,
sizes and decode settings. The runtime (`runtime/s2s_runtime`) needs nothing else.
The directory is built beside the target and renamed into place, so a failed
export leaves no half-written model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from s2s.data.vocab import Vocab
from s2s.errors import S2SError

__all__ = ["FORMAT_VERSION", "export_checkpoint"]

FORMAT_VERSION = 2  # 2: the decoder step's top-k (input k, top_log_probs, top_ids)
PRECISIONS = ("fp32", "int8")


def _onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise S2SError(
            "s2s export needs onnx and onnxruntime: pip install 's2s[export]'"
        ) from None


def _check_exportable(model: nn.Module, path: str | Path) -> None:
    """Refuse modules the graphs do not reproduce, instead of exporting wrongly."""
    for name, m in model.named_modules():
        if isinstance(m, nn.LSTM) and (m.proj_size or not m.bias or not m.batch_first):
            raise S2SError(
                f"{path}: cannot export {name}: an LSTM with projections or no bias"
            )
        if type(m).__module__.startswith("torch.ao"):
            raise S2SError(f"{path}: cannot export {name}: a quantized module")


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    precision: str = "fp32",
    lm: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Export `checkpoint` (translation, ctc or joint) and, optionally, a fusion
    `lm` checkpoint into directory `out`; returns the manifest. `precision` int8
    quantizes every graph with onnxruntime's dynamic quantization (int8 weights,
    activations quantized per call)."""
    if precision not in PRECISIONS:
        raise S2SError(f"unknown precision {precision!r}: fp32 or int8")
    _onnx()
    from s2s.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    task = ckpt.get("config", {}).get("model", {}).get("task")
    if task == "lm":
        raise S2SError(
            f"{checkpoint} is a language model: export the model it serves and add "
            f"the LM with --lm {checkpoint}"
        )
    if task not in ("translation", "ctc", "joint"):
        raise S2SError(f"{checkpoint}: cannot export a model.task={task} model")
    graphs, manifest, files = _build(checkpoint, task)
    if lm is not None:
        graphs["lm_step"], manifest["lm"] = _lm_graph(lm, checkpoint, files)
    out = Path(out)
    foreign = out.exists() and not (out / "manifest.json").is_file()
    if foreign and (not out.is_dir() or any(out.iterdir())):
        raise S2SError(f"{out}: exists and is not an s2s export; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest["graphs"] = _write_graphs(graphs, tmp, precision)
        manifest["precision"] = precision
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        _write_json(tmp / "manifest.json", manifest)
        for path in tmp.iterdir():  # all on disk before the rename makes them visible
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.iterdir())
    log(
        f"exported {task} model {checkpoint} to {out} ({precision}, "
        f"{len(graphs)} graphs, {size / 1e6:.1f} MB)"
    )
    return manifest


def _build(checkpoint: str | Path, task: str) -> tuple[dict, dict, dict[str, bytes]]:
    """(graphs by name, manifest without graphs, other files by name)."""
    from s2s.checkpoint import load_model, load_speech_model
    from s2s.export import graphs as G
    from s2s.export.graph import OPSET

    files: dict[str, bytes] = {}
    if task == "translation":
        model, cfg, src_vocab, tgt_vocab = load_model(checkpoint)
        vocab = {"src": "src.model", "tgt": "tgt.model"}
        files["src.model"] = src_vocab.proto
        decoder = model.decoder
        _check_exportable(model, checkpoint)
        graphs = {"encoder": G.text_encoder(model.src_embed, model.encoder, decoder)}
        extra: dict[str, Any] = {"src_vocab_size": len(src_vocab)}
    else:
        model, cfg, tgt_vocab, features, cmvn = load_speech_model(checkpoint)
        _check_exportable(model, checkpoint)
        decoder = getattr(model, "decoder", None)
        vocab = {"tgt": "tgt.model"}
        graphs = {
            "encoder": G.speech_encoder(model.subsampler, model.encoder, decoder),
            "ctc_head": G.ctc_head(model.head),
        }
        files["cmvn.json"] = _json_bytes(
            {
                "mean": cmvn.mean.tolist(),
                "std": cmvn.std.tolist(),
                "stats": cmvn.to_dict(),
            }
        )
        extra = {
            "features": features.to_dict(),
            "cmvn": "cmvn.json",
            "blank": model.blank,
            "subsample": model.subsampler.kind,
        }
    if decoder is not None:
        graphs["decoder_step"] = G.decoder_step(decoder)
        extra.update(
            input_feed=decoder.input_feed,
            attention=decoder.attention.kind,
            dec_layers=decoder.num_layers,
            hidden_size=decoder.hidden_size,
        )
    files["tgt.model"] = tgt_vocab.proto
    files["tgt.vocab.txt"] = _pieces(tgt_vocab)
    if "src" in vocab:
        files["src.vocab.txt"] = _pieces(src_vocab)
    manifest = {
        "format_version": FORMAT_VERSION,
        "opset": OPSET,
        "kind": task,
        "checkpoint": Path(checkpoint).name,
        "vocab": vocab,
        "sizes": {
            "tgt_vocab_size": len(tgt_vocab),
            "encoder_output_size": model.encoder.output_size,
            "enc_layers": model.encoder.lstm.num_layers,
            **{k: v for k, v in extra.items() if k.endswith("_size")},
        },
        "decode": asdict(cfg.decode),
        **{k: v for k, v in extra.items() if not k.endswith("_size")},
    }
    return graphs, manifest, files


def _lm_graph(lm: str | Path, checkpoint: str | Path, files: dict) -> tuple:
    """The LM step graph, checked to share the model's target vocabulary."""
    from s2s.decode.fusion import load_lm
    from s2s.export.graphs import lm_step

    lm_model = load_lm(lm, Vocab(files["tgt.model"]), "cpu", model_path=checkpoint)
    _check_exportable(lm_model, lm)
    info = {
        "checkpoint": Path(lm).name,
        "layers": lm_model.layers,
        "hidden_size": lm_model.hidden_size,
    }
    return lm_step(lm_model.eval()), info


def _write_graphs(graphs: dict, directory: Path, precision: str) -> dict[str, str]:
    """Save (and for int8 quantize) each graph, check it and load it once."""
    import onnx
    import onnxruntime as ort

    names = {}
    for name, model in graphs.items():
        path = directory / f"{name}.onnx"
        onnx.save(model, path)
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32 = directory / f"{name}.fp32.onnx"
            path.rename(fp32)
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # its advice to pre-process is for CNNs
            try:
                quantize_dynamic(fp32, path, weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            fp32.unlink()
        try:
            onnx.checker.check_model(str(path), full_check=precision == "fp32")
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # the checker and onnxruntime raise many kinds
            raise S2SError(f"exported graph {name} does not load: {e}") from None
        names[name] = path.name
    return names


def _pieces(vocab: Vocab) -> bytes:
    return "".join(f"{vocab.sp.id_to_piece(i)}\n" for i in range(len(vocab))).encode()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode()


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "wb") as f:
        f.write(_json_bytes(obj))
        f.flush()
        os.fsync(f.fileno())


def _replace_dir(new: Path, out: Path) -> None:
    """Rename `new` to `out`; an old export there is swapped out, then removed."""
    os.chmod(new, 0o755)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    new.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
