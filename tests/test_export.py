"""`s2s export` and the torch-free runtime: the exported graphs compute what the
torch modules compute, and every runtime search returns what the torch search
returns, on tiny models with random weights (fixed seeds)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from exported import TINY_SPEECH, TINY_TEXT, random_checkpoint  # noqa: E402
from s2s_runtime.model import ExportedModel  # noqa: E402
from s2s_runtime.translate import Translator as RunTranslator  # noqa: E402

from s2s.data.binarized import read_meta  # noqa: E402
from s2s.decode.translate import Translator  # noqa: E402
from s2s.export.export import export_checkpoint  # noqa: E402
from s2s.train.checkpoint import load_model  # noqa: E402

TEXT_VARIANTS = {
    "general-feed": ["model.attention=general", "model.input_feed=true"],
    "dot-nofeed-tied": [
        "model.attention=dot",
        "model.input_feed=false",
        "model.tie_embeddings=true",
        "model.dec_layers=1",
    ],
    "mlp-feed-tied": ["model.attention=mlp", "model.tie_embeddings=true"],
}


def text_vocab(toy_bin: Path) -> dict[str, bytes]:
    files = read_meta(toy_bin)["vocab"]
    return {k: (toy_bin / files[k]).read_bytes() for k in ("src", "tgt")}


@pytest.fixture(scope="module", params=list(TEXT_VARIANTS))
def text_export(request, toy_bin, tmp_path_factory):
    """(checkpoint, export directory) of a tiny random translation model."""
    tmp = tmp_path_factory.mktemp("text-export")
    ckpt = random_checkpoint(
        tmp / "model.pt",
        [*TINY_TEXT, *TEXT_VARIANTS[request.param]],
        text_vocab(toy_bin),
    )
    export_checkpoint(ckpt, tmp / "export", log=lambda m: None)
    return ckpt, tmp / "export"


def sentences(toy_raw: Path) -> list[str]:
    return (toy_raw / "test.de").read_text().splitlines()[:12] + ["", "eins"]


@pytest.mark.parametrize(
    "beam,nbest,lenpen", [(1, 1, 0.6), (4, 1, 0.6), (3, 3, 1.0), (5, 2, 0.0)]
)
def test_translate_equals_torch(text_export, toy_raw, beam, nbest, lenpen):
    ckpt, out = text_export
    model, cfg, src_vocab, tgt_vocab = load_model(ckpt)
    dcfg = replace(cfg.decode, beam=beam, nbest=nbest, lenpen=lenpen)
    lines = sentences(toy_raw)
    want = Translator(model, src_vocab, tgt_vocab, dcfg, torch.device("cpu"))
    want = want.translate(lines)
    run = ExportedModel(out)
    got = RunTranslator(
        run, {**run.decode, **dict(beam=beam, nbest=nbest, lenpen=lenpen)}
    )
    got = got.translate(lines)
    assert [[t for t, _ in h] for h in got] == [[t for t, _ in h] for h in want]
    assert any(h[0][0] for h in want)  # not a vacuous comparison of empty lines
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-4)


def test_manifest_and_files(text_export):
    _, out = text_export
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["kind"] == "translation"
    assert manifest["opset"] == 17 and manifest["precision"] == "fp32"
    assert set(manifest["graphs"]) == {"encoder", "decoder_step"}
    for name in [*manifest["graphs"].values(), *manifest["vocab"].values()]:
        assert (out / name).stat().st_size > 0
    pieces = (out / "tgt.vocab.txt").read_text().splitlines()
    assert len(pieces) == manifest["sizes"]["tgt_vocab_size"]
