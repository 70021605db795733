"""Data-parallel training across processes started by torchrun.

`torchrun --nproc_per_node=N -m s2s train ...` starts N copies of `s2s train`, each
with RANK, WORLD_SIZE and LOCAL_RANK in its environment. `Distributed.from_env`
reads them, joins the process group (NCCL on CUDA, gloo on the CPU) and picks the
device cuda:LOCAL_RANK. Without those variables (or with WORLD_SIZE=1) every
method here is a no-op and the trainer runs as a single process.

How work is split. Every rank computes the same deterministic batch list of an
epoch. One optimizer step takes the next `accum_steps * world` batches of that
list and rank r runs `group[r::world]` of them, so the global batch of a step
with N ranks is the global batch of one process with `accum_steps * N`. Every
rank takes the same number of steps per epoch; at the epoch's end a rank may get
no batch and then adds a zero gradient. The loss of each batch is scaled by
1 / (target tokens of the whole global batch), which every rank knows from the
batch list, so after the gradients are summed over ranks a step equals the
single-process one.

A task whose batches must run in order on one rank (the LM, which carries its
hidden state from one segment of its rows to the next) has a `shard_batch`
method instead: a step then takes `accum_steps` batches, every rank runs all of
them, each on its own part of the batch (the LM: a block of rows), and a step
with N ranks equals a step of one process with the same `accum_steps`.

Why not the `torch.nn.parallel.DistributedDataParallel` wrapper: the tasks call
model methods other than `forward` (`model.loss`, `model.encode`), truncated BPTT
runs several backward passes per batch, the last step of an epoch can leave a
rank without a batch, and a step skipped for running out of memory must be
skipped on every rank. Summing the gradients once per step, after all local
backward passes, handles all of these; the price is that the reduction does not
overlap the backward pass.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from s2s.device import pick_device
from s2s.errors import S2SError

__all__ = ["Distributed", "reseed_cuda", "seed_rank", "shard"]

T = TypeVar("T")

# Validation runs on rank 0 while the others wait in a collective: allow for it.
_TIMEOUT = timedelta(minutes=60)
_BUCKET_BYTES = 32 * 2**20  # gradients are summed in flat buckets of this size


def shard(
    group: list[np.ndarray],
    rank: int,
    world: int,
    split: Callable[[np.ndarray, int, int], np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """The batches of one optimizer step's `group` that `rank` runs: every
    world-th one, or with `split` (a task's `shard_batch`) its part of each."""
    if split is None:
        return group[rank::world]
    parts = [split(ids, rank, world) for ids in group]
    return [p for p in parts if p is not None]


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_name: str) -> tuple[Distributed, torch.device]:
        """Join torchrun's process group if the environment names one; returns
        this process's place and device (`train.device`)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(), pick_device(device_name)
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = _rank_device(device_name, local_rank)
        if not dist.is_initialized():  # the group lives as long as the process
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(
                backend,
                timeout=_TIMEOUT,
                device_id=device if device.type == "cuda" else None,
            )
            atexit.register(shutdown)
        return cls(rank, world, local_rank), device

    # -- collectives: all ranks must call them at the same point ----------------

    def max(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise maximum over ranks (flags: 1 on any rank -> 1 on all)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def main_only(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 alone (write a file, validate); its result, or the
        S2SError it raised, reaches every rank, so none waits for a dead one."""
        if not self.enabled:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except S2SError as e:
                error = str(e)
        result, error = self.broadcast((result, error))
        if error is not None:
            raise S2SError(error)
        return result

    def sum_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum `.grad` over ranks in place. A parameter without a gradient on some
        ranks counts as zeros there; one without a gradient on every rank keeps
        none, as in one process (AdamW then leaves it alone)."""
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        has = self.max([p.grad is not None for p in params], params[0].device)
        params = [p for p, h in zip(params, has, strict=True) if h]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        bucket: list[torch.Tensor] = []
        size = 0
        for p in params:
            bucket.append(p.grad)
            size += p.grad.numel() * p.grad.element_size()
            if size >= _BUCKET_BYTES:
                _all_reduce_flat(bucket)
                bucket, size = [], 0
        if bucket:
            _all_reduce_flat(bucket)

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Start every rank from rank 0's weights."""
        if not self.enabled:
            return
        for t in model.state_dict().values():
            dist.broadcast(t, src=0)


_EXIT_BARRIER = timedelta(seconds=60)


def shutdown() -> None:
    """Leave the process group, if this process joined one (at exit).

    With gloo the ranks first meet at a barrier: a rank that tore its connections
    down while another still had a message in flight to it aborted at exit now and
    then ("terminate called without an active exception", exit status -6, after a
    finished run). The barrier is bounded: a rank whose peers died or failed alone
    waits at most _EXIT_BARRIER before it leaves anyway.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_backend() == "gloo":
        # A peer that is gone has nothing in flight to wait for.
        with contextlib.suppress(RuntimeError):
            dist.monitored_barrier(timeout=_EXIT_BARRIER)
    dist.destroy_process_group()


def seed_rank(seed: int, rank: int) -> None:
    """Distinct dropout randomness per rank (the weights are broadcast)."""
    torch.manual_seed(seed + 1_000_003 * (rank + 1))
    random.seed(seed + 1_000_003 * (rank + 1))


def reseed_cuda(seed: int, rank: int, step: int) -> None:
    """Seed the CUDA generator from (seed, rank, step) before each step.

    cuDNN keeps the dropout state of a multi-layer nn.LSTM (between its layers) to
    itself: no checkpoint can save it, and torch re-draws it from the CUDA generator
    only when that generator is seeded. Seeding every step makes all dropout masks
    on the GPU a function of the step, so a resumed run draws the masks an
    uninterrupted one draws."""
    torch.cuda.manual_seed(((seed * 1_000_003 + rank) * 1_000_003 + step) % 2**63)


def _all_reduce_flat(grads: list[torch.Tensor]) -> None:
    flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of numel,)
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _rank_device(name: str, local_rank: int) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if name not in ("auto", "cuda"):
        raise S2SError(
            f"train.device={name} under torchrun: each process uses "
            f"cuda:LOCAL_RANK; set train.device to auto, cuda or cpu"
        )
    if not torch.cuda.is_available():
        if name == "cuda":
            raise S2SError("train.device=cuda but no CUDA device is available")
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise S2SError(
            f"LOCAL_RANK={local_rank} but this node has "
            f"{torch.cuda.device_count()} CUDA devices: lower --nproc_per_node"
        )
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device
