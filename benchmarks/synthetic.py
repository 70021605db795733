"""Shared by the benchmark scripts: timing that takes turns, peak memory, matmul
speed, and synthetic batches shaped like s2s's real ones, with their FLOPs (the
formula is in `throughput.py`'s docstring)."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from s2s.config import ModelConfig
from s2s.data.batching import make_batches
from s2s.data.vocab import BOS, EOS, PAD

__all__ = [
    "Batch",
    "draw_lengths",
    "forward_flops",
    "median_times",
    "mm_gflops",
    "peak_mib",
    "sync",
    "train_batches",
]


# -- timing ------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_times(fns: dict[str, Callable], args, device) -> dict[str, float]:
    """Median wall seconds of each function over `args.repeats` calls, after
    `args.warmup` calls. The functions take turns, so that load from elsewhere on
    a shared machine hits them all alike."""
    for fn in fns.values():
        for _ in range(args.warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_mib(device: torch.device, reset: bool = False) -> float:
    """GPU: peak allocated since the last reset; CPU: the process's peak RSS so far
    (it never goes down)."""
    if device.type != "cuda":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    if reset:
        torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def mm_gflops(m: int, k: int, n: int, dtype, args, device) -> float:
    """GFLOP/s of (m x k) @ (k x n), repeated to take ~0.1 s per timed pass."""
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    torch.mm(a, b)  # the first call may pay for library set-up
    sync(device)
    t0 = time.perf_counter()
    torch.mm(a, b)
    sync(device)
    iters = max(1, min(10000, int(0.1 / (time.perf_counter() - t0))))

    def run() -> None:
        for _ in range(iters):
            torch.mm(a, b)

    return 2 * m * k * n * iters / median_times({"": run}, args, device)[""] / 1e9


# -- synthetic batches and their FLOPs ---------------------------------------------


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) EOS-terminated, PAD-padded
    src_lens: torch.Tensor  # (B,) on the CPU, where s2s keeps them for packing
    tgt_in: torch.Tensor  # (B, T) BOS y
    tgt_out: torch.Tensor  # (B, T) y EOS
    S: np.ndarray  # (B,) source steps
    T: np.ndarray  # (B,) target steps (non-pad target tokens)


def draw_lengths(rng, args, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Source and target steps (with EOS): gamma-distributed, sd = mean / 2 (a long
    right tail, like real corpora), the target correlated with the source."""
    src = rng.gamma(4.0, args.src_len / 4.0, n)
    tgt = src * (args.tgt_len / args.src_len) * rng.lognormal(0.0, 0.15, n)
    S = np.clip(np.rint(src), 2, 4 * args.src_len).astype(np.int64)
    return S, np.clip(np.rint(tgt), 2, 4 * args.tgt_len).astype(np.int64)


def train_batches(rng, args, device) -> list[Batch]:
    """`args.batches` batches of random tokens, grouped by `make_batches` from a
    pool of sentences; taken at evenly spaced quantiles of their mean length."""
    lengths = draw_lengths(rng, args, 100_000)  # a corpus-sized pool: tight batches
    # make_batches counts targets without EOS (it adds the 1 itself).
    groups = make_batches(lengths[0], lengths[1] - 1, args.batch_tokens, args.seed)
    groups.sort(key=lambda g: lengths[0][g].mean())
    k = args.batches
    groups = [groups[int((i + 0.5) * len(groups) / k)] for i in range(k)]
    batches = []
    for S, T in ((lengths[0][g], lengths[1][g]) for g in groups):
        src = np.full((len(S), S.max()), PAD, dtype=np.int64)
        tgt_in = np.full((len(T), T.max()), PAD, dtype=np.int64)
        tgt_out = tgt_in.copy()
        for i, (s, t) in enumerate(zip(S, T, strict=True)):
            src[i, :s] = np.append(rng.integers(4, args.vocab, s - 1), EOS)
            y = rng.integers(4, args.vocab, t - 1)
            tgt_in[i, :t], tgt_out[i, :t] = np.append(BOS, y), np.append(y, EOS)
        t = [torch.from_numpy(x).to(device) for x in (src, tgt_in, tgt_out)]
        batches.append(Batch(t[0], torch.from_numpy(S), t[1], t[2], S, T))
    return batches


def forward_flops(cfg: ModelConfig, V: int, S: np.ndarray, T: np.ndarray) -> dict:
    """Forward FLOPs per part for sentences of S source / T target steps (the
    formula in the module docstring)."""
    He, H, emb = cfg.enc_hidden_size, cfg.hidden_size, cfg.emb_dim
    E = 2 * He
    ns, nt, pairs = float(S.sum()), float(T.sum()), float((S * T).sum())
    enc = ns * sum(16 * He * ((E if i else emb) + He) for i in range(cfg.enc_layers))
    dec_in = emb + H * cfg.input_feed
    dec = nt * sum(8 * H * ((H if i else dec_in) + H) for i in range(cfg.dec_layers))
    attn = 0 if cfg.attention == "dot" else ns * 2 * E * H
    attn += pairs * 2 * (H + E) + nt * 2 * (E + H) * H
    if cfg.attention == "mlp":
        attn += nt * 2 * H * H + pairs * H
    P = emb if cfg.tie_embeddings and emb != H else 0
    out = nt * (2 * H * P + 2 * (P or H) * V)
    bridge = len(S) * 2 * E * 2 * cfg.dec_layers * H
    return dict(encoder=enc, decoder=dec, attention=attn, output=out, bridge=bridge)
