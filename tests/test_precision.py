"""Decoding precisions: int8 (dynamically quantized layers) agrees with fp32, and a
bad precision is a clear error; training's `auto` precision."""

import pytest
import sacrebleu
import torch
from typer.testing import CliRunner

import s2s.precision
from conftest import TINY
from s2s.checkpoint import load_model, load_speech_model
from s2s.cli import app
from s2s.config import load_config
from s2s.data.audio import load_audio
from s2s.decode.transcribe import Transcriber
from s2s.decode.translate import Translator
from s2s.errors import S2SError
from s2s.precision import autocast_for, for_decoding, train_precision
from s2s.train.trainer import Trainer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def mt_ckpt(toy_bin, tmp_path_factory):
    """A toy model trained until it translates the toy task (BLEU > 50)."""
    out = tmp_path_factory.mktemp("mt")
    sets = [
        *TINY,
        "model.emb_dim=32",
        "model.enc_hidden_size=32",
        "model.hidden_size=64",
        "model.dropout=0.0",
        "train.max_steps=300",
        "train.batch_tokens=300",
        "train.lr=0.005",
        "train.warmup_steps=30",
        "train.valid_bleu=false",
    ]
    Trainer(load_config(None, sets), toy_bin, out).run()
    return out / "last.pt"


def test_int8_quantizes_a_copy_and_translates_like_fp32(mt_ckpt, toy_raw):
    model, cfg, src_vocab, tgt_vocab = load_model(mt_ckpt)
    lines = (toy_raw / "test.de").read_text().splitlines()
    refs = (toy_raw / "test.en").read_text().splitlines()
    fp32 = Translator(model, src_vocab, tgt_vocab, cfg.decode, CPU, "fp32")
    int8 = Translator(model, src_vocab, tgt_vocab, cfg.decode, CPU, "int8")
    kinds = {type(m).__module__ for m in int8.model.modules()}
    assert "torch.ao.nn.quantized.dynamic.modules.linear" in kinds
    assert "torch.ao.nn.quantized.dynamic.modules.rnn" in kinds
    assert isinstance(model.decoder.output, torch.nn.Linear)  # the original stays
    bleu = {}
    for name, tr in (("fp32", fp32), ("int8", int8)):
        hyps = [h[0][0] for h in tr.translate(lines)]
        bleu[name] = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert bleu["fp32"] > 50 and bleu["int8"] > bleu["fp32"] - 5, bleu


def test_int8_transcribes_like_fp32(tone_run, tone_raw):
    model, cfg, vocab, features, cmvn = load_speech_model(tone_run / "best.pt")
    out = {}
    for precision in ("fp32", "int8"):
        tr = Transcriber(model, vocab, features, cmvn, cfg.decode, CPU, precision)
        files = sorted((tone_raw / "wav").glob("valid*.wav"))[:4]
        out[precision] = tr.transcribe(
            [load_audio(f, features.sample_rate) for f in files]
        )
    assert all(out["fp32"])
    assert out["int8"] == out["fp32"]


def test_int8_on_a_gpu_and_unknown_precisions_are_clear_errors(mt_ckpt):
    model, *_ = load_model(mt_ckpt)
    with pytest.raises(S2SError, match="int8 decodes on the CPU only"):
        for_decoding(model, torch.device("cuda"), "int8")
    with pytest.raises(S2SError, match="unknown precision 'int4'"):
        autocast_for(CPU, "int4")
    r = CliRunner().invoke(
        app,
        ["translate", "--checkpoint", str(mt_ckpt), "--precision", "int4"],
        input="eins\n",
    )
    assert r.exit_code == 1
    assert "unknown precision 'int4'" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("native", [True, False])
def test_auto_training_precision_is_bf16_only_on_a_cpu_with_bf16(monkeypatch, native):
    monkeypatch.setattr(s2s.precision, "_cpu_has_bf16", lambda: native)
    assert train_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert train_precision("auto", torch.device("cuda")) == "fp32"
    for given in ("fp32", "bf16", "fp16"):
        assert train_precision(given, CPU) == given


def test_training_logs_the_precision_auto_resolved_to(toy_bin, tmp_path, capsys):
    cfg = load_config(None, [*TINY, "train.max_steps=1", "train.precision=auto"])
    trainer = Trainer(cfg, toy_bin, tmp_path / "run")
    expected = train_precision("auto", CPU)
    assert trainer.precision == expected
    trainer.run()
    assert f"on cpu ({expected})" in capsys.readouterr().err


def _run_precision_benchmark(config, data, *more):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent.parent / "benchmarks" / "train_precision.py"
    cmd = [sys.executable, str(script), str(config), str(data), *more]
    r = subprocess.run(
        [*cmd, "--steps", "3", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| fp")]
    rows += [line for line in r.stdout.splitlines() if line.startswith("| bf")]
    assert [row.split("|")[1].strip() for row in rows] == ["fp32", "bf16"]
    assert "step time fp32 / bf16, paired: median" in r.stdout
    losses = [float(row.split("|")[4]) for row in rows]  # the copies differ by rounding
    assert abs(losses[0] - losses[1]) < 0.05 * losses[0]


def test_the_precision_benchmark_prints_its_table(tone_run, tone_bin):
    """benchmarks/train_precision.py on the tone corpus: both rows, equal losses."""
    _run_precision_benchmark(tone_run / "config.yaml", tone_bin)


def test_the_precision_benchmark_keeps_each_copys_lm_state(lm_bin, tmp_path):
    """An LM carries its hidden state from one segment to the next: each copy keeps
    its own (the bf16 copy's state handed to the fp32 copy stopped the benchmark
    at its second segment), and both copies learn alike."""
    from test_lm import TINY_LM

    config = tmp_path / "lm.yaml"
    config.write_text("model:\n  task: lm\n")
    sets = [a for item in TINY_LM for a in ("--set", item)]
    _run_precision_benchmark(config, lm_bin, *sets)
