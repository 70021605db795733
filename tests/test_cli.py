"""The command line, through CliRunner and through a real subprocess."""

import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from s2s.cli import app

runner = CliRunner()


def test_config_show():
    r = runner.invoke(app, ["config", "show", "--set", "model.hidden_size=64"])
    assert r.exit_code == 0
    assert "hidden_size: 64" in r.output


def test_bad_key_is_one_line_error_not_traceback(tmp_path):
    r = runner.invoke(app, ["config", "show", "--set", "train.max_step=3"])
    assert r.exit_code == 1
    assert "error: unknown config key 'train.max_step'" in r.output
    assert "Traceback" not in r.output


def test_prep_mismatched_counts(tmp_path):
    (tmp_path / "t.de").write_text("a\nb\n")
    (tmp_path / "t.en").write_text("a\n")
    (tmp_path / "v.de").write_text("a\n")
    (tmp_path / "v.en").write_text("a\n")
    r = runner.invoke(
        app,
        [
            "prep",
            "text",
            "--src",
            "de",
            "--tgt",
            "en",
            "--train",
            str(tmp_path / "t"),
            "--valid",
            str(tmp_path / "v"),
            "--out",
            str(tmp_path / "bin"),
        ],
    )
    assert r.exit_code == 1
    assert f"{tmp_path / 't.en'} has 1 lines" in r.output


def test_translate_missing_or_corrupt_checkpoint(tmp_path):
    r = runner.invoke(app, ["translate", "--checkpoint", str(tmp_path / "no.pt")])
    assert r.exit_code == 1 and "no such checkpoint" in r.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    r = runner.invoke(app, ["translate", "--checkpoint", str(bad)])
    assert r.exit_code == 1 and "not a readable checkpoint" in r.output


def test_score_mismatched_lines(tmp_path):
    (tmp_path / "r").write_text("a\nb\n")
    (tmp_path / "h").write_text("a\n")
    r = runner.invoke(
        app,
        ["score", "bleu", "--ref", str(tmp_path / "r"), "--hyp", str(tmp_path / "h")],
    )
    assert r.exit_code == 1 and "has 1 lines but" in r.output


def test_end_to_end_subprocess(toy_raw, tmp_path):
    """prep -> train -> translate -> score with the real `s2s` command."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    s2s = [sys.executable, "-m", "s2s"]

    def run(*args, **kw):
        r = subprocess.run(
            [*s2s, *args], env=env, capture_output=True, text=True, cwd=tmp_path, **kw
        )
        assert r.returncode == 0, r.stderr[-3000:]
        return r

    t0 = time.time()
    raw = Path(toy_raw)
    run(
        "prep",
        "text",
        "--src",
        "de",
        "--tgt",
        "en",
        "--train",
        str(raw / "train"),
        "--valid",
        str(raw / "valid"),
        "--test",
        str(raw / "test"),
        "--out",
        "bin",
        "--vocab-size",
        "60",
    )
    run(
        "train",
        "--data",
        "bin",
        "--out",
        "run",
        "--set",
        "model.emb_dim=32",
        "--set",
        "model.enc_hidden_size=32",
        "--set",
        "model.hidden_size=64",
        "--set",
        "model.dropout=0.0",
        "--set",
        "model.param_init=0",
        "--set",
        "train.max_steps=300",
        "--set",
        "train.batch_tokens=300",
        "--set",
        "train.lr=0.005",
        "--set",
        "train.warmup_steps=30",
        "--set",
        "train.valid_every=100",
        "--set",
        "train.threads=1",
    )
    run(
        "translate",
        "--checkpoint",
        "run/best.pt",
        "--input",
        str(raw / "test.de"),
        "--output",
        "hyp.en",
        "--beam",
        "3",
    )
    score = run("score", "bleu", "--ref", str(raw / "test.en"), "--hyp", "hyp.en")
    bleu = float(score.stdout.split()[1])
    assert bleu > 50, score.stdout
    # stdin -> stdout
    r = run("translate", "--checkpoint", "run/best.pt", input="eins zwei\n\nrot\n")
    assert r.stdout.count("\n") == 3 and r.stdout.split("\n")[1] == ""
    assert time.time() - t0 < 120


# --- speech -----------------------------------------------------------------------


def _refs(tone_raw):
    rows = (tone_raw / "valid.tsv").read_text().splitlines()[1:]
    return [row.split("\t")[3] for row in rows]


def test_transcribe_files_manifest_and_output(tone_run, tone_raw, tmp_path):
    ckpt = str(tone_run / "best.pt")
    wav = tone_raw / "wav"
    refs = _refs(tone_raw)
    r = runner.invoke(
        app, ["transcribe", "--checkpoint", ckpt, str(wav / "valid000.wav")]
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == refs[0] + "\n"  # a single file: the text alone
    assert "real-time factor" in r.stderr
    files = [str(wav / "valid001.wav"), str(wav / "valid002.wav")]
    r = runner.invoke(app, ["transcribe", "--checkpoint", ckpt, *files, "--beam", "3"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        f"{f}\t{t}" for f, t in zip(files, refs[1:3], strict=True)
    ]
    out = tmp_path / "hyp.tsv"
    args = ["--manifest", str(tone_raw / "valid.tsv"), "--output", str(out)]
    r = runner.invoke(app, ["transcribe", "--checkpoint", ckpt, *args])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == f"valid000\t{refs[0]}" and len(lines) == len(refs)


def test_transcribe_errors_are_one_line(tone_run, tone_raw, tmp_path):
    ckpt = str(tone_run / "best.pt")
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS" + bytes(range(256)) * 4)
    r = runner.invoke(app, ["transcribe", "--checkpoint", ckpt, str(bad)])
    assert r.exit_code == 1 and "bad.ogg: cannot decode audio" in r.output
    assert "Traceback" not in r.output
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"id\tpath\tduration\na\t{tone_raw}/wav/valid000.wav\tlong\n")
    r = runner.invoke(app, ["transcribe", "--checkpoint", ckpt, "--manifest", manifest])
    assert r.exit_code == 1 and "m.tsv:2: duration must be a positive" in r.output
    manifest.write_text(
        f"id\tpath\tduration\na\t{tone_raw}/wav/valid000.wav\t1\nb\t{bad}\t1\n"
    )
    r = runner.invoke(app, ["transcribe", "--checkpoint", ckpt, "--manifest", manifest])
    assert r.exit_code == 1 and "m.tsv:3: " in r.output and "bad.ogg" in r.output
    r = runner.invoke(app, ["translate", "--checkpoint", ckpt])
    assert r.exit_code == 1 and "needs a translation model" in r.output


def test_prep_speech_bad_manifest_and_audio(tone_raw, tmp_path):
    base = ["prep", "speech", "--valid", str(tone_raw / "valid.tsv")]
    base += ["--out", str(tmp_path / "bin")]
    manifest = tmp_path / "train.tsv"
    manifest.write_text("id\tpath\tduration\ttext\na\tx.wav\t1.0\n")
    r = runner.invoke(app, [*base, "--train", str(manifest)])
    assert r.exit_code == 1 and "train.tsv:2: expected 4 tab-separated" in r.output
    (tmp_path / "x.wav").write_bytes(b"RIFF0000WAVEfmt garbage")
    manifest.write_text("id\tpath\tduration\ttext\na\tx.wav\t1.0\tab\n")
    r = runner.invoke(app, [*base, "--train", str(manifest)])
    assert r.exit_code == 1 and "train.tsv:2: " in r.output and "x.wav" in r.output
    assert "--skip-bad" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, [*base, "--train", str(manifest), "--skip-bad"])
    assert r.exit_code == 1 and "no usable training utterances" in r.output


def test_transcribe_subprocess_stdin(tone_run, tone_raw):
    """`s2s transcribe -` reads audio paths from stdin, in a real process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    paths = [str(tone_raw / "wav" / f"valid00{k}.wav") for k in range(3)]
    r = subprocess.run(
        [sys.executable, "-m", "s2s", "transcribe", "--checkpoint"]
        + [str(tone_run / "best.pt"), "-", "--beam", "1"],
        input="\n".join(paths) + "\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    refs = _refs(tone_raw)[:3]
    assert r.stdout.splitlines() == [
        f"{p}\t{t}" for p, t in zip(paths, refs, strict=True)
    ]
    assert "transcribed 3 files" in r.stderr and "real-time factor" in r.stderr
