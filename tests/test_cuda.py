"""The CUDA paths: training under each precision, exact resume and bit-for-bit
repeats with train.deterministic, decoding on the GPU against the CPU, and a clear
error from torchrun with more processes than GPUs. Skipped where no CUDA device is
available (CI); the CPU suite covers the same code with train.device=cpu."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, TINY_CTC
from s2s.checkpoint import load_checkpoint, load_model
from s2s.config import load_config
from s2s.decode.search import beam_search, greedy_search
from s2s.train.distributed import reseed_cuda
from s2s.train.trainer import Trainer

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)
ROOT = Path(__file__).resolve().parents[1]
CUDA = ["train.device=cuda", "train.log_every=1"]


@pytest.fixture
def deterministic():
    """train.deterministic switches torch's global flags: restore them after."""
    before = torch.are_deterministic_algorithms_enabled()
    cudnn = torch.backends.cudnn.deterministic
    yield ["train.deterministic=true"]
    torch.use_deterministic_algorithms(before)
    torch.backends.cudnn.deterministic = cudnn


def _train(data, out, steps, extra=(), resume=False, tiny=TINY):
    cfg = load_config(None, [*tiny, *CUDA, f"train.max_steps={steps}", *extra])
    Trainer(cfg, data, out, resume=resume).run()
    return load_checkpoint(out / "last.pt")


def _losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "tok_per_s" in r]


def test_reseeding_takes_any_seed():
    reseed_cuda(10**12, 7, 10**9)  # beyond 64 bits before the modulo
    assert 0 <= torch.cuda.initial_seed() < 2**63
    reseed_cuda(1, 0, 5)
    a = torch.rand(4, device="cuda")
    reseed_cuda(1, 0, 5)
    assert torch.equal(a, torch.rand(4, device="cuda"))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_learns_under_each_precision(toy_bin, tmp_path, precision):
    run = tmp_path / precision
    ckpt = _train(toy_bin, run, 60, [f"train.precision={precision}"])
    losses = _losses(run)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
    # Checkpoints hold CPU tensors in fp32: they load on a machine without a GPU.
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values())


def test_resume_on_cuda_continues_exactly(toy_bin, tmp_path, deterministic):
    # Dropout draws from the CUDA generator: its state must travel in the checkpoint.
    sets = [*deterministic, "train.batch_tokens=800", "train.save_every=3"]
    straight = _train(toy_bin, tmp_path / "a", 9, sets)
    _train(toy_bin, tmp_path / "b", 5, sets)
    resumed = _train(toy_bin, tmp_path / "b", 9, sets, resume=True)
    assert straight["state"]["step"] == resumed["state"]["step"] == 9
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_deterministic_training_repeats_bit_for_bit(toy_bin, tmp_path, deterministic):
    sets = [*deterministic, "train.precision=bf16"]
    a = _train(toy_bin, tmp_path / "a", 12, sets)
    b = _train(toy_bin, tmp_path / "b", 12, sets)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_ctc_training_on_cuda(tone_bin, tmp_path):
    run = tmp_path / "ctc"
    ckpt = _train(tone_bin, run, 30, ["train.precision=bf16"], tiny=TINY_CTC)
    losses = _losses(run)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert ckpt["state"]["step"] == 30


def test_gpu_search_matches_cpu_search(toy_bin, tmp_path):
    _train(toy_bin, tmp_path / "r", 40)
    cpu_model, *_ = load_model(tmp_path / "r" / "last.pt", "cpu")
    gpu_model, *_ = load_model(tmp_path / "r" / "last.pt", "cuda")
    torch.manual_seed(0)
    lens = torch.randint(3, 9, (6,))
    src = torch.randint(4, 40, (6, int(lens.max())))
    src[torch.arange(src.size(1)) >= lens[:, None]] = 0
    src[torch.arange(6), lens - 1] = 2  # EOS
    max_len = lens * 2
    with torch.no_grad():
        for search in (
            lambda m, d: greedy_search(m, src.to(d), lens.to(d), max_len.to(d)),
            lambda m, d: beam_search(m, src.to(d), lens.to(d), max_len.to(d), beam=4),
        ):
            on_cpu, on_gpu = search(cpu_model, "cpu"), search(gpu_model, "cuda")
            for c, g in zip(on_cpu, on_gpu, strict=True):
                c, g = (c[0], g[0]) if isinstance(c, list) else (c, g)
                assert c[0] == g[0]
                assert c[1] == pytest.approx(g[1], abs=1e-3)


def test_translate_command_on_cuda_matches_cpu(toy_bin, toy_raw, tmp_path):
    _train(toy_bin, tmp_path / "r", 40)
    out = {}
    for device in ("cpu", "cuda"):
        cmd = [sys.executable, "-m", "s2s", "translate"]
        cmd += ["--checkpoint", str(tmp_path / "r" / "last.pt"), "--device", device]
        cmd += ["--input", str(toy_raw / "test.de"), "--beam", "3"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[device] = proc.stdout.splitlines()
    assert len(out["cuda"]) == 20
    assert out["cuda"] == out["cpu"]


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="needs exactly one GPU")
def test_torchrun_with_more_processes_than_gpus_says_so(toy_bin, tmp_path):
    # NCCL itself needs one GPU per process: with one GPU, the second rank must stop
    # with a clear message, not a CUDA or NCCL traceback.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node=2", "-m", "s2s", "train", "--data", str(toy_bin)]
    cmd += ["--out", str(tmp_path / "ddp")]
    for s in [*TINY, *CUDA, "train.max_steps=2"]:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "LOCAL_RANK=1 but this node has 1 CUDA devices" in proc.stderr
    assert "Traceback" not in proc.stderr.split("LOCAL_RANK=1")[0][-2000:]


def test_the_tapped_encoder_on_cuda_matches_cpu():
    """Intermediate CTC runs the fused layer-by-layer LSTM on the GPU too."""
    from s2s.models.encoder import RNNEncoder

    torch.manual_seed(0)
    enc = RNNEncoder(10, 7, num_layers=2).eval()
    x, lengths = torch.randn(3, 9, 10), torch.tensor([9, 4, 6])
    with torch.no_grad():
        cpu = enc.forward_tapped(x, lengths, 1)
        gpu = enc.cuda().forward_tapped(x.cuda(), lengths, 1)
    for a, b in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(a, b.cpu(), atol=1e-5, rtol=1e-5)


def test_intermediate_ctc_training_on_cuda(tone_bin, tmp_path):
    sets = ["model.enc_layers=2", "model.inter_ctc_weight=0.3"]
    _train(tone_bin, tmp_path / "ctc", 20, sets, tiny=TINY_CTC)
    assert all(torch.isfinite(torch.tensor(_losses(tmp_path / "ctc"))))
