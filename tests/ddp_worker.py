"""Run by tests/test_distributed.py under torchrun (2 CPU processes, gloo).

Four `s2s train` commands in one process group, to pay torchrun's start-up once:
  exact/     7 steps without dropout (compared with one process accumulating 2)
  straight/  8 steps
  resumed/   4 steps, then --resume to 8

usage: torchrun --nproc_per_node=2 ddp_worker.py DATA OUT [k=v ...]
"""

import sys
from pathlib import Path

from s2s.cli import app

data, out, sets = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
for name, extra, resume in (
    ("exact", ["model.dropout=0.0", "train.max_steps=7"], []),
    ("straight", ["train.max_steps=8"], []),
    ("resumed", ["train.max_steps=4"], []),
    ("resumed", ["train.max_steps=8"], ["--resume"]),
):
    args = ["train", "--data", data, "--out", str(out / name), *resume]
    args += [a for kv in [*sets, *extra] for a in ("--set", kv)]
    code = app(args, standalone_mode=False)  # an error: its exit status, printed
    if code:
        sys.exit(code)
