"""Nothing half-written: prep directories swapped in whole, command outputs renamed
into place at the end, outputs that are inputs refused (`s2s.atomic`)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY
from s2s.atomic import atomic_file, build_dir, open_output, refuse_same_file
from s2s.cli import app
from s2s.config import load_config
from s2s.data.batching import ParallelData
from s2s.data.binarized import read_meta
from s2s.data.prep_text import PrepOptions, prep_text
from s2s.errors import S2SError
from s2s.train.trainer import Trainer

runner = CliRunner()


def _opts(raw: Path, src: str = "de", tgt: str = "en", **kw) -> PrepOptions:
    return PrepOptions(
        src=src,
        tgt=tgt,
        train=str(raw / "train"),
        valid=str(raw / "valid"),
        vocab_size=kw.pop("vocab_size", 60),
        **kw,
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def mt_run(toy_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("mt-run")
    Trainer(load_config(None, [*TINY, "train.max_steps=2"]), toy_bin, out).run()
    return out


# -- the helpers --------------------------------------------------------------------


def test_atomic_file_keeps_the_old_file_on_an_exception(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_file(path) as f:
        f.write("new, half")
        raise KeyboardInterrupt
    assert path.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]  # no temporary left
    path.chmod(0o640)
    with atomic_file(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640  # the old file's mode is kept
    umask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "new.txt") as f:
            f.write("x")
        with build_dir(tmp_path / "d", "meta.json"):
            pass
    finally:
        os.umask(umask)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644  # not 0600
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755  # not 0700


def test_build_dir_refuses_what_it_would_destroy(tmp_path):
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(S2SError, match="exists and is not a directory"),
        build_dir(tmp_path / "file", "meta.json"),
    ):
        pass
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with (
        pytest.raises(S2SError, match="not empty and not made by s2s"),
        build_dir(other, "meta.json"),
    ):
        pass
    assert (other / "notes.txt").read_text() == "mine"
    (other / "meta.json").write_text("{}")
    with (
        pytest.raises(S2SError, match="holds the input"),
        build_dir(other, "meta.json", [other / "notes.txt"]),
    ):
        pass
    assert (other / "notes.txt").read_text() == "mine"


def test_refuse_same_file_sees_through_links(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "link").symlink_to(f)
    with pytest.raises(S2SError, match="the output is the input"):
        refuse_same_file([f], tmp_path / "link")
    refuse_same_file([f], tmp_path / "other")  # a new file is fine
    refuse_same_file(["-"], "-")


# -- prep: never half old, half new ----------------------------------------------


def test_interrupted_reprep_leaves_the_old_directory_whole(
    toy_raw, tmp_path, monkeypatch
):
    """Killed after the new shards but before the new meta.json (here: with the
    sides swapped), the directory still holds the old preparation, all of it."""
    out = tmp_path / "bin"
    prep_text(_opts(toy_raw), out, log=lambda m: None)
    before = _snapshot(out)

    def killed(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr("s2s.data.prep_text.write_meta", killed)
    with pytest.raises(KeyboardInterrupt):
        prep_text(_opts(toy_raw, "en", "de", vocab_size=50), out, log=lambda m: None)
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]  # temporaries removed
    data = ParallelData(out, "train")
    assert data.meta["src"] == "de" and len(data) == data.meta["stats"]["train"]["kept"]


def test_reprep_leaves_no_stale_files(toy_raw, tmp_path):
    out = tmp_path / "bin"
    prep_text(_opts(toy_raw, test=str(toy_raw / "test")), out, log=lambda m: None)
    assert (out / "test.src.000.bin").exists()
    prep_text(_opts(toy_raw, joint_vocab=True), out, log=lambda m: None)
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith("test.") for n in names), names
    assert "spm.de.model" not in names and "spm.joint.model" in names
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
            str(toy_raw / "train"),
        ]
        + ["--valid", str(toy_raw / "valid"), "--out", str(out / "meta.json")],
    )
    assert r.exit_code == 1 and "exists and is not a directory" in r.stderr


def test_reprep_under_a_running_reader_does_not_kill_it(toy_raw, tmp_path):
    """A trainer memory-maps the shards; re-prep used to rewrite them in place and
    the reader died of SIGBUS. Now the old files are unlinked, not rewritten: the
    reader keeps seeing the data it started with."""
    out = tmp_path / "bin"
    prep_text(_opts(toy_raw), out, log=lambda m: None)
    script = textwrap.dedent(
        f"""
        from s2s.data.batching import ParallelData
        from s2s.data.prep_text import PrepOptions, prep_text
        data = ParallelData({str(out)!r}, "train")
        before = [data.src[i].tolist() for i in range(len(data))]
        opts = PrepOptions(src="en", tgt="de", train={str(toy_raw / "train")!r},
                           valid={str(toy_raw / "valid")!r}, vocab_size=30,
                           max_len=4)
        prep_text(opts, {str(out)!r}, log=lambda m: None)
        after = [data.src[i].tolist() for i in range(len(data))]
        assert after == before
        print("same", len(after))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.startswith("same")
    assert read_meta(out)["src"] == "en"  # and the new data is in place


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ([1, 2], "not a JSON object"),
        ({"format": 1, "task": "translation", "dtype": "uint16"}, "'shards' missing"),
        ("bad-dtype", "dtype 'float128'"),
        ("missing-shard", "train.src.000.bin: missing"),
        ("count", "records 999 train items but the shards hold"),
        ("traversal", "file name '../x'"),
    ],
)
def test_crafted_meta_is_a_one_line_error(toy_bin, tmp_path, meta, expected):
    d = tmp_path / "bin"
    shutil.copytree(toy_bin, d)
    good = json.loads((d / "meta.json").read_text())
    if meta == "bad-dtype":
        meta = {**good, "dtype": "float128"}
    elif meta == "missing-shard":
        (d / "train.src.000.bin").unlink()
        meta = good
    elif meta == "count":
        good["stats"]["train"]["kept"] = 999
        meta = good
    elif meta == "traversal":
        meta = {**good, "vocab": {"src": "../x", "tgt": "../x"}}
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(S2SError, match=expected.replace("(", r"\(")):
        ParallelData(d, "train")
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(d), "--out", str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output


def test_vocabulary_of_another_size_is_refused(toy_bin, tmp_path):
    d = tmp_path / "bin"
    shutil.copytree(toy_bin, d)
    meta = json.loads((d / "meta.json").read_text())
    meta["vocab_size"]["tgt"] = 999
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(S2SError, match="pieces, but .*meta.json records 999"):
        ParallelData(d, "train").vocabs()


# -- command outputs -----------------------------------------------------------------


def test_translate_output_that_is_the_input_is_refused(mt_run, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("eins zwei\ndrei\n")
    (tmp_path / "link").symlink_to(src)
    ckpt = str(mt_run / "last.pt")
    for output in (src, tmp_path / "link"):
        r = runner.invoke(
            app,
            ["translate", "--checkpoint", ckpt, "--input", str(src)]
            + ["--output", str(output)],
        )
        assert r.exit_code == 1 and "the output is the input" in r.stderr
    assert src.read_text() == "eins zwei\ndrei\n"


def test_transcribe_output_that_is_the_manifest_is_refused(tone_run, tone_raw):
    manifest = tone_raw / "valid.tsv"
    before = manifest.read_bytes()
    r = runner.invoke(
        app,
        ["transcribe", "--checkpoint", str(tone_run / "last.pt")]
        + ["--manifest", str(manifest), "--output", str(manifest)],
    )
    assert r.exit_code == 1 and "the output is the input" in r.stderr
    assert manifest.read_bytes() == before


def test_transcribe_checks_its_output_before_decoding(
    tone_run, tone_raw, tmp_path, monkeypatch
):
    def never(*a, **kw):
        raise AssertionError("decoded before checking the output")

    monkeypatch.setattr("s2s.decode.transcribe.Transcriber.transcribe", never)
    r = runner.invoke(
        app,
        ["transcribe", "--checkpoint", str(tone_run / "last.pt")]
        + ["--manifest", str(tone_raw / "valid.tsv")]
        + ["--output", str(tmp_path / "missing" / "out.tsv")],
    )
    assert r.exit_code == 1 and "cannot write: No such file" in r.stderr, r.output


def test_interrupted_translation_leaves_no_partial_output(
    mt_run, tmp_path, monkeypatch
):
    src = tmp_path / "in.de"
    src.write_text("eins zwei\n" * 50)
    out = tmp_path / "out.en"
    out.write_text("the previous translation\n")
    import s2s.decode.translate as tr

    stream = tr.Translator.translate_stream

    def dies_halfway(self, lines, block=2000, source="<input>"):
        for k, hyps in enumerate(stream(self, lines, block, source)):
            if k == 25:
                raise KeyboardInterrupt
            yield hyps

    monkeypatch.setattr(tr.Translator, "translate_stream", dies_halfway)
    r = runner.invoke(
        app,
        ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)]
        + ["--output", str(out)],
    )
    assert r.exit_code == 130
    assert out.read_text() == "the previous translation\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.de", "out.en"]


def _s2s(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "s2s", *args], env=env, **kw)


def test_sigterm_during_translate_leaves_no_output(mt_run, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("eins zwei drei vier\n" * 20_000)
    out = tmp_path / "out.en"
    args = ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)]
    proc = _s2s([*args, "--output", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".out.en.*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.en.*")), "translation never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.de"]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **kw.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "s2s", *args],
        env=env,
        capture_output=kw.pop("capture_output", True),
        timeout=120,
        **kw,
    )


def test_closed_stderr_puts_nothing_into_the_output(mt_run, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("eins zwei\n" * 20)
    args = ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)]
    r = subprocess.run(
        [sys.executable, "-m", "s2s", *args],
        stdout=subprocess.PIPE,
        stderr=None,
        preexec_fn=lambda: os.close(2),
        timeout=120,
    )
    assert r.returncode == 0
    assert r.stdout.decode().count("\n") == 20  # no status line among them


def test_closed_stdin_and_stdout_are_errors(mt_run, tmp_path, monkeypatch):
    from s2s.data.text import iter_lines

    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of a closed fd 0
    with pytest.raises(S2SError, match="standard input is closed"):
        list(iter_lines("-"))
    src = tmp_path / "in.de"
    src.write_text("eins\n")
    r = _run(
        ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)],
        capture_output=False,
        stderr=subprocess.PIPE,
        preexec_fn=_close(1),
    )
    assert r.returncode == 1
    assert b"standard output is closed" in r.stderr and b"Traceback" not in r.stderr


def _close(fd: int):
    return lambda: os.close(fd)


def test_full_outputs_are_one_line_errors(mt_run, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("eins zwei\n" * 5)
    args = ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)]
    r = runner.invoke(app, [*args, "--output", "/dev/full"])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        "error: /dev/full: cannot write: No space left on device"
    )
    with open("/dev/full", "w") as full:
        r = _run(args, capture_output=False, stdout=full, stderr=subprocess.PIPE)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "error: <stdout>: cannot write: No space left on device" in err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_ascii_terminal_and_non_ascii_output(monkeypatch):
    """PYTHONIOENCODING=ascii: the output is still written, as UTF-8, and messages
    escape what the terminal cannot show (`s2s.cli.main` sets this up first)."""
    import io

    from s2s.cli import guard_std_streams

    out, err = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding="ascii"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err, encoding="ascii"))
    guard_std_streams()
    with open_output("-") as f:
        f.write("gr\u00fcn\n")
    print("error: gr\u00fcn.de: cannot open", file=sys.stderr, flush=True)
    assert out.getvalue() == "grün\n".encode()
    assert err.getvalue() == b"error: gr\\xfcn.de: cannot open\n"


def test_open_output_writes_devices_in_place(tmp_path):
    with open_output(os.devnull) as out:
        out.write("x\n")
    with pytest.raises(S2SError, match="Is a directory"), open_output(tmp_path):
        pass
