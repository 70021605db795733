"""benchmarks/peers/asr_run.py: its data subset, preparation stamps, scoring and
table (the SpeechBrain side needs its own venv and is checked by `--smoke`)."""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def asr_run():
    path = ROOT / "benchmarks" / "peers" / "asr_run.py"
    spec = importlib.util.spec_from_file_location("asr_run", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["asr_run"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["asr_run"]


def write_manifests(d: Path, n: int) -> None:
    d.mkdir(parents=True)
    (d / "audio").mkdir()
    for split in ("train", "valid", "test"):
        rows = ["id\tpath\tduration\ttext\traw_text"]
        rows += [
            f"{split}{i}\taudio/{split}{i}.ogg\t1.5\tslovo {i}\tX" for i in range(n)
        ]
        (d / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_smoke_subset_keeps_header_and_makes_paths_absolute(asr_run, tmp_path):
    data = tmp_path / "data"
    write_manifests(data, asr_run.SMOKE_UTTS + 5)
    args = argparse.Namespace(data=data, work=tmp_path / "work", smoke=True)
    sub = asr_run.manifests(args, dict(os.environ))
    lines = (sub / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id\tpath\tduration\ttext")
    assert len(lines) == asr_run.SMOKE_UTTS + 1
    first = lines[1].split("\t")
    assert first[0] == "train0" and first[1] == str(data / "audio" / "train0.ogg")
    ref = asr_run.test_refs(sub, tmp_path / "ref.txt").read_text(encoding="utf-8")
    assert ref.splitlines()[:2] == ["slovo 0", "slovo 1"]


def test_prepared_stamp_follows_the_manifests(asr_run, tmp_path):
    data, out = tmp_path / "data", tmp_path / "prep"
    write_manifests(data, 2)
    assert not asr_run.prepared(out, data)  # new: emptied and stamped
    (out / "meta.json").write_text("{}")
    assert asr_run.prepared(out, data)
    os.utime(data / "valid.tsv", (1, 1))  # a changed manifest: prepared anew
    assert not asr_run.prepared(out, data)
    assert not (out / "meta.json").exists()


def test_score_uses_s2s_score_wer(asr_run, tmp_path):
    ref = tmp_path / "ref.txt"
    ref.write_text("ahoj svete\ndobry den\n", encoding="utf-8")
    hyp = tmp_path / "hyp.tsv"
    hyp.write_text("a\tahoj svete\nb\tdobry\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cer, wer = asr_run.score(env, ref, hyp, tmp_path)
    assert wer == pytest.approx(25.0)  # 1 deletion in 4 words
    assert cer == pytest.approx(100 * 4 / 19, abs=0.005)  # " den" of 19 chars
    assert (tmp_path / "test.hyp.txt").read_text() == "ahoj svete\ndobry\n"


def test_report_marks_missing_numbers_and_smoke(asr_run, tmp_path):
    args = argparse.Namespace(
        minutes=1.0, threads=2, smoke=True, load_start=0.5, sb_size="cpu",
        sb_set="", s2s_set=[], data_used=tmp_path,
    )  # fmt: skip
    done = asr_run.Result("s2s", params=1_620_000, cer=35.5, wer=86.25, rtf=0.0151)
    failed = asr_run.Result("sb-joint", notes=["sb-joint FAILED: boom"])
    text = asr_run.report(args, [done, failed], [sys.executable, "asr_run.py"])
    assert "SMOKE TEST" in text
    row = next(line for line in text.splitlines() if line.startswith("| s2s,"))
    assert "| 1.62 |" in row and "| 35.50 | 86.25 | 0.015 |" in row
    joint = next(line for line in text.splitlines() if "joint CTC" in line)
    assert joint.count("n/a") == 9
    assert "- note: sb-joint FAILED: boom" in text
