"""Bad values on the command line: one line naming the flag or key and the value,
exit status 1, never a traceback. And `--version`, shell completion, and prep's
note when the vocabulary comes out smaller than asked."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import TINY
from s2s.cli import app
from s2s.config import load_config
from s2s.train.trainer import Trainer

runner = CliRunner()


@pytest.fixture(scope="module")
def mt_run(toy_bin, tmp_path_factory):
    """A translation model after two steps: enough to load and decode."""
    out = tmp_path_factory.mktemp("mt-run")
    Trainer(load_config(None, [*TINY, "train.max_steps=2"]), toy_bin, out).run()
    return out


def _one_line_error(r, message):
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert message in lines[0], r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beam", "0"], "--beam must be >= 1, got 0"),
        (["--beam", "-1"], "--beam must be >= 1, got -1"),
        (["--nbest", "0"], "--nbest must be >= 1, got 0"),
        (["--nbest", "9"], "--nbest 9 cannot exceed --beam 5"),
        (["--threads", "-1"], "--threads must be >= 0, got -1"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        (["--device", "gpu"], "got 'gpu'"),
        (["--lenpen", "-1e308"], "--lenpen must be in [0, 10], got -1e+308"),
        (["--lenpen", "nan"], "--lenpen must be a finite number, got nan"),
        (["--batch-tokens", "0"], "--batch-tokens must be >= 1, got 0"),
    ],
)
def test_translate_bad_options(mt_run, args, message):
    r = runner.invoke(
        app, ["translate", "--checkpoint", str(mt_run / "last.pt"), *args], input="a\n"
    )
    _one_line_error(r, message)


def test_translate_good_options_still_work(mt_run):
    r = runner.invoke(
        app,
        ["translate", "--checkpoint", str(mt_run / "last.pt"), "--beam", "2"]
        + ["--nbest", "2", "--lenpen", "1.0", "--device", "cpu", "--threads", "1"],
        input="eins zwei\n",
    )
    assert r.exit_code == 0, r.output
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["1", "1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["transcribe", "x.wav", "--device", "tpu"], "--device must be auto, cpu"),
        (["transcribe", "x.wav", "--threads", "-1"], "--threads must be >= 0"),
        (["score", "ppl", "--device", "banana"], "--device must be auto, cpu"),
        (["score", "ppl", "--batch-tokens", "0"], "--batch-tokens must be >= 1"),
    ],
)
def test_transcribe_and_ppl_check_options_before_loading(tmp_path, args, message):
    """The options are checked before the checkpoint (here: none) is opened."""
    r = runner.invoke(app, [*args, "--checkpoint", str(tmp_path / "none.pt")])
    _one_line_error(r, message)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("train.device=gpu", "train.device must be auto, cpu, cuda or cuda:N"),
        ("train.lr=inf", "train.lr must be a finite number, got inf"),
        ("train.clip_norm=-1", "train.clip_norm must be >= 0, got -1.0"),
        ("train.max_steps=-1", "train.max_steps must be >= 0, got -1"),
        ("train.keep_last=-2", "train.keep_last must be >= 0, got -2"),
        ("train.patience=-3", "train.patience must be >= 0, got -3"),
    ],
)
def test_train_bad_settings_before_anything_runs(toy_bin, tmp_path, setting, message):
    r = runner.invoke(
        app,
        ["train", "--data", str(toy_bin), "--out", str(tmp_path / "run")]
        + ["--set", setting],
    )
    _one_line_error(r, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("last", ["0", "-2"])
def test_average_last_must_be_positive(mt_run, tmp_path, last):
    out = tmp_path / "avg.pt"
    r = runner.invoke(app, ["average", str(mt_run), "--out", str(out), "--last", last])
    _one_line_error(r, f"--last must be >= 1, got {last}")
    assert not out.exists()


def test_version_and_subprocess():
    from s2s import __version__

    r = subprocess.run(
        [sys.executable, "-m", "s2s", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert r.stdout.startswith(f"s2s {__version__} (torch ")
    r = subprocess.run(
        [sys.executable, "-m", "s2s", "translate", "--checkpoint", "x.pt"]
        + ["--beam", "0"],
        capture_output=True,
        text=True,
    )
    assert (r.returncode, r.stderr) == (1, "error: --beam must be >= 1, got 0\n")


def test_shell_completion(monkeypatch):
    """Typer's completion: the script, and the words it completes. Typer finds the
    shell from the process tree, which a CI job or a detached process may not
    have: the test names it."""
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    r = runner.invoke(app, ["--show-completion"], prog_name="s2s")
    assert r.exit_code == 0 and "complete -o default -F _s2s_completion s2s" in r.output
    env = {"_S2S_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
    r = runner.invoke(app, [], prog_name="s2s", env={**env, "COMP_WORDS": "s2s tr"})
    assert r.output.split() == ["train", "translate", "transcribe"]
    env = {**env, "COMP_CWORD": "2", "COMP_WORDS": "s2s translate --be"}
    r = runner.invoke(app, [], prog_name="s2s", env=env)
    assert r.output.split() == ["--beam"]


def test_prep_says_when_the_vocabulary_is_smaller_than_asked(toy_raw, tmp_path):
    args = ["prep", "text", "--src", "de", "--tgt", "en"]
    args += ["--train", str(toy_raw / "train"), "--valid", str(toy_raw / "valid")]
    r = runner.invoke(
        app, [*args, "--out", str(tmp_path / "bin"), "--vocab-size", "100000"]
    )
    assert r.exit_code == 0, r.output
    for lang in ("de", "en"):
        assert f"{lang} vocabulary: " in r.output
    assert "not the 100,000 asked for (--vocab-size)" in r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "b2"), "--vocab-size", "40"])
    assert r.exit_code == 0 and "asked for" not in r.output


def test_version_matches_the_package_metadata():
    import tomllib
    from pathlib import Path

    from s2s import __version__

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["version"] == __version__
