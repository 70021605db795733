"""What seeding the CUDA generator before every training step costs (s2s train does
it so that resuming is exact: cuDNN then re-draws its LSTM dropout state).

Times training steps (forward, backward, AdamW) of two model sizes on random batches
with and without `reseed_cuda` before each batch, taking turns, in fp32 and bf16.
Run from the repository root (`--device=cpu` only checks that it runs):

    python benchmarks/cuda_reseed.py
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402
import throughput as tp  # noqa: E402

from s2s.config import ModelConfig  # noqa: E402
from s2s.models.seq2seq import build_model  # noqa: E402
from s2s.train.distributed import reseed_cuda  # noqa: E402
from s2s.train.tbptt import forward_backward  # noqa: E402

SIZES = {  # throughput.py's flags
    "config.gpu.yaml, 41.27M": "--emb 512 --enc-hidden 512 --hidden 1024 "
    "--dec-layers 2 --batch-tokens 12000",
    "defaults, 9.75M": "--batch-tokens 4096",
}
REPEATS, WARMUP = 10, 2


def per_batch_seconds(model, opt, batches, amp, device) -> dict[bool, float]:
    """Median seconds per batch, plain (False) and seeded before each (True)."""
    step = 0

    def run(reseed: bool) -> None:
        nonlocal step
        for b in batches:
            step += 1
            if reseed and device.type == "cuda":
                reseed_cuda(1, 0, step)
            scale = 1 / int(b.T.sum())
            src, lens, tgt_in, tgt_out = b.src, b.src_lens, b.tgt_in, b.tgt_out
            forward_backward(model, src, lens, tgt_in, tgt_out, scale, autocast=amp)
            opt.step()
            opt.zero_grad(set_to_none=True)

    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(WARMUP + REPEATS):
        for reseed in (False, True):
            synthetic.sync(device)
            t0 = time.perf_counter()
            run(reseed)
            synthetic.sync(device)
            if r >= WARMUP:
                times[reseed].append((time.perf_counter() - t0) / len(batches))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    dev = torch.device("cpu" if "--device=cpu" in sys.argv else "cuda")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"command: `{' '.join(sys.orig_argv)}`  \ntorch {torch.__version__}, {name}")
    print(f"medians of {REPEATS} passes of 4 batches after {WARMUP}, per batch\n")
    print("| model | prec | plain | seeded every step | ratio |")
    print("|---|---|---:|---:|---:|")
    sizes = SIZES if dev.type == "cuda" else {"quick": "--quick --batch-tokens 400"}
    for label, flags in sizes.items():
        argv = ["--device", dev.type, "--no-input-feed", *flags.split()]
        sys.argv = ["cuda_reseed", *argv]
        args = tp.parse_args()
        torch.manual_seed(0)
        cfg = ModelConfig(
            emb_dim=args.emb_dim,
            enc_hidden_size=args.enc_hidden_size,
            hidden_size=args.hidden_size,
            dec_layers=args.dec_layers,
            input_feed=False,
        )
        model = build_model(cfg, args.vocab, args.vocab).to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batches = synthetic.train_batches(np.random.default_rng(0), args, dev)
        for prec in ("fp32", "bf16") if dev.type == "cuda" else ("fp32",):
            amp = contextlib.nullcontext()
            if prec == "bf16":
                amp = torch.autocast(dev.type, dtype=torch.bfloat16)
            t = per_batch_seconds(model, opt, batches, amp, dev)
            a, b = t[False] * 1e3, t[True] * 1e3
            print(f"| {label} | {prec} | {a:.2f} ms | {b:.2f} ms | {b / a:.3f} |")


if __name__ == "__main__":
    main()
