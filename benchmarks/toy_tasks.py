"""Do the default settings learn synthetic tasks at several model sizes?

Copy, reverse or sort the words of 3-9-word sentences over a 20-word vocabulary
(tests/toy.py; 4,000 training pairs, 200 validation pairs, `--vocab-size 40`), train
each model size for a fixed number of steps and print the validation loss and
greedy BLEU per task and size as a table. Compare at equal steps, not time.

    python benchmarks/toy_tasks.py --work /tmp/toy --steps 300
    python benchmarks/toy_tasks.py --work /tmp/toy --old-init   # before issue 20
    python benchmarks/toy_tasks.py --work /tmp/toy --set model.param_init=0

`--old-init` puts back the initialisation before the fix of issue 20 (uniform
`model.param_init` on every parameter, whatever the layer's size), so one tree
measures both.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from s2s.config import load_config  # noqa: E402
from s2s.data.prep_text import PrepOptions, prep_text  # noqa: E402
from s2s.models import seq2seq  # noqa: E402
from s2s.train.trainer import Trainer  # noqa: E402
from toy import TASKS, write_task_corpus  # noqa: E402

SIZES = {  # emb_dim, enc_hidden_size, hidden_size; one layer each
    "small": (16, 16, 32),
    "medium": (64, 64, 128),
    "issue": (64, 256, 128),  # the default model scaled down in issue 20
    "default": (256, 256, 512),
}


def old_init(model: nn.Module, param_init: float) -> None:
    """The initialisation before issue 20: uniform param_init on everything."""
    if param_init == 0:
        return _new_init(model, param_init)
    for p in model.parameters():
        nn.init.uniform_(p, -param_init, param_init)
    for m in model.modules():
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()


_new_init = seq2seq._init


def data_dir(work: Path, task: str) -> Path:
    out = work / task / "bin"
    if not (out / "meta.json").exists():
        raw = write_task_corpus(work / task, task, 4000, 200)
        train, valid = str(raw / "train"), str(raw / "valid")
        opts = PrepOptions("src", "tgt", train, valid, vocab_size=40)
        prep_text(opts, out, log=lambda m: None)
    return out


def train(data: Path, out: Path, size: str, args: argparse.Namespace) -> dict:
    emb, enc, hidden = SIZES[size]
    sets = [
        f"model.emb_dim={emb}",
        f"model.enc_hidden_size={enc}",
        f"model.hidden_size={hidden}",
        "model.enc_layers=1",
        "model.dec_layers=1",
        f"train.batch_tokens={args.batch_tokens}",
        f"train.lr={args.lr}",
        f"train.warmup_steps={args.warmup}",
        f"train.max_steps={args.steps}",
        f"train.valid_every={args.steps}",
        f"train.save_every={args.steps}",
        f"train.seed={args.seed}",
        "train.valid_bleu_sents=200",
        f"train.threads={args.threads}",
        "train.device=cpu",
        *args.set,
    ]
    shutil.rmtree(out, ignore_errors=True)
    trainer = Trainer(
        load_config(None, sets), data, out, console=Console(file=io.StringIO())
    )
    trainer.run()
    return trainer.validate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="data and runs go here")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--sizes", default="small,medium,issue")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-tokens", type=int, default=500)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="section.key=value")
    ap.add_argument("--old-init", action="store_true", help="the init before #20")
    args = ap.parse_args()
    if args.old_init:
        seq2seq._init = old_init
    init = "old (uniform on all)" if args.old_init else "as committed"
    print(f"{args.steps} steps of {args.batch_tokens} tokens, init {init}, {args.set}")
    print("| task | size | valid loss | valid BLEU |\n|---|---|---|---|")
    for task in args.tasks.split(","):
        data = data_dir(args.work, task)
        for size in args.sizes.split(","):
            r = train(data, args.work / task / f"run-{size}", size, args)
            print(
                f"| {task} | {size} {SIZES[size]} | {r['valid_loss']:.3f} | "
                f"{r['valid_bleu']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
