"""What the side-by-side scripts share: paths, the matched settings of the three
toolkits, and measuring a training or decoding process (wall time, peak memory)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = HERE / "venvs"
TOOLKITS = ("s2s", "s2s-fast", "onmt", "joey")
NAMES = {
    "s2s": "s2s",
    "s2s-fast": "s2s, its defaults (no input feeding, tied)",
    "onmt": "OpenNMT-py 3.5.1",
    "joey": "JoeyNMT 2.3.0",
}

# One architecture for all three (README.md, "Matched settings").
EMB, ENC_HIDDEN, DEC_HIDDEN, ENC_LAYERS, DEC_LAYERS = 256, 256, 512, 2, 1
DROPOUT, LABEL_SMOOTHING = 0.3, 0.1
PARAM_INIT = 0.1  # uniform(-0.1, 0.1): OpenNMT-py and s2s defaults (JoeyNMT: its own)
# Training schedule: the defaults of --batch-tokens, --lr and --warmup, which set these
# (main). 30 minutes on 2 cores is about 1,200 updates of 2,000 tokens: a schedule
# that learns in that many (4,096 tokens, lr 1e-3 after 500 warm-up steps gave
# ~800 updates and test BLEU 1.9).
BATCH_TOKENS, LR, WARMUP, CLIP, BETA2 = 2000, 3e-3, 150, 1.0, 0.98
BEAM, LENPEN, DECODE_BATCH_TOKENS = 5, 0.6, 6000
MAX_LEN, MAX_RATIO = 250, 3.0  # s2s prep's training filter, applied to the peers too


# --------------------------------------------------------------------------- utils


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0


def _session_pids(sid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # fields after the ")" of comm: state ppid pgrp session ...
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 3 and int(rest[3]) == sid:
            pids.append(int(d))
    return pids


@dataclass
class Proc:
    """Result of one measured command."""

    rc: int
    seconds: float
    peak_rss_mib: float
    log: Path
    killed_at_budget: bool = False


def run_measured(
    cmd: list[str],
    log_path: Path,
    env: dict[str, str],
    *,
    budget_s: float | None = None,
    stop_signal: int = signal.SIGTERM,
    grace_s: float = 180.0,
    stdin: Path | None = None,
    stdout: Path | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Run cmd in its own session; poll the summed RSS of every process in that
    session twice a second; at budget_s send stop_signal (SIGINT to the main
    process, anything else to the whole session), SIGKILL after grace_s."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as logf:
        logf.write("$ " + shlex.join(cmd) + "\n")
        logf.flush()
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
        fout = open(stdout, "wb") if stdout else logf  # noqa: SIM115
        t0 = time.time()
        p = subprocess.Popen(
            cmd,
            stdin=fin,
            stdout=fout,
            stderr=logf,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                total = sum(_rss_kib(pid) for pid in _session_pids(p.pid))
                peak[0] = max(peak[0], total)
                done.wait(0.5)

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        killed = False
        try:
            if budget_s is None:
                p.wait()
            else:
                try:
                    p.wait(timeout=max(budget_s - (time.time() - t0), 0))
                except subprocess.TimeoutExpired:
                    killed = True
                    log(f"budget reached: sending {signal.Signals(stop_signal).name}")
                    if stop_signal == signal.SIGINT:
                        os.kill(p.pid, signal.SIGINT)
                    else:
                        os.killpg(p.pid, stop_signal)
                    try:
                        p.wait(timeout=grace_s)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            done.set()
            th.join()
            # leftover children (e.g. data-loader workers) of the session
            for pid in _session_pids(p.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if stdin:
                fin.close()
            if stdout:
                fout.close()
        dt = time.time() - t0
    return Proc(p.returncode, dt, peak[0] / 1024, log_path, killed)


def check(proc: Proc, what: str, ok_when_killed: bool = False) -> None:
    if proc.rc == 0 or (ok_when_killed and proc.killed_at_budget):
        return
    tail = proc.log.read_text(errors="replace").splitlines()[-25:]
    raise SystemExit(
        f"{what} failed (exit {proc.rc}); last lines of {proc.log}:\n" + "\n".join(tail)
    )


def median_rate(rates: list[float]) -> float | None:
    """Median of per-window rates, the first window (start-up) left out."""
    if not rates:
        return None
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def write_yaml(path: Path, data: dict) -> None:
    import yaml  # PyYAML, in s2s's venv: it writes 1e-05 as 1.0e-05, which the
    # peers' YAML 1.1 loaders read as a float (JSON's 1e-05 they read as a string)

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def s2s_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("s2s")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "s2s"]


def detokenize(spm_model: Path, pieces_file: Path, out: Path) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    lines = pieces_file.read_text(encoding="utf-8").split("\n")[:-1]
    out.write_text(
        "".join(sp.decode(line.split()) + "\n" for line in lines), encoding="utf-8"
    )
