"""Data-parallel training under a real torchrun: 2 CPU processes with gloo.

A step of 2 ranks must equal a step of one process accumulating 2 batches (for the
LM: one process with the same batches, each rank running half of every batch's
rows), and a 2-process run stopped and resumed must end where an uninterrupted one
does (the LM too, with the hidden state each rank carries).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY
from s2s.checkpoint import load_checkpoint
from s2s.config import load_config
from s2s.train.distributed import shard
from s2s.train.lm_task import LMTask
from s2s.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
# 400 tokens: 5 batches an epoch, so every third step one rank has no batch.
SETS = [
    *TINY,
    "train.batch_tokens=400",
    "train.device=cpu",
    "train.valid_every=3",
    "train.save_every=2",
    "train.log_every=1",
    "train.valid_bleu_sents=4",
]


@pytest.fixture(scope="module")
def ddp_runs(toy_bin, lm_bin, tmp_path_factory) -> Path:
    """The runs of tests/ddp_worker.py: one torchrun, four `s2s train`s."""
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node=2", str(ROOT / "tests" / "ddp_worker.py")]
    proc = subprocess.run(
        [*cmd, str(toy_bin), str(lm_bin), str(out), *SETS],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "x 2 processes" in proc.stderr
    return out


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_shard_takes_every_worldth_batch():
    group = [np.array([i]) for i in range(5)]
    parts = [shard(group, r, 2) for r in range(2)]
    assert [int(b[0]) for b in parts[0]] == [0, 2, 4]
    assert [int(b[0]) for b in parts[1]] == [1, 3]
    assert shard(group[:1], 1, 2) == []


def test_the_lm_shards_rows_and_every_rank_runs_every_segment(lm_bin):
    task = LMTask(load_config(None, [*SETS, "model.task=lm", "train.bptt=8"]), lm_bin)
    group = task.batches("train")[:2]
    R = task.rows["train"].shape[0]  # 50
    parts = [shard(group, r, 3, task.shard_batch) for r in range(3)]
    assert [[(int(b[0]), int(b[1])) for b in p] for p in parts] == [
        [(0, 8), (8, 16)]
    ] * 3
    for i in range(2):  # contiguous blocks of rows that cover them all once
        blocks = [(int(p[i][2]), int(p[i][3])) for p in parts]
        assert blocks == [(0, 16), (16, 33), (33, R)]
    whole = sum(task.units("train", ids) for ids in group)
    assert sum(task.units("train", ids) for p in parts for ids in p) == whole
    one_row = np.array([0, 8, 0, 1])  # fewer rows than ranks: one rank idles
    assert task.shard_batch(one_row, 0, 2) is None
    assert task.shard_batch(one_row, 1, 2).tolist() == [0, 8, 0, 1]


def test_two_processes_equal_one_accumulating_two(ddp_runs, toy_bin, tmp_path):
    sets = [*SETS, "model.dropout=0.0", "train.max_steps=7"]
    cfg = load_config(None, [*sets, "train.accum_steps=2"])
    Trainer(cfg, toy_bin, tmp_path / "one").run()

    ddp = load_checkpoint(ddp_runs / "exact" / "last.pt")
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    assert ddp["state"] == {**one["state"], "seconds": ddp["state"]["seconds"]}
    assert ddp["state"]["epoch"] == 2  # 3 steps an epoch: two ended half-filled
    assert not any(k.startswith("module.") for k in ddp["model"])
    assert len(ddp["rng_ranks"]) == 2
    for k, v in one["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-5, atol=1e-6)
    # Rank 0 alone logs; the losses are summed over both ranks.
    a, b = _records(ddp_runs / "exact"), _records(tmp_path / "one")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k in ("loss", "valid_loss"):
            if k in rb:
                assert abs(ra[k] - rb[k]) < 1e-3, (k, ra, rb)
    assert sorted(p.name for p in (ddp_runs / "exact").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


def test_distributed_resume_continues_exactly(ddp_runs):
    """With dropout: every rank's random state must resume too."""
    straight = load_checkpoint(ddp_runs / "straight" / "last.pt")
    resumed = load_checkpoint(ddp_runs / "resumed" / "last.pt")
    assert straight["state"]["step"] == resumed["state"]["step"] == 8
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    for a, b in zip(straight["rng_ranks"], resumed["rng_ranks"], strict=True):
        assert torch.equal(a["torch"], b["torch"])
    assert not torch.equal(
        straight["rng_ranks"][0]["torch"], straight["rng_ranks"][1]["torch"]
    )


def test_two_lm_processes_run_the_stream_of_one(ddp_runs, lm_bin, tmp_path):
    """The same (segment, row) grid as one process, and every rank's state is the
    one at the end of the segment just before, on its rows."""
    lm = ["model.task=lm", "train.bptt=8", "model.dropout=0.0"]
    cfg = load_config(None, [*SETS, *lm, "train.accum_steps=2", "train.max_steps=6"])
    Trainer(cfg, lm_bin, tmp_path / "one").run()

    ddp = load_checkpoint(ddp_runs / "lm-exact" / "last.pt")
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    # Sums split between ranks round differently: floats agree to tolerance only.
    floats = {"seconds": ddp["state"]["seconds"], "best": ddp["state"]["best"]}
    assert ddp["state"] == {**one["state"], **floats}
    assert ddp["state"]["best"] == pytest.approx(one["state"]["best"], rel=1e-5)
    assert ddp["state"]["epoch"] == 1  # 8 segments an epoch: one reset on the way
    for k, v in one["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-5, atol=1e-6)
    halves = ddp["task_state_ranks"]
    for i, whole in enumerate(one["task_state"]["hidden"]):  # (R, L, H)
        rows = torch.cat([h["hidden"][i] for h in halves])  # rank 0's rows first
        torch.testing.assert_close(rows, whole, rtol=1e-5, atol=1e-6)
    a, b = _records(ddp_runs / "lm-exact"), _records(tmp_path / "one")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k in ("loss", "valid_loss"):
            if k in rb:
                assert abs(ra[k] - rb[k]) < 1e-3, (k, ra, rb)


def test_distributed_lm_resumes_every_ranks_carried_state(ddp_runs):
    straight = load_checkpoint(ddp_runs / "lm-straight" / "last.pt")
    half = load_checkpoint(ddp_runs / "lm-resumed" / "step-3.pt")
    resumed = load_checkpoint(ddp_runs / "lm-resumed" / "last.pt")
    assert half["state"]["batch"] > 0  # stopped inside an epoch
    assert straight["state"]["step"] == resumed["state"]["step"] == 6
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    states = [s["hidden"][0] for s in straight["task_state_ranks"]]
    assert [len(s) for s in states] == [25, 25]  # each rank its half of the rows
    assert torch.equal(straight["task_state"]["hidden"][0], states[0])
    for a, b in zip(
        straight["task_state_ranks"], resumed["task_state_ranks"], strict=True
    ):
        for x, y in zip(a["hidden"], b["hidden"], strict=True):
            assert torch.equal(x, y)


def test_out_of_memory_on_one_rank_is_skipped_by_both(ddp_runs):
    last = load_checkpoint(ddp_runs / "oom" / "last.pt")
    assert last["state"]["step"] == 4 and last["state"]["oom_skipped"] == 1
    assert [r["oom_skipped"] for r in _records(ddp_runs / "oom") if "loss" in r] == [
        0,
        1,
        1,
        1,
    ]


def test_a_signal_to_one_rank_stops_both_after_the_same_step(ddp_runs):
    assert load_checkpoint(ddp_runs / "signal" / "last.pt")["state"]["step"] == 4
    valid = [r["step"] for r in _records(ddp_runs / "signal") if "valid_loss" in r]
    assert valid == [3]  # a signal stops without validating
