"""Checkpoint averaging (s2s/train/average.py): the last N step-N.pt files, or the N
with the best validation scores from metrics.jsonl."""

import json

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import load_checkpoint
from s2s.cli import app
from s2s.errors import S2SError
from s2s.train.average import best_checkpoints, validation_scores

runner = CliRunner()


def _fake_run(tmp_path, records, steps):
    run = tmp_path / "run"
    run.mkdir()
    lines = [json.dumps(r) for r in records]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 9, "val')
    for s in steps:
        (run / f"step-{s}.pt").write_bytes(b"")
    return run


def test_best_checkpoints_by_the_selected_metric(tmp_path):
    records = [
        {"step": 1, "loss": 3.0},  # a training record: no validation
        {"step": 2, "valid_loss": 2.0, "valid_cer": 40.0},
        {"step": 4, "valid_loss": 1.5, "valid_cer": 35.0},
        {"step": 6, "valid_loss": 1.7, "valid_cer": 30.0},
        {"step": 8, "valid_loss": 1.9, "valid_cer": 35.0},  # ties step 4: later wins
        {"step": 10, "valid_loss": 1.0, "valid_cer": 20.0},  # no checkpoint saved
        {"step": 12, "valid_loss": 2.5, "valid_cer": float("nan")},  # never chosen
    ]
    run = _fake_run(tmp_path, records, [2, 4, 6, 8, 12, 14])
    scores = {2: 40.0, 4: 35.0, 6: 30.0, 8: 35.0, 10: 20.0}
    assert validation_scores(run, "cer") == scores
    names = lambda ps: [p.name for p in ps]  # noqa: E731
    assert names(best_checkpoints(run, 2, "cer")) == ["step-6.pt", "step-8.pt"]
    assert names(best_checkpoints(run, 1, "loss")) == ["step-4.pt"]
    assert names(best_checkpoints(run, 9, "cer")) == [
        "step-2.pt",
        "step-4.pt",
        "step-6.pt",
        "step-8.pt",
    ]


def test_bleu_is_higher_is_better_and_the_loss_stands_in(tmp_path):
    records = [
        {"step": 2, "valid_loss": 2.0, "valid_bleu": 10.0},
        {"step": 4, "valid_loss": 1.0, "valid_bleu": 30.0},
        {"step": 6, "valid_loss": 1.5},  # no BLEU here: its loss, as training does
    ]
    run = _fake_run(tmp_path, records, [2, 4, 6])
    assert validation_scores(run, "bleu") == {2: -10.0, 4: -30.0, 6: 1.5}
    assert [p.name for p in best_checkpoints(run, 1, "bleu")] == ["step-4.pt"]


def test_no_validated_checkpoint_is_an_error(tmp_path):
    run = _fake_run(tmp_path, [{"step": 2, "valid_loss": 1.0}], [3, 5])
    with pytest.raises(S2SError, match="no step-N.pt checkpoint has a validation"):
        best_checkpoints(run, 2, "loss")


def test_average_best_means_the_chosen_checkpoints(toy_bin, tmp_path):
    out = tmp_path / "run"
    sets = [*TINY, "train.max_steps=6", "train.save_every=2", "train.valid_every=2"]
    sets += ["train.keep_last=10"]
    args = ["train", "--data", str(toy_bin), "--out", str(out)]
    r = runner.invoke(app, args + [a for kv in sets for a in ("--set", kv)])
    assert r.exit_code == 0, r.output
    scores = validation_scores(out, "loss")
    assert sorted(scores) == [2, 4, 6]
    chosen = sorted(scores, key=lambda s: scores[s])[:2]
    r = runner.invoke(
        app, ["average", str(out), "--out", str(tmp_path / "avg.pt"), "--best", "2"]
    )
    assert r.exit_code == 0, r.output
    avg = load_checkpoint(tmp_path / "avg.pt")
    assert avg["averaged"] == [f"step-{s}.pt" for s in sorted(chosen)]
    a, b = (load_checkpoint(out / f"step-{s}.pt")["model"] for s in chosen)
    for k, v in avg["model"].items():
        if v.is_floating_point():
            mean = (a[k].double() + b[k].double()) / 2
            torch.testing.assert_close(v, mean.to(v.dtype))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--best", "0"], "--best must be >= 1, got 0"),
        (["--best", "2", "--last", "2"], "give --last or --best, not both"),
    ],
)
def test_average_flags(tmp_path, flags, message):
    run = _fake_run(tmp_path, [{"step": 2, "valid_loss": 1.0}], [2])
    out = tmp_path / "avg.pt"
    r = runner.invoke(app, ["average", str(run), "--out", str(out), *flags])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert message in " ".join(r.output.split())
    assert not out.exists()
