"""The Python API (s2s/decode/api.py): `from s2s import Translator, Transcriber`,
the same results and errors as `s2s translate` and `s2s transcribe`; and
`s2s translate --line-by-line` answering each line as it comes."""

import os
import select
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import TINY
from s2s import S2SError, Transcriber, Translator
from s2s.cli import app
from s2s.config import load_config
from s2s.train.trainer import Trainer

runner = CliRunner()


@pytest.fixture(scope="module")
def mt_ckpt(toy_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("mt-run")
    sets = ["train.max_steps=60", "train.batch_tokens=400", "train.valid_bleu=false"]
    cfg = load_config(None, [*TINY, *sets])
    Trainer(cfg, toy_bin, out).run()
    return out / "last.pt"


def _cli(args: list[str]) -> list[str]:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.stdout.splitlines()


def test_import_s2s_stays_light():
    code = (
        "import sys, s2s; from s2s import Translator, Transcriber; "
        "print('torch' in sys.modules, Translator.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "s2s.decode.api"]


def test_translator_gives_what_the_cli_gives(mt_ckpt, toy_raw):
    src = toy_raw / "valid.de"
    sentences = src.read_text().splitlines()
    tr = Translator(mt_ckpt, beam=3, device="cpu", threads=1)
    hyps = tr.translate(sentences)
    cli = ["translate", "--checkpoint", str(mt_ckpt), "--input", str(src)]
    assert hyps == _cli([*cli, "--beam", "3", "--device", "cpu"])
    assert len(hyps) == len(sentences) and any(hyps)
    assert tr.translate(sentences[3]) == hyps[3]  # one string in, one out
    # n-best lists: the CLI's `line<TAB>score<TAB>text`, best first.
    nbest = Translator(mt_ckpt, beam=3, nbest=2, device="cpu").translate_nbest(
        sentences
    )
    rows = _cli([*cli, "--beam", "3", "--nbest", "2", "--device", "cpu"])
    assert [
        f"{n}\t{score:.4f}\t{text}"
        for n, hyps in enumerate(nbest, 1)
        for text, score in hyps
    ] == rows
    assert all(len(h) == 2 and h[0][1] >= h[1][1] for h in nbest)


def test_translator_cleans_sentences_as_the_cli_cleans_lines(mt_ckpt):
    tr = Translator(mt_ckpt, beam=1, device="cpu")
    assert tr.config.beam == 1 and tr.config.nbest == 1
    clean = tr.translate(["eins zwei drei", "haus"])
    assert tr.translate([" eins\tzwei\ndrei ", "\ufeffhaus", ""]) == [*clean, ""]
    assert tr.translate([]) == []
    assert tr.translate(iter(["haus"])) == clean[1:]  # any iterable


@pytest.mark.parametrize(
    ("kwargs", "sentences", "message"),
    [
        ({"beam": 2, "nbest": 3}, [], "--nbest 3 cannot exceed --beam 2"),
        ({"lm_weight": 0.3}, [], "--lm-weight needs --lm"),
        ({}, ["eins", "zw\x00ei"], "<sentences>:2: contains a NUL byte"),
        ({}, ["eins", 3], "<sentences>:2: a int, not a string"),
        ({}, ["eins", "\ud800"], "<sentences>:2: not valid UTF-8"),
        ({}, ["eins " * 1100], "<sentences>:1: input is 1101 tokens long"),
    ],
)
def test_translator_errors_are_the_clis(mt_ckpt, kwargs, sentences, message):
    with pytest.raises(S2SError, match=message.replace("[", r"\[")):
        Translator(mt_ckpt, device="cpu", **kwargs).translate(sentences)


def test_translator_needs_a_translation_checkpoint(tone_run, tmp_path):
    with pytest.raises(S2SError, match="no such checkpoint"):
        Translator(tmp_path / "none.pt")
    with pytest.raises(S2SError, match="needs a translation model"):
        Translator(tone_run / "best.pt")


def test_transcriber_gives_what_the_cli_gives(tone_run, tone_raw):
    ckpt = tone_run / "best.pt"
    wavs = sorted((tone_raw / "wav").glob("valid*.wav"))[:4]
    refs = [
        line.split("\t")[3]
        for line in (tone_raw / "valid.tsv").read_text().splitlines()[1:5]
    ]
    tr = Transcriber(ckpt, device="cpu")
    assert tr.mode == "ctc"
    assert tr.transcribe(wavs[0]) == refs[0]  # three lines from import to text
    texts = tr.transcribe([str(w) for w in wavs])
    assert texts == refs
    rows = _cli(["transcribe", "--checkpoint", str(ckpt), *map(str, wavs)])
    assert rows == [f"{w}\t{t}" for w, t in zip(wavs, texts, strict=True)]
    assert Transcriber(ckpt, beam=3, device="cpu").transcribe(wavs) == refs


def test_transcriber_errors_are_the_clis(tone_run, tmp_path):
    ckpt = tone_run / "best.pt"
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS" + bytes(range(256)) * 4)
    tr = Transcriber(ckpt, device="cpu")
    with pytest.raises(S2SError, match="bad.ogg: cannot decode audio"):
        tr.transcribe(bad)
    with pytest.raises(S2SError, match="^list.tsv:3: .*bad.ogg: cannot decode"):
        tr.transcribe([bad], where=["list.tsv:3"])
    with pytest.raises(S2SError, match=r"--ctc-weight must be in \[0, 1\]"):
        Transcriber(ckpt, ctc_weight=2.0)
    with pytest.raises(S2SError, match="attention needs an attention decoder"):
        Transcriber(ckpt, mode="attention")


def _read_line(fd: int, timeout: float) -> bytes:
    """One line from a pipe, or what came before `timeout` seconds ran out."""
    data, deadline = b"", time.time() + timeout
    while not data.endswith(b"\n") and time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.time(), 0))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data


def test_translate_line_by_line_answers_each_line_as_it_comes(mt_ckpt):
    """A pipe kept open, as a person typing at a terminal: every line is answered
    before the next is written (by default they wait for 2,000 lines or EOF)."""
    expected = Translator(mt_ckpt, device="cpu").translate(["eins zwei", "haus"])
    args = [sys.executable, "-m", "s2s", "translate", "--checkpoint", str(mt_ckpt)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*args, "--device", "cpu", "--line-by-line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        answers = []
        for sentence in ("eins zwei", "haus"):
            proc.stdin.write(sentence.encode() + b"\n")
            proc.stdin.flush()
            answers.append(_read_line(proc.stdout.fileno(), 60).decode())
        assert proc.poll() is None  # still reading: the answers came before EOF
        assert answers == [t + "\n" for t in expected]
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert b"translated 2 lines" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
