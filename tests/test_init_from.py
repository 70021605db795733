"""`train.init_from`: a fresh run starts from another checkpoint's weights wherever
names and shapes match (s2s/train/init_from.py); other vocabularies or features are
errors; --resume ignores it."""

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
