"""`s2s export` on the command line, and `s2s-run` in a subprocess where importing
torch, torchaudio or s2s fails: the runtime decodes exported models alone, with
the output `s2s translate` / `s2s transcribe` write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from typer.testing import CliRunner  # noqa: E402

from exported import TINY_TEXT, random_checkpoint  # noqa: E402
from s2s.cli import app  # noqa: E402
from s2s.data.binarized import read_meta  # noqa: E402

RUNTIME = Path(__file__).parent.parent / "runtime"
BLOCKER = '''import sys

class _NoTorch:
    """The runtime must not import these."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchaudio", "s2s"):
            raise ImportError(f"import of {name} blocked: the runtime is torch-free")
        return None

sys.meta_path.insert(0, _NoTorch())
'''


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict[str, str]:
    """Environment whose Python cannot import torch (a sitecustomize blocker)."""
    site = tmp_path_factory.mktemp("no-torch")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(RUNTIME)])
    return env


def run_runtime(env: dict, args: list[str], stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "s2s_runtime", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_s2s(args: list[str], stdin: str | None = None) -> str:
    """`s2s` in this process (torch is loaded here already): its stdout."""
    result = CliRunner().invoke(app, args, input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_blocker_blocks(no_torch_env):
    r = subprocess.run(
        [sys.executable, "-c", "import torch"],
        env=no_torch_env,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "blocked" in r.stderr


@pytest.fixture(scope="module")
def text_model(toy_bin, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cli-export")
    files = read_meta(toy_bin)["vocab"]
    vocab = {k: (toy_bin / files[k]).read_bytes() for k in ("src", "tgt")}
    ckpt = random_checkpoint(tmp / "m.pt", TINY_TEXT, vocab, seed=5)
    out = tmp / "export"
    result = CliRunner().invoke(
        app, ["export", "--checkpoint", str(ckpt), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "exported translation model" in result.output
    return ckpt, out


@pytest.mark.parametrize(
    "extra", [[], ["--beam", "1"], ["--beam", "3", "--nbest", "2"]]
)
def test_run_translate_without_torch(
    text_model, toy_raw, no_torch_env, extra, tmp_path
):
    ckpt, out = text_model
    src = tmp_path / "test.de"  # with what s2s's line reader cleans up
    odd = "\ufeffeins \t zwei  \r\n   \nrot\u00a0haus\n\n"
    src.write_text((toy_raw / "test.de").read_text() + odd, newline="")
    want = run_s2s(
        ["translate", "--checkpoint", str(ckpt), "--input", str(src), *extra]
    )
    got = run_runtime(
        no_torch_env, ["translate", "--model", str(out), "--input", str(src), *extra]
    )
    assert got.returncode == 0, got.stderr
    assert want.strip()
    _same_translations(got.stdout, want)
    # stdin in, file out
    dest = out.parent / "hyp.txt"
    again = run_runtime(
        no_torch_env,
        ["translate", "--model", str(out), "--output", str(dest), *extra],
        stdin=src.read_text(),
    )
    assert again.returncode == 0, again.stderr
    _same_translations(dest.read_text(), want)


def _same_translations(got: str, want: str) -> None:
    """Line for line the same text; n-best scores (`n<TAB>score<TAB>text`, printed
    to 4 decimals) within 2e-4: two implementations' sums may round apart."""
    got_lines, want_lines = got.split("\n"), want.split("\n")
    assert len(got_lines) == len(want_lines)
    for g, w in zip(got_lines, want_lines, strict=True):
        g_cols, w_cols = g.split("\t"), w.split("\t")
        if len(w_cols) == 3:
            assert g_cols[0] == w_cols[0] and g_cols[2] == w_cols[2], (g, w)
            assert float(g_cols[1]) == pytest.approx(float(w_cols[1]), abs=2e-4)
        else:
            assert g == w


def test_run_transcribe_without_torch(tone_run, tone_raw, no_torch_env, tmp_path):
    out = tmp_path / "ctc"
    ckpt = tone_run / "best.pt"
    env = {**os.environ, "PYTHONPATH": str(RUNTIME.parent)}
    r = subprocess.run(  # once through a real `python -m s2s`
        [sys.executable, "-m", "s2s", "export", "--checkpoint", str(ckpt)]
        + ["--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    manifest = tone_raw / "valid.tsv"
    for args, stdin in (
        (["--manifest", str(manifest)], None),
        (["-"], "".join(f"{p}\n" for p in sorted((tone_raw / "wav").glob("valid00*")))),
        ([str(tone_raw / "wav" / "valid001.wav"), "--beam", "3"], None),
    ):
        want = run_s2s(["transcribe", "--checkpoint", str(ckpt), *args], stdin)
        got = run_runtime(
            no_torch_env, ["transcribe", "--model", str(out), *args], stdin
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout == want and want.strip()
        assert "real-time factor" in got.stderr


def test_int8_export_runs(text_model, toy_raw, no_torch_env, tmp_path):
    ckpt, _ = text_model
    out = tmp_path / "int8"
    run_s2s(
        ["export", "--checkpoint", str(ckpt), "--out", str(out), "--precision", "int8"]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "int8"
    import onnx

    ops = {n.op_type for n in onnx.load(out / "decoder_step.onnx").graph.node}
    assert ops & {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul"}
    src = toy_raw / "test.de"
    got = run_runtime(
        no_torch_env, ["translate", "--model", str(out), "--input", str(src)]
    )
    assert got.returncode == 0, got.stderr
    assert len(got.stdout.splitlines()) == len(src.read_text().splitlines())


def test_export_refusals(text_model, tmp_path, no_torch_env):
    ckpt, out = text_model
    runner = CliRunner()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    cases = [
        (["--checkpoint", str(ckpt), "--out", str(busy)], "is not an s2s export"),
        (
            ["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x")],
            "no such",
        ),
        (
            [
                "--checkpoint",
                str(ckpt),
                "--out",
                str(tmp_path / "y"),
                "--lm",
                str(ckpt),
            ],
            "lm",
        ),
    ]
    for args, msg in cases:
        result = runner.invoke(app, ["export", *args])
        assert result.exit_code == 1, result.output
        assert msg in result.output.lower() and "Traceback" not in result.output
    assert (busy / "notes.txt").read_text() == "mine"
    bad = tmp_path / "bad.de"
    bad.write_bytes(b"eins\nzwei \xff\n")
    # the runtime refuses what a model cannot do, in one line
    for args, msg in (
        (["transcribe", "--model", str(out), "x.wav"], "translation model"),
        (["translate", "--model", str(out), "--lm-weight", "0.3"], "needs an lm"),
        (["translate", "--model", str(tmp_path)], "manifest.json"),
        (
            ["translate", "--model", str(out), "--input", str(tmp_path / "no")],
            "cannot open",
        ),
        (
            ["translate", "--model", str(out), "--input", str(bad)],
            "bad.de:2: not valid",
        ),
    ):
        r = run_runtime(no_torch_env, args, stdin="eins\n")
        assert r.returncode == 1, r.stderr
        assert msg in r.stderr.lower() and "Traceback" not in r.stderr
