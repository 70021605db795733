"""CI's check of the torch-free install (`.ci/run`), in two halves.

    .venv/bin/python tests/runtime_smoke.py export DIR
        (the full install) a toy corpus, its vocabulary, a tiny random translation
        checkpoint and a random CTC checkpoint; exports both to DIR/text and
        DIR/ctc, and writes DIR/want.txt, what `s2s translate` makes of DIR/test.de.
    .venv-runtime/bin/python tests/runtime_smoke.py check DIR
        (an environment without torch) `s2s-run translate` must write want.txt
        again, and `s2s-run transcribe` must transcribe the tone files.

The models are made here, not committed: a committed export would drift from the
export code, and making them takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def export(out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from typer.testing import CliRunner

    from exported import TINY_SPEECH, TINY_TEXT, random_checkpoint
    from s2s.cli import app
    from s2s.data.binarized import read_meta
    from s2s.data.speech import SpeechData
    from toy import write_tone_corpus, write_toy_corpus

    runner = CliRunner()

    def s2s(*args: str) -> str:
        r = runner.invoke(app, list(args))
        if r.exit_code:
            sys.exit(f"s2s {' '.join(args)} failed:\n{r.output}")
        return r.stdout

    raw = write_toy_corpus(out / "raw", 300, 20, 20)
    s2s(
        *["prep", "text", "--src", "de", "--tgt", "en", "--train", f"{raw}/train"],
        "--valid",
        f"{raw}/valid",
        "--out",
        f"{out}/bin",
        "--vocab-size",
        "60",
    )
    files = read_meta(out / "bin")["vocab"]
    vocab = {k: (out / "bin" / files[k]).read_bytes() for k in ("src", "tgt")}
    ckpt = random_checkpoint(out / "text.pt", TINY_TEXT, vocab)
    s2s("export", "--checkpoint", str(ckpt), "--out", str(out / "text"))
    (out / "test.de").write_text((raw / "test.de").read_text())
    want = s2s("translate", "--checkpoint", str(ckpt), "--input", str(out / "test.de"))
    (out / "want.txt").write_text(want)

    tones = write_tone_corpus(out / "tones", 20, 4)
    s2s(
        "prep",
        "speech",
        "--train",
        f"{tones}/train.tsv",
        "--valid",
        f"{tones}/valid.tsv",
        "--out",
        f"{out}/tone-bin",
        "--chars",
        "--num-mels",
        "20",
    )
    data = SpeechData(out / "tone-bin", "train")
    extras = {"features": data.features.to_dict(), "cmvn": data.cmvn.to_dict()}
    ckpt = random_checkpoint(
        out / "ctc.pt",
        [*TINY_SPEECH, "model.task=ctc"],
        {"tgt": data.vocab().proto},
        extras,
    )
    s2s("export", "--checkpoint", str(ckpt), "--out", str(out / "ctc"))


def check(out: Path) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        sys.exit("torch is importable here: this check needs an environment without it")
    run = [sys.executable, "-m", "s2s_runtime"]
    got = subprocess.run(
        [
            *run,
            "translate",
            "--model",
            str(out / "text"),
            "--input",
            str(out / "test.de"),
        ],
        capture_output=True,
        text=True,
    )
    if got.returncode or got.stdout != (out / "want.txt").read_text():
        sys.exit(f"s2s-run translate differs from s2s translate:\n{got.stderr}")
    tsv = out / "tones" / "valid.tsv"
    got = subprocess.run(
        [*run, "transcribe", "--model", str(out / "ctc"), "--manifest", str(tsv)],
        capture_output=True,
        text=True,
    )
    lines = len(tsv.read_text().splitlines()) - 1
    if got.returncode or len(got.stdout.splitlines()) != lines:
        sys.exit(f"s2s-run transcribe failed:\n{got.stderr}")
    print(
        f"runtime without torch: {len(got.stdout.splitlines())} files transcribed, "
        "translations equal to s2s translate"
    )


if __name__ == "__main__":
    {"export": export, "check": check}[sys.argv[1]](Path(sys.argv[2]))
