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
from s2s.checkpoint import load_model  # noqa: E402
from s2s.data.binarized import read_meta  # noqa: E402
from s2s.decode.translate import Translator  # noqa: E402
from s2s.export.export import export_checkpoint  # noqa: E402
from s2s_runtime.model import ExportedModel  # noqa: E402
from s2s_runtime.translate import Translator as RunTranslator  # noqa: E402

TEXT_VARIANTS = {
    "general-feed": ["model.attention=general", "model.input_feed=true"],
    "dot-nofeed-tied": [
        "model.attention=dot",
        "model.input_feed=false",
        "model.tie_embeddings=true",
        "model.dec_layers=1",
    ],
    "mlp-feed-tied": ["model.attention=mlp", "model.tie_embeddings=true"],
    "location-nofeed": [
        "model.attention=location",
        "model.input_feed=false",
        "model.att_conv_width=3",
    ],
    "location-feed-tied": [
        "model.attention=location",
        "model.input_feed=true",
        "model.tie_embeddings=true",
    ],
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


def _tie_order(hyps: list[tuple[str, float]]) -> list[str]:
    """The texts of an n-best list, best first, with runs of tied scores (within
    1e-5: a random model can give two orders of the same tokens the same score)
    in text order: which of two tied hypotheses comes first is arbitrary."""
    runs: list[list[tuple[str, float]]] = []
    for text, score in hyps:
        if runs and abs(runs[-1][-1][1] - score) < 1e-5:
            runs[-1].append((text, score))
        else:
            runs.append([(text, score)])
    return [t for run in runs for t, _ in sorted(run)]


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
    assert [_tie_order(h) for h in got] == [_tie_order(h) for h in want]
    assert any(h[0][0] for h in want)  # not a vacuous comparison of empty lines
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-4)


def test_top_k_in_graph_equals_numpy(text_export, toy_raw):
    """The decoder graph's top-k outputs (PAD and BOS excluded) pick what the
    runtime's own top-k picks from the log-probs, and an export without them (as
    before the in-graph top-k) decodes to the same hypotheses."""
    from s2s_runtime.model import BOS, PAD
    from s2s_runtime.search import topk

    _, out = text_export
    run = ExportedModel(out)
    assert run.top_k_in_graph
    vocab = run.src_vocab
    ids = [seq + [3] for seq in vocab.encode(sentences(toy_raw)[:6])]
    lens = np.array([len(x) for x in ids])
    src = np.zeros((len(ids), lens.max()), np.int64)
    for i, x in enumerate(ids):
        src[i, : len(x)] = x
    mem, state = run.encode_text(src, lens)
    tokens = np.full(len(ids), BOS, np.int64)
    for k in (1, 7):
        vals, top, _ = run.step_top(tokens, state, mem, k)
        logp, _ = run.step(tokens, state, mem)
        logp[:, [PAD, BOS]] = -np.inf
        want_vals, want_ids = topk(logp, k)
        np.testing.assert_array_equal(top, want_ids)
        np.testing.assert_allclose(vals, want_vals, atol=1e-6)
    lines = sentences(toy_raw)
    for beam in (1, 4):
        cfg = {**run.decode, "beam": beam, "nbest": 2 if beam > 1 else 1}
        in_graph = RunTranslator(run, cfg).translate(lines)
        run.top_k_in_graph = False
        in_numpy = RunTranslator(run, cfg).translate(lines)
        run.top_k_in_graph = True
        assert [[t for t, _ in h] for h in in_graph] == [
            [t for t, _ in h] for h in in_numpy
        ]


def test_manifest_and_files(text_export):
    _, out = text_export
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["kind"] == "translation"
    assert manifest["opset"] == 17 and manifest["precision"] == "fp32"
    assert set(manifest["graphs"]) == {"encoder", "decoder_step"}
    for name in [*manifest["graphs"].values(), *manifest["vocab"].values()]:
        assert (out / name).stat().st_size > 0
    pieces = (out / "tgt.vocab.txt").read_text().splitlines()
    assert len(pieces) == manifest["sizes"]["tgt_vocab_size"]


# --- speech -----------------------------------------------------------------------


def speech_extras(tone_bin: Path) -> tuple[dict[str, bytes], dict]:
    from s2s.data.speech import SpeechData

    data = SpeechData(tone_bin, "train")
    extras = {"features": data.features.to_dict(), "cmvn": data.cmvn.to_dict()}
    return {"tgt": data.vocab().proto}, extras


@pytest.fixture(scope="module")
def speech_exports(
    tone_bin, tone_run, joint_run, location_run, tmp_path_factory
) -> dict[str, tuple[Path, Path, Path]]:
    """kind -> (checkpoint, LM checkpoint, export with the LM), for the trained tiny
    ctc and joint models of conftest (trained: a random model's flat posteriors
    tie too often for a comparison of searches) and a random LM."""
    tmp = tmp_path_factory.mktemp("speech-export")
    vocab, _ = speech_extras(tone_bin)
    lm = random_checkpoint(
        tmp / "lm.pt",
        [
            "model.task=lm",
            "model.emb_dim=16",
            "model.hidden_size=24",
            "model.param_init=0.3",
        ],
        vocab,
        seed=3,
    )
    runs = {}
    kinds = (("ctc", tone_run), ("joint", joint_run), ("location", location_run))
    for kind, run in kinds:
        export_checkpoint(run / "best.pt", tmp / kind, lm=lm, log=lambda m: None)
        runs[kind] = (run / "best.pt", lm, tmp / kind)
    return runs


def tone_waves(tone_raw: Path, n: int = 6) -> list[Path]:
    return sorted((tone_raw / "wav").glob("valid*.wav"))[:n]


SPEECH_CASES = {
    "ctc-greedy": ("ctc", dict(mode="ctc", beam=1), False),
    "ctc-prefix-beam": ("ctc", dict(mode="ctc", beam=4), False),
    "ctc-prefix-lm": ("ctc", dict(mode="ctc", beam=3), True),
    "ctc-windows": (
        "ctc",
        dict(mode="ctc", beam=2, chunk_seconds=0.7, chunk_overlap=0.2),
        False,
    ),
    "joint": ("joint", dict(mode="joint", beam=3, ctc_weight=0.4), False),
    "joint-lm-bonus": ("joint", dict(mode="joint", beam=2, length_bonus=0.5), True),
    "attention": ("joint", dict(mode="attention", beam=3), False),
    "ctc-of-joint": ("joint", dict(mode="ctc", beam=3), False),
    "location-joint": ("location", dict(mode="joint", beam=3, ctc_weight=0.4), False),
    "location-attention-lm": ("location", dict(mode="attention", beam=3), True),
    "joint-segments": (
        "joint",
        dict(mode="joint", beam=2, chunk_seconds=0.7, chunk_overlap=0.3),
        False,
    ),
}


@pytest.mark.parametrize("case", list(SPEECH_CASES))
def test_transcribe_equals_torch(case, speech_exports, tone_raw):
    from s2s.checkpoint import load_lm_model, load_speech_model
    from s2s.data.audio import load_audio
    from s2s.decode.transcribe import Transcriber
    from s2s_runtime.audio import load_audio as run_load
    from s2s_runtime.transcribe import Transcriber as RunTranscriber

    kind, changes, with_lm = SPEECH_CASES[case]
    ckpt, lm_path, out = speech_exports[kind]
    model, cfg, vocab, features, cmvn = load_speech_model(ckpt)
    dcfg = replace(cfg.decode, **changes)
    lm = load_lm_model(lm_path)[0] if with_lm else None
    want = Transcriber(
        model, vocab, features, cmvn, dcfg, torch.device("cpu"), lm=lm, lm_weight=0.5
    )
    paths = tone_waves(tone_raw)
    want = want.transcribe([load_audio(p, features.sample_rate) for p in paths])
    run = ExportedModel(out)
    got = RunTranscriber(run, {**run.decode, **changes}, 0.5 if with_lm else None)
    got = got.transcribe([run_load(p, features.sample_rate) for p in paths])
    assert got == want
    assert any(want)


def test_prefix_search_in_groups_equals_one_by_one(speech_exports, tone_raw):
    """More utterances than one search group (32), of many lengths: searched in
    groups of like length, each gets what it gets alone, in s2s and the runtime."""
    from s2s.checkpoint import load_speech_model
    from s2s.data.audio import load_audio
    from s2s.decode.transcribe import Transcriber
    from s2s_runtime.transcribe import Transcriber as RunTranscriber

    ckpt, _, out = speech_exports["ctc"]
    model, cfg, vocab, features, cmvn = load_speech_model(ckpt)
    dcfg = replace(cfg.decode, mode="ctc", beam=3)
    want = Transcriber(model, vocab, features, cmvn, dcfg, torch.device("cpu"))
    base = [load_audio(p, features.sample_rate) for p in tone_waves(tone_raw, 8)]
    waves = [base[k % len(base)] for k in range(40)]
    waves = [w[: max(800, len(w) * (3 + k % 5) // 7)] for k, w in enumerate(waves)]
    alone = [want.transcribe([w])[0] for w in waves]
    assert want.transcribe(waves) == alone
    assert len(set(alone)) > 1
    run = ExportedModel(out)
    got = RunTranscriber(run, {**run.decode, "mode": "ctc", "beam": 3})
    assert got.transcribe([w.numpy() for w in waves]) == alone


def test_features_match_torch(tone_raw):
    """The numpy front end against torchaudio's, on log-mel values: on noise within
    1e-3; on the tone files (exact silence, fades, pure tones: bins far below the
    frame's energy) fbank is as close to torchaudio's float64 result as torchaudio's
    own float32 one is (plus 1e-3): the two float32 results may err on opposite sides
    (an Intel AMX host: 0.029 apart, each within 0.018 of float64); melspec within
    2e-3 of torchaudio's."""
    import torchaudio

    from s2s.data.audio import load_audio
    from s2s.data.speech import FeatureSettings
    from s2s_runtime.features import Features

    rng = np.random.default_rng(0)
    noise = torch.from_numpy(0.1 * rng.standard_normal(4000).astype(np.float32))
    tones = [load_audio(p, 16000) for p in tone_waves(tone_raw, 3)]
    for kind in ("fbank", "melspec"):
        for mels, rate in ((80, 16000), (23, 8000)):
            s = FeatureSettings(kind=kind, num_mels=mels, sample_rate=rate)
            mine = Features(s.to_dict(), [0.0] * mels, [1.0] * mels)
            for k, w in enumerate([noise, *tones]):
                want = s.extractor()(w).numpy()
                got = mine.log_mel(w.numpy())
                if k == 0 or kind == "melspec":
                    diff = np.abs(got - want).max()
                    bound = 1e-3 if k == 0 else 2e-3
                else:
                    f64 = torchaudio.compliance.kaldi.fbank(
                        w[None].double() * 32768.0,
                        num_mel_bins=mels,
                        sample_frequency=float(rate),
                        dither=0.0,
                    ).numpy()
                    diff = np.abs(got - f64).max()
                    bound = np.abs(want - f64).max() + 1e-3
                assert diff <= bound, (kind, mels, k, diff, bound)


def test_resample_matches_torchaudio():
    import torchaudio

    from s2s_runtime.audio import resample

    w = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    for orig, new in ((44100, 16000), (8000, 16000), (22050, 16000)):
        want = torchaudio.functional.resample(torch.from_numpy(w), orig, new).numpy()
        np.testing.assert_allclose(resample(w, orig, new), want, atol=1e-4)


def test_banded_resample_equals_the_dense_kernel():
    """The runtime multiplies only the columns each group of phases reaches: the
    same numbers as torchaudio's dense (phases x K) kernel, every rate pair."""
    import math

    from s2s_runtime.audio import _sinc_kernel, resample

    w = np.random.default_rng(2).standard_normal(7919).astype(np.float32)
    pairs = [(44100, 16000), (22050, 16000), (11025, 16000), (48000, 16000)]
    pairs += [(8000, 16000), (16000, 8000), (32000, 16000), (24000, 22050)]
    for orig, new in pairs:
        g = math.gcd(orig, new)
        o, n = orig // g, new // g
        kernel, width = _sinc_kernel(o, n)
        padded = np.pad(w, (width, width + o))
        frames = (padded.size - kernel.shape[1]) // o + 1
        idx = np.arange(frames)[:, None] * o + np.arange(kernel.shape[1])
        dense = (padded[idx] @ kernel.T).reshape(-1)[: math.ceil(n * w.size / o)]
        got = resample(w, orig, new)
        assert got.shape == dense.shape, (orig, new)
        np.testing.assert_allclose(got, dense, atol=2e-6, err_msg=f"{orig}->{new}")


@pytest.mark.parametrize("subsample", ["stack", "conv"])
def test_speech_graphs_equal_torch(subsample, tone_bin, tmp_path):
    """Encoder (with padding, short inputs under the conv's 7 frames) and CTC head
    of a random joint model equal the torch modules'."""
    from s2s.checkpoint import load_speech_model

    vocab, extras = speech_extras(tone_bin)
    more = ["model.task=joint", f"model.subsample={subsample}", "model.enc_layers=2"]
    ckpt = random_checkpoint(tmp_path / "m.pt", [*TINY_SPEECH, *more], vocab, extras)
    export_checkpoint(ckpt, tmp_path / "out", log=lambda m: None)
    model = load_speech_model(ckpt)[0]
    run = ExportedModel(tmp_path / "out")
    torch.manual_seed(0)
    for T, lens in ((30, [30, 21, 9]), (6, [6, 3, 5])):
        x, lengths = torch.randn(3, T, 20), torch.tensor(lens)
        with torch.no_grad():
            log_probs, out_lens, mem, state = model.encode_both(x, lengths)
        got = run.encode_speech(x.numpy(), lengths.numpy())
        assert got["lengths"].tolist() == out_lens.tolist()
        for b, n in enumerate(out_lens.tolist()):
            np.testing.assert_allclose(
                got["log_probs"][b, :n], log_probs[b, :n], atol=1e-5
            )
            np.testing.assert_allclose(
                got["mem"].keys[b, :n], mem.keys[b, :n], atol=1e-5
            )
        np.testing.assert_allclose(got["state"].h, state.h, atol=1e-5)
        np.testing.assert_allclose(got["state"].c, state.c, atol=1e-5)


def test_topk_blocks_equal_a_full_sort():
    """The blocked top-k of vocabulary-wide rows picks what a full sort picks."""
    from s2s_runtime.search import topk

    rng = np.random.default_rng(0)
    for V, k in ((8000, 10), (1000, 3), (70, 5), (5000, 1)):
        x = rng.standard_normal((6, V)).astype(np.float32)
        x[0, :] = -np.inf
        x[0, 17] = 0.0  # one finite value in a row of -inf
        vals, idx = topk(x, k)
        want = np.sort(x, axis=1)[:, ::-1][:, :k]
        np.testing.assert_array_equal(vals, want)
        np.testing.assert_array_equal(np.take_along_axis(x, idx, axis=1), vals)
        assert idx[0, 0] == 17
