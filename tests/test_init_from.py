"""`train.init_from`: a fresh run starts from another checkpoint's weights wherever
names and shapes match (s2s/train/init_from.py); other vocabularies or features are
errors; --resume ignores it. `s2s prep speech --vocab-from` makes new data in a
checkpoint's vocabulary for it (fine-tuning)."""

import re

import torch
from typer.testing import CliRunner

from conftest import TINY_CTC
from s2s.checkpoint import load_checkpoint, save_checkpoint
from s2s.cli import app
from s2s.config import load_config
from s2s.train.trainer import Trainer

runner = CliRunner()
JOINT = [*TINY_CTC, "model.task=joint", "model.hidden_size=32", "train.max_steps=2"]


def test_a_joint_model_starts_from_a_ctc_model(tone_bin, tone_run, tmp_path):
    source = load_checkpoint(tone_run / "best.pt")["model"]
    cfg = load_config(None, [*JOINT, f"train.init_from={tone_run / 'best.pt'}"])
    trainer = Trainer(cfg, tone_bin, tmp_path / "run")
    mine = trainer.model.state_dict()
    shared = [k for k in mine if not k.startswith("decoder.")]
    assert shared and set(shared) == set(source)  # subsampler, encoder, CTC head
    for k in shared:
        torch.testing.assert_close(mine[k], source[k], rtol=0, atol=0)
    # and the copies are the parameters the optimizer steps
    params = dict(trainer.model.named_parameters())
    assert params["head.proj.weight"].data_ptr() == mine["head.proj.weight"].data_ptr()
    trainer.run()
    log = (tmp_path / "run" / "train.log").read_text()
    assert f"initialised {len(shared)} of {len(mine)} weight tensors" in log
    assert "fresh: decoder.*" in log


def test_resume_ignores_it(tone_bin, tone_run, tmp_path):
    out = tmp_path / "run"
    Trainer(load_config(None, JOINT), tone_bin, out).run()
    before = load_checkpoint(out / "last.pt")["model"]
    missing = tmp_path / "gone.pt"
    cfg = load_config(None, [*JOINT, f"train.init_from={missing}"])
    trainer = Trainer(cfg, tone_bin, out, resume=True)  # no error for the missing file
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def _cli_error(tone_bin, tmp_path, source) -> str:
    sets = [*JOINT, f"train.init_from={source}"]
    args = ["train", "--data", str(tone_bin), "--out", str(tmp_path / "run")]
    r = runner.invoke(app, args + [a for kv in sets for a in ("--set", kv)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    return " ".join(r.output.split())


def test_another_vocabulary_is_an_error(tone_bin, tone_run, tmp_path):
    ckpt = load_checkpoint(tone_run / "best.pt")
    ckpt["vocab"] = {"tgt": ckpt["vocab"]["tgt"] + b"x"}
    save_checkpoint(tmp_path / "other.pt", ckpt)
    out = _cli_error(tone_bin, tmp_path, tmp_path / "other.pt")
    assert "was trained with a different vocabulary than" in out


def test_other_features_are_an_error(tone_bin, tone_run, tmp_path):
    ckpt = load_checkpoint(tone_run / "best.pt")
    ckpt["features"] = {**ckpt["features"], "num_mels": 40}
    save_checkpoint(tmp_path / "other.pt", ckpt)
    out = _cli_error(tone_bin, tmp_path, tmp_path / "other.pt")
    assert "different feature settings" in out


def test_nothing_that_fits_is_an_error(tone_bin, tone_run, tmp_path):
    ckpt = load_checkpoint(tone_run / "best.pt")
    ckpt["model"] = {f"x.{k}": v for k, v in ckpt["model"].items()}
    save_checkpoint(tmp_path / "other.pt", ckpt)
    out = _cli_error(tone_bin, tmp_path, tmp_path / "other.pt")
    assert "none of its weights fits this model" in out


def test_a_missing_checkpoint_is_an_error(tone_bin, tmp_path):
    out = _cli_error(tone_bin, tmp_path, tmp_path / "gone.pt")
    assert "gone.pt: no such checkpoint" in out


def test_the_message_groups_the_fresh_weights():
    from s2s.train.init_from import _groups

    assert _groups(["decoder.a", "decoder.b", "head.w"]) == "decoder.* (2), head.w"


def _subset(tone_raw, tmp_path, n):
    """The first n lines of the tone training manifest, with absolute paths."""
    rows = (tone_raw / "train.tsv").read_text().splitlines()
    out = [rows[0]]
    for row in rows[1 : n + 1]:
        uid, path, *rest = row.split("\t")
        out.append("\t".join([uid, str(tone_raw / path), *rest]))
    (tmp_path / "sub.tsv").write_text("\n".join(out) + "\n")
    return tmp_path / "sub.tsv"


def _prep(tone_raw, train, out, *more):
    args = ["prep", "speech", "--train", str(train), "--chars"]
    args += ["--valid", str(tone_raw / "valid.tsv"), "--out", str(out), *more]
    return runner.invoke(app, [str(a) for a in args])


def test_prep_vocab_from_makes_data_to_fine_tune_on(tone_raw, tone_run, tmp_path):
    """`s2s prep speech --vocab-from`: new data in the checkpoint's vocabulary, so
    train.init_from accepts it; a vocabulary of its own would be refused."""
    ckpt = tone_run / "best.pt"
    sub = _subset(tone_raw, tmp_path, 6)
    own = _prep(tone_raw, sub, tmp_path / "own", "--num-mels", "20")
    assert own.exit_code == 0, own.output
    # six sentences do not hold every symbol, or not as often: another vocabulary
    proto = load_checkpoint(ckpt)["vocab"]["tgt"]
    assert (tmp_path / "own" / "spm.model").read_bytes() != proto
    r = _prep(tone_raw, sub, tmp_path / "bin", "--num-mels", "20", "--vocab-from", ckpt)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "bin" / "spm.model").read_bytes() == proto
    assert f"from {ckpt}" in " ".join(r.output.split())
    cfg = load_config(None, [*TINY_CTC, "train.max_steps=2", f"train.init_from={ckpt}"])
    Trainer(cfg, tmp_path / "bin", tmp_path / "run").run()
    log = (tmp_path / "run" / "train.log").read_text()
    copied, total = re.search(
        r"initialised (\d+) of (\d+) weight tensors", log
    ).groups()
    assert copied == total and "fresh:" not in log
    refused = _cli_error(tmp_path / "own", tmp_path / "own", ckpt)
    assert "was trained with a different vocabulary than" in refused


def test_prep_vocab_from_other_features_is_an_error(tone_raw, tone_run, tmp_path):
    ckpt = tone_run / "best.pt"
    r = _prep(tone_raw, tone_raw / "train.tsv", tmp_path / "bin", "--vocab-from", ckpt)
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and "Traceback" not in out, out
    assert (
        f"--vocab-from {ckpt}: its features differ (num_mels 20 there, 80 here)" in out
    )
    assert not (tmp_path / "bin").exists()


def test_prep_vocab_from_a_checkpoint_without_one_is_an_error(
    tone_raw, tone_run, tmp_path
):
    ckpt = load_checkpoint(tone_run / "best.pt")
    del ckpt["vocab"]
    save_checkpoint(tmp_path / "novocab.pt", ckpt)
    r = _prep(
        tone_raw,
        tone_raw / "train.tsv",
        tmp_path / "bin",
        "--vocab-from",
        tmp_path / "novocab.pt",
    )
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and "Traceback" not in out, out
    assert "novocab.pt: the checkpoint holds no target vocabulary" in out
