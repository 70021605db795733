"""Run by tests/test_distributed.py under torchrun (2 CPU processes, gloo).

Several `s2s train` commands in one process group, to pay torchrun's start-up once:
  exact/     7 steps without dropout (compared with one process accumulating 2)
  straight/  8 steps
  resumed/   4 steps, then --resume to 8
  oom/       rank 1 alone runs out of memory in its second batch (step 2): both
             ranks skip the step
  signal/    rank 1 alone gets SIGTERM in its third batch (step 4; it has none
             in step 3): both ranks stop after that step
  lm-exact/     the LM (model.task=lm, on LM_DATA) without dropout, 2 segments a
                step (compared with one process): each rank runs half the rows
  lm-straight/  the LM: 6 steps
  lm-resumed/   3 steps, then --resume to 6: each rank carries its rows' state

usage: torchrun --nproc_per_node=2 ddp_worker.py DATA LM_DATA OUT [k=v ...]
"""

import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

from s2s.cli import app
from s2s.train.translation_task import TranslationTask


@contextmanager
def on_rank_1(call: int, action):
    """Run `action` instead of rank 1's `call`-th forward/backward."""
    clean, calls = TranslationTask.forward_backward, []

    def forward_backward(self, *args, **kwargs):
        calls.append(1)
        if os.environ["RANK"] == "1" and len(calls) == call:
            return action(lambda: clean(self, *args, **kwargs))
        return clean(self, *args, **kwargs)

    TranslationTask.forward_backward = forward_backward
    try:
        yield
    finally:
        TranslationTask.forward_backward = clean


def oom(run):
    raise torch.OutOfMemoryError("CUDA out of memory (test)")


def sigterm(run):
    os.kill(os.getpid(), signal.SIGTERM)
    return run()


data, lm_data, out, sets = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
LM = ["model.task=lm", "train.bptt=8"]
LM_EXACT = ["model.dropout=0.0", "train.accum_steps=2", "train.max_steps=6"]
for name, extra, resume, fault in (
    ("exact", ["model.dropout=0.0", "train.max_steps=7"], [], (0, None)),
    ("straight", ["train.max_steps=8"], [], (0, None)),
    ("resumed", ["train.max_steps=4"], [], (0, None)),
    ("resumed", ["train.max_steps=8"], ["--resume"], (0, None)),
    ("oom", ["train.max_steps=4"], [], (2, oom)),
    ("signal", ["train.max_steps=8"], [], (3, sigterm)),
    ("lm-exact", [*LM, *LM_EXACT], [], (0, None)),
    ("lm-straight", [*LM, "train.max_steps=6"], [], (0, None)),
    ("lm-resumed", [*LM, "train.max_steps=3"], [], (0, None)),
    ("lm-resumed", [*LM, "train.max_steps=6"], ["--resume"], (0, None)),
):
    source = lm_data if name.startswith("lm") else data
    args = ["train", "--data", source, "--out", str(out / name), *resume]
    args += [a for kv in [*sets, *extra] for a in ("--set", kv)]
    with on_rank_1(*fault):
        code = app(args, standalone_mode=False)  # an error: printed, and its status
    if code:
        sys.exit(code)
