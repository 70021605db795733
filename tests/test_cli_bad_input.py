"""Bad input through the commands: exit status 1 and one line on stderr that names
the file (and line), never a traceback; with --skip-bad, a count of what was
skipped."""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from conftest import TINY
from s2s.cli import app
from s2s.config import load_config
from s2s.errors import S2SError
from s2s.train.trainer import Trainer

runner = CliRunner()


def one_line_error(r, *expected: str) -> str:
    """The command failed with one `error:` line holding `expected`, last on
    stderr (after any progress lines), and no traceback."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:], r.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def mt_run(toy_bin, tmp_path_factory):
    """A translation model after two steps: enough to load and decode."""
    out = tmp_path_factory.mktemp("mt-run")
    Trainer(load_config(None, [*TINY, "train.max_steps=2"]), toy_bin, out).run()
    return out


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"eins\nzwei\nkatze \xff\n", "in.de:3: not valid UTF-8 (byte 0xff"),
        (b"eins\nzw\x00ei\n", "in.de:2: contains a NUL byte"),
        ("eins\n".encode("utf-16"), "in.de:1: not valid UTF-8"),
        (None, "in.de: cannot open: No such file"),
        ("dir", "in.de: cannot open: Is a directory"),
    ],
    ids=["bad-utf8", "nul", "utf16", "missing", "directory"],
)
def test_translate_bad_input(mt_run, tmp_path, data, expected):
    src = tmp_path / "in.de"
    if data == "dir":
        src.mkdir()
    elif data is not None:
        src.write_bytes(data)
    args = ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)]
    one_line_error(runner.invoke(app, args), expected)


def test_translate_bad_stdin_and_unwritable_output(mt_run, tmp_path):
    ckpt = ["translate", "--checkpoint", str(mt_run / "last.pt")]
    r = runner.invoke(app, ckpt, input=b"eins\n\xc3\n")
    one_line_error(r, "<stdin>:2: not valid UTF-8 (byte 0xc3")
    r = runner.invoke(app, [*ckpt, "--output", str(tmp_path / "no" / "out.en")])
    one_line_error(r, "out.en: cannot write: No such file")


def test_resume_with_another_vocabulary(mt_run, toy_raw, tmp_path):
    from s2s.data.prep_text import PrepOptions, prep_text

    opts = PrepOptions(
        src="de",
        tgt="en",
        train=str(toy_raw / "train"),
        valid=str(toy_raw / "valid"),
        vocab_size=45,
    )
    prep_text(opts, tmp_path / "bin", log=lambda m: None)
    run = shutil.copytree(mt_run, tmp_path / "run")
    cfg = load_config(None, [*TINY, "train.max_steps=4"])
    with pytest.raises(S2SError, match=r"last\.pt was trained with a different src"):
        Trainer(cfg, tmp_path / "bin", run, resume=True)


# --- scoring and prep text --------------------------------------------------------


@pytest.mark.parametrize("metric", ["wer", "bleu"])
def test_score_bad_files(tmp_path, metric):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("a b\nc d\n")
    hyp.write_bytes(b"a b\nc \xe9\n")
    score = ["score", metric, "--ref", str(ref), "--hyp"]
    one_line_error(runner.invoke(app, [*score, str(hyp)]), "hyp.txt:2: not valid UTF-8")
    one_line_error(runner.invoke(app, [*score, str(tmp_path / "nope")]), "nope: cannot")
    one_line_error(runner.invoke(app, [*score, str(tmp_path)]), "Is a directory")


def _prep_text(tmp_path, files: dict[str, bytes], *extra: str):
    for name in ("t.de", "t.en", "v.de", "v.en"):
        (tmp_path / name).write_bytes(files.get(name, b"eins zwei\n" * 3))
    args = ["prep", "text", "--src", "de", "--tgt", "en", "--vocab-size", "30"]
    args += ["--train", str(tmp_path / "t"), "--valid", str(tmp_path / "v")]
    return runner.invoke(app, [*args, "--out", str(tmp_path / "bin"), *extra])


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"t.de": b"eins\nzw\x00ei\ndrei\n"}, "t.de:2: contains a NUL byte"),
        ({"v.en": b"one\n\x80\n"}, "v.en:2: not valid UTF-8 (byte 0x80"),
        ({"t.en": b"one\n\ntwo\n"}, "t.en:2: empty line (use --drop-empty"),
        ({"t.de": b"eins\nzwei\n"}, "t.de has 2 lines but"),
        ({"v.de": b"eins\ncaf\xc3"}, "v.de:2: not valid UTF-8"),  # cut at EOF
    ],
    ids=["nul", "bad-utf8", "empty", "counts", "truncated-char"],
)
def test_prep_text_bad_input(tmp_path, files, expected):
    one_line_error(_prep_text(tmp_path, files), expected)


def test_prep_text_crlf_bom_and_drop_empty(tmp_path):
    files = {
        "t.de": "\ufeffeins zwei\r\n\r\n\ufeffdrei\r\n".encode(),
        "t.en": b"one two\nthree\nthree\n",
    }
    r = _prep_text(tmp_path, files, "--drop-empty")
    assert r.exit_code == 0, r.output
    assert "train: kept 2 of 3 lines" in r.stderr and "dropped 1 empty" in r.stderr
    assert (tmp_path / "bin" / "meta.json").exists()


# --- speech -----------------------------------------------------------------------


def _bad_audio(root):
    """One file per kind of broken audio, by name."""
    wav = io.BytesIO()
    soundfile.write(wav, np.full(8000, 0.1, np.float32), 16000, format="WAV")
    wav = wav.getvalue()
    three_hz = bytearray(wav)
    three_hz[24:28] = (3).to_bytes(4, "little")
    files = {
        "zero.wav": b"",
        "noise.flac": bytes(range(256)) * 2,
        "header-only.wav": wav[:44],
        "three-hz.wav": bytes(three_hz),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "dir.wav").mkdir()
    return [*files, "dir.wav", "missing.wav"]


def test_prep_speech_skip_bad_counts_every_kind(tone_raw, tmp_path):
    names = _bad_audio(tmp_path)
    rows = (tone_raw / "train.tsv").read_text().splitlines()
    rows[1:1] = [f"bad{k}\t{tmp_path / n}\t1.0\tab" for k, n in enumerate(names)]
    manifest = tmp_path / "train.tsv"
    manifest.write_text("\n".join(rows).replace("\twav/", f"\t{tone_raw}/wav/") + "\n")
    args = ["prep", "speech", "--train", str(manifest), "--valid"]
    args += [str(tone_raw / "valid.tsv"), "--chars", "--num-mels", "20"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "bin")])
    one_line_error(r, "train.tsv:2: ", "zero.wav: empty file", "--skip-bad")
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "bin"), "--skip-bad"])
    assert r.exit_code == 0, r.output
    assert f"train: kept 60 of {60 + len(names)} utterances" in r.stderr
    assert f"{len(names)} skipped bad audio" in r.stderr
    meta = json.loads((tmp_path / "bin" / "meta.json").read_text())
    assert meta["stats"]["train"]["skipped_bad_audio"] == len(names)


def test_transcribe_bad_audio(tone_run, tone_raw, tmp_path):
    ckpt = ["transcribe", "--checkpoint", str(tone_run / "best.pt")]
    reasons = {
        "zero.wav": "empty file (0 bytes)",
        "noise.flac": "cannot decode audio",
        "header-only.wav": "empty audio (0 samples)",
        "three-hz.wav": "sample rate 3 Hz",
        "dir.wav": "is a directory",
        "missing.wav": "file not found",
    }
    assert sorted(_bad_audio(tmp_path)) == sorted(reasons)
    for name, reason in reasons.items():
        r = runner.invoke(app, [*ckpt, str(tmp_path / name)])
        one_line_error(r, f"{tmp_path / name}: {reason}")
    # In a manifest, the error names the manifest line as well.
    good = tone_raw / "wav" / "valid000.wav"
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"id\tpath\tduration\na\t{good}\t1\nb\theader-only.wav\t1\n")
    r = runner.invoke(app, [*ckpt, "--manifest", str(manifest)])
    one_line_error(r, "m.tsv:3: ", "header-only.wav: empty audio")
    manifest.write_bytes(b"id\tpath\tduration\na\tx.wav\t1\nb\t\xff.wav\t1\n")
    r = runner.invoke(app, [*ckpt, "--manifest", str(manifest)])
    one_line_error(r, "m.tsv:3: not valid UTF-8 (byte 0xff at column 3)")


def test_transcribe_header_fine_but_data_broken_names_manifest_line(
    tone_run, tone_raw, tmp_path
):
    """A FLAC cut after its header: the header check passes, decoding fails."""
    from s2s.data.audio import audio_seconds

    flac = io.BytesIO()
    soundfile.write(flac, np.full(16000, 0.1, np.float32), 16000, format="FLAC")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.getvalue()[:100])
    assert audio_seconds(cut) == 1.0  # the header alone reads
    manifest = tmp_path / "m.tsv"
    good = tone_raw / "wav" / "valid000.wav"
    manifest.write_text(f"id\tpath\tduration\na\t{good}\t1\nb\tcut.flac\t1\n")
    ckpt = ["transcribe", "--checkpoint", str(tone_run / "best.pt")]
    r = runner.invoke(app, [*ckpt, "--manifest", str(manifest)])
    one_line_error(r, "m.tsv:3: ", "cut.flac: cannot decode audio")


def test_transcribe_paths_on_stdin_in_any_encoding(tone_run, tmp_path):
    """Paths on stdin are bytes: one that is not UTF-8 is looked up as it is."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8:strict"}
    r = subprocess.run(
        [sys.executable, "-m", "s2s", "transcribe", "--checkpoint"]
        + [str(tone_run / "best.pt"), "-"],
        input=bytes(tmp_path) + b"/caf\xe9.wav\n",
        env=env,
        capture_output=True,
    )
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1 and "Traceback" not in err, err
    assert err.count("\n") == 1 and "caf" in err and "file not found" in err


def test_score_subprocess_one_line(tmp_path):
    (tmp_path / "ref.txt").write_text("a b\n")
    (tmp_path / "hyp.txt").write_bytes(b"a \x00b\n")
    r = subprocess.run(
        [sys.executable, "-m", "s2s", "score", "wer", "--ref"]
        + [str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"error: {tmp_path / 'hyp.txt'}:1: contains a NUL byte\n"
