"""Checkpoint integrity, the run-directory lock, SIGHUP, validation that survives
odd held-out data, and writes that fail for real (ENOSPC)."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from s2s.cli import app
from s2s.config import load_config
from s2s.errors import S2SError
from s2s.train.lock import lock_run_dir, unlock_run_dir
from s2s.train.trainer import Trainer

runner = CliRunner()


@pytest.fixture(scope="module")
def mt_run(toy_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("mt-run")
    Trainer(load_config(None, [*TINY, "train.max_steps=2"]), toy_bin, out).run()
    return out


def _translate(ckpt, tmp_path) -> object:
    src = tmp_path / "in.de"
    src.write_text("eins zwei\n")
    return runner.invoke(
        app, ["translate", "--checkpoint", str(ckpt), "--input", str(src)]
    )


# -- checkpoints ---------------------------------------------------------------------


def _flip_a_weight_bit(ckpt) -> str:
    """Flip one bit in the middle of the largest entry; returns its name."""
    with zipfile.ZipFile(ckpt) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest weight
    data = bytearray(ckpt.read_bytes())
    # Local header: 30 bytes + name + extra; flip a bit in the middle of the data.
    extra = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30])
    start = info.header_offset + 30 + len(info.filename.encode()) + extra
    data[start + info.file_size // 2] ^= 0x04
    ckpt.write_bytes(bytes(data))
    return info.filename


def test_one_flipped_bit_in_a_weight_is_found(mt_run, toy_bin, tmp_path):
    """torch.load does not check the archive's CRCs: a flipped bit used to load,
    translate to garbage with exit 0, and be resumed from."""
    run = tmp_path / "run"
    shutil.copytree(mt_run, run)
    for name in ("best.pt", "last.pt"):
        entry = _flip_a_weight_bit(run / name)
        with pytest.raises(S2SError, match=f"entry {entry} fails its CRC"):
            load_checkpoint(run / name)
    r = _translate(run / "best.pt", tmp_path)
    assert r.exit_code == 1 and "best.pt: damaged" in r.stderr, r.output
    cfg = load_config(None, [*TINY, "train.max_steps=4"])
    with pytest.raises(S2SError, match="last.pt: damaged"):
        Trainer(cfg, toy_bin, run, resume=True)


def test_non_finite_weights_are_refused_on_load_and_never_written(mt_run, tmp_path):
    ckpt = torch.load(mt_run / "best.pt", weights_only=True)
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = torch.full_like(ckpt["model"][name], float("nan"))
    bad = tmp_path / "nan.pt"
    torch.save(ckpt, bad)  # as a buggy or older writer would
    r = _translate(bad, tmp_path)
    assert r.exit_code == 1, r.output
    assert f"nan.pt: damaged: weight {name} holds NaN" in r.stderr
    with pytest.raises(S2SError, match=f"not writing .*weight {name}"):
        save_checkpoint(tmp_path / "again.pt", ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.de", "nan.pt"]


@pytest.mark.parametrize("key", ["config", "model", "vocab"])
def test_checkpoint_without_a_part_is_a_one_line_error(mt_run, tmp_path, key):
    ckpt = torch.load(mt_run / "best.pt", weights_only=True)
    del ckpt[key]
    path = tmp_path / "part.pt"
    torch.save(ckpt, path)
    r = _translate(path, tmp_path)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "part.pt: not an s2s checkpoint (no" in r.stderr


def test_torch_runtime_error_on_save_is_an_oserror(tmp_path, monkeypatch):
    def fails(obj, f):
        f.write(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")

    monkeypatch.setattr(torch, "save", fails)
    with pytest.raises(OSError, match="torch could not write"):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})
    assert list(tmp_path.iterdir()) == []


def _unshare_ok() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
    )
    return r.returncode == 0


@pytest.mark.skipif(
    not _unshare_ok(),
    reason="a real full file system needs `unshare -rm` to mount a small tmpfs",
)
def test_real_enospc_while_saving_averaging_preparing_translating(
    mt_run, toy_raw, tmp_path
):
    """A 256 kB tmpfs in a private mount namespace: torch's own writer fails; a
    read-only tmpfs beside it."""
    script = textwrap.dedent(
        f"""
        import errno, os
        import torch
        from s2s.data.prep_text import PrepOptions, prep_text
        from s2s.errors import S2SError
        from s2s.checkpoint import save_checkpoint
        opts = PrepOptions(src="de", tgt="en", train={str(toy_raw / "train")!r},
                           valid={str(toy_raw / "valid")!r}, vocab_size=60,
                           shard_size=20)
        open("/mnt/fill", "wb").write(b"x" * 200_000)
        try:
            prep_text(opts, "/mnt/bin", log=lambda m: None)
        except S2SError as e:
            print(e, os.listdir("/mnt"))
        os.unlink("/mnt/fill")
        try:
            save_checkpoint("/mnt/big.pt", {{"model": {{"w": torch.zeros(200_000)}}}})
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            print("ENOSPC", os.listdir("/mnt"))
        from typer.testing import CliRunner
        from s2s.cli import app
        for out in ("/mnt/avg.pt", "/srv/avg.pt"):
            r = CliRunner().invoke(app, ["average", {str(mt_run)!r}, "--out", out])
            print(r.exit_code, r.stderr.strip().splitlines()[-1],
                  os.listdir(os.path.dirname(out)))
        try:
            prep_text(opts, "/srv/bin", log=lambda m: None)
        except S2SError as e:
            print(e)
        from s2s.decode.run import translate_file
        open("/mnt/fill", "wb").write(b"x" * 240_000)
        src = {str(tmp_path / "in.de")!r}
        open(src, "w").write("eins zwei drei\\n" * 3000)
        try:
            translate_file({str(mt_run / "last.pt")!r}, src, "/mnt/o.en",
                           beam=1)
        except S2SError as e:
            print(e, os.listdir("/mnt"))
        """
    )
    r = subprocess.run(
        ["unshare", "-rm", "sh", "-c"]
        + [
            "mount -t tmpfs -o size=256k tmpfs /mnt && mount -t tmpfs -o ro tmpfs /srv"
            ' && "$@"'
        ]
        + ["sh", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    prep, first, second, ro_average, ro_prep, translate = lines
    assert prep == "/mnt/bin: cannot write (No space left on device) ['fill']"
    assert first == "ENOSPC []"  # and no temporary left
    assert second.startswith("1 error: /mnt/avg.pt: cannot write (No space left")
    assert second.endswith("[]")
    assert ro_average == (
        "1 error: /srv/avg.pt: cannot write (Read-only file system) []"
    )
    assert ro_prep == "/srv/bin: cannot create (Read-only file system)"
    assert translate == "/mnt/o.en: cannot write: No space left on device ['fill']"


def test_average_into_a_missing_directory(mt_run, tmp_path):
    r = runner.invoke(
        app, ["average", str(mt_run), "--out", str(tmp_path / "no" / "avg.pt")]
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "avg.pt: cannot write (No such file or directory)" in r.stderr


# -- training: the lock, SIGHUP, startup checks, validation --------------------------


def test_a_second_training_is_refused_and_leaves_the_live_run_alone(toy_bin, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from s2s.train.lock import lock_run_dir\n"
            f"lock_run_dir({str(out)!r}); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        live_tmp = out / ".last.pt.abc123.tmp"  # the live run's checkpoint in flight
        live_tmp.write_bytes(b"half")
        cfg = load_config(None, [*TINY, "train.max_steps=2"])
        with pytest.raises(
            S2SError, match=f"in use by another training .pid {holder.pid}"
        ):
            Trainer(cfg, toy_bin, out)
        assert live_tmp.read_bytes() == b"half"
        assert not (out / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    Trainer(cfg, toy_bin, out).run()  # the lock died with its holder
    assert not live_tmp.exists()  # and now the stale temporary is cleared


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    lock_run_dir(tmp_path)
    lock_run_dir(tmp_path)
    unlock_run_dir(tmp_path)
    unlock_run_dir(tmp_path)


def test_sighup_saves_like_sigterm(toy_bin, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "s2s", "train", "--data", str(toy_bin)]
    args += ["--out", str(out), "--set", "train.max_steps=100000"]
    args += [a for kv in TINY for a in ("--set", kv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (
        metrics.exists() and metrics.read_text().count("\n") >= 1
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "SIGHUP received" in err
    assert load_checkpoint(out / "last.pt")["state"]["step"] >= 2


def test_metrics_file_that_is_a_directory(toy_bin, tmp_path):
    out = tmp_path / "run"
    (out / "metrics.jsonl").mkdir(parents=True)
    cfg = load_config(None, [*TINY, "train.max_steps=1"])
    # A fresh start refuses the run directory as another run's; --resume (a run
    # killed before its first checkpoint starts over) cannot append to it.
    with pytest.raises(S2SError, match="metrics.jsonl exists"):
        Trainer(cfg, toy_bin, out).run()
    with pytest.raises(S2SError, match="metrics.jsonl"):
        Trainer(cfg, toy_bin, out, resume=True).run()


def test_missing_valid_raw_is_found_at_startup(toy_bin, tmp_path):
    data = tmp_path / "bin"
    shutil.copytree(toy_bin, data)
    (data / "valid.raw.de").unlink()
    cfg = load_config(None, [*TINY, "train.max_steps=1"])
    with pytest.raises(S2SError, match="valid.raw.de: missing"):
        Trainer(cfg, data, tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_overlong_validation_line_does_not_stop_training(toy_bin, tmp_path, capfd):
    """Prep keeps held-out lines whole; one over decode.max_input_tokens used to
    kill training at its first validation, before that step's save."""
    cfg = load_config(None, [*TINY, "train.max_steps=2", "decode.max_input_tokens=4"])
    state = Trainer(cfg, toy_bin, tmp_path / "run").run()
    assert state.step == 2
    assert load_checkpoint(tmp_path / "run" / "last.pt")["state"]["step"] == 2
    err = capfd.readouterr().err
    assert "valid.raw.de:" in err and "over decode.max_input_tokens=4" in err


def test_translate_cuts_an_overlong_line_and_keeps_the_rest(mt_run, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("eins\n" + "eins zwei " * 40 + "\nzwei\n")
    out = tmp_path / "out.en"
    args = ["translate", "--checkpoint", str(mt_run / "last.pt"), "--input", str(src)]
    args += ["--output", str(out), "--beam", "1"]
    r = runner.invoke(app, [*args, "--max-input-tokens", "20"])
    assert r.exit_code == 0, r.output
    assert out.read_text().count("\n") == 3
    assert "in.de:2: input is 81 tokens long, over decode.max_input_tokens=20" in (
        r.stderr
    )
    assert "1 lines cut" in r.stderr
    r = runner.invoke(app, [*args, "--max-input-tokens", "100"])
    assert r.exit_code == 0 and "warning" not in r.stderr, r.output


def test_format_version_is_kept(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"config": {}, "model": {"w": torch.ones(2)}})
    assert load_checkpoint(tmp_path / "c.pt")["format_version"] == FORMAT_VERSION
