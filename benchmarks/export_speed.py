"""Decoding speed of torch against the exported ONNX runtime, fp32 and int8.

    python benchmarks/export_speed.py --text CKPT --input FILE \
        [--speech CKPT --manifest TSV] [--threads 2] [--lines 500] [--repeats 3]

prints one table: sentences/s at beam 5 and greedy for a translation checkpoint,
the real-time factor (greedy and CTC prefix beam 8, or the joint model's searches
at those beams) for a speech checkpoint, each for torch
fp32, torch int8 (`--precision int8`: dynamic quantization), ONNX fp32 and ONNX
int8 (`s2s export --precision int8`), with the peak resident memory of the process
that decoded; then the size on disk of a torch-free install (`pip install
./runtime`: its packages and their requirements) against the full one, both
measured on the packages installed here.

Every cell runs in a fresh subprocess (peak memory is that process's alone; the
ONNX ones never import torch), `--repeats` times, in rounds over all the cells;
the table shows the median and the range. Any checkpoint works, the tiny test
models too; numbers mean something only on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DISTS = ["s2s-runtime", "numpy", "onnxruntime", "sentencepiece", "soundfile"]


def _one(args: argparse.Namespace) -> None:
    """One cell in this (fresh) process: prints {'seconds', 'items'} as JSON."""
    if args.engine == "onnx":
        sys.path.insert(0, str(ROOT / "runtime"))
        from s2s_runtime.model import ExportedModel

        model = ExportedModel(args.model, args.threads)
        cfg = {**model.decode, "beam": args.beam, "nbest": 1}
    else:
        import torch

        from s2s.device import pick_device

        torch.set_num_threads(args.threads)
        device = pick_device("cpu")
    t0 = time.perf_counter()
    if args.task == "text":
        lines = Path(args.data).read_text("utf-8").splitlines()[: args.lines]
        if args.engine == "onnx":
            from s2s_runtime.translate import Translator as T

            tr = T(model, cfg)
            tr.translate(lines[:8])  # warm-up, as for torch
            t0 = time.perf_counter()
            tr.translate(lines)
        else:
            from dataclasses import replace

            from s2s.checkpoint import load_model
            from s2s.decode.translate import Translator

            m, c, sv, tv = load_model(args.model)
            dcfg = replace(c.decode, beam=args.beam, nbest=1)
            tr = Translator(m, sv, tv, dcfg, device, args.precision)
            tr.translate(lines[:8])  # warm-up: loading and first calls are not decoding
            t0 = time.perf_counter()
            tr.translate(lines)
        items = len(lines)
    else:
        items = _speech(args, model if args.engine == "onnx" else None)
    seconds = getattr(args, "elapsed", None) or time.perf_counter() - t0
    peak_mb = _peak_mb()
    print(json.dumps({"seconds": seconds, "items": items, "peak_mb": peak_mb}))


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM (ru_maxrss would count the
    parent's pages from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _speech(args: argparse.Namespace, model) -> float:
    """Transcribe the manifest; returns its seconds of audio."""
    rows = Path(args.data).read_text("utf-8").splitlines()[1:][: args.lines]
    paths = [Path(args.data).parent / r.split("\t")[1] for r in rows]
    if model is not None:
        from s2s_runtime.audio import audio_seconds, load_audio
        from s2s_runtime.transcribe import Transcriber as T

        t = T(model, {**model.decode, "beam": args.beam})
        rate = t.features.sample_rate
    else:
        from dataclasses import replace

        import torch

        from s2s.checkpoint import load_speech_model
        from s2s.data.audio import audio_seconds, load_audio
        from s2s.decode.transcribe import Transcriber

        m, cfg, vocab, feats, cmvn = load_speech_model(args.model)
        dcfg = replace(cfg.decode, beam=args.beam)
        t = Transcriber(
            m, vocab, feats, cmvn, dcfg, torch.device("cpu"), args.precision
        )
        rate = feats.sample_rate
    waves = [load_audio(p, rate) for p in paths]
    t.transcribe(waves[:2])  # warm-up
    t0 = time.perf_counter()
    t.transcribe(waves)
    args.elapsed = time.perf_counter() - t0
    return sum(audio_seconds(p) for p in paths)


def _cell(
    task: str, engine: str, precision: str, model: str, data: str, beam: int, opts
) -> dict:
    cmd = [sys.executable, __file__, "_one", task, engine, precision, model, data]
    cmd += [str(beam), str(opts.threads), str(opts.lines)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _dist_size(name: str) -> int:
    try:
        files = metadata.distribution(name).files or []
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for f in files:
        p = Path(f.locate())
        if p.is_file():
            total += p.stat().st_size
    return total


def _closure(names: list[str]) -> set[str]:
    """The distributions `names` need, transitively (extras ignored)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = (
            re.split(r"[ ;<>=!~\[]", todo.pop(), maxsplit=1)[0]
            .lower()
            .replace("_", "-")
        )
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [r for r in reqs if "extra ==" not in r]
    return seen


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        keys = [
            "task",
            "engine",
            "precision",
            "model",
            "data",
            "beam",
            "threads",
            "lines",
        ]
        ns = argparse.Namespace(**dict(zip(keys, sys.argv[2:], strict=True)))
        ns.beam, ns.threads, ns.lines = int(ns.beam), int(ns.threads), int(ns.lines)
        _one(ns)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", help="Translation checkpoint")
    ap.add_argument("--input", help="Source sentences, one a line")
    ap.add_argument("--speech", help="Speech checkpoint (ctc or joint)")
    ap.add_argument("--manifest", help="Speech manifest (id path duration ...)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lines", type=int, default=500, help="Sentences / files used")
    ap.add_argument(
        "--repeats", type=int, default=3,
        help="Runs of every cell, in rounds over all cells; the median is shown",
    )  # fmt: skip
    opts = ap.parse_args()
    from s2s.export.export import export_checkpoint

    cells = []  # ((task, search, engine), the first six arguments of _cell)
    with tempfile.TemporaryDirectory() as tmp:
        for task, ckpt, data in (
            ("text", opts.text, opts.input),
            ("speech", opts.speech, opts.manifest),
        ):
            if not ckpt:
                continue
            exports = {}
            for prec in ("fp32", "int8"):
                exports[prec] = str(Path(tmp) / f"{task}-{prec}")
                export_checkpoint(ckpt, exports[prec], prec, log=lambda m: None)
            beams = (5, 1) if task == "text" else (8, 1)
            for engine in ("torch", "onnx"):
                for prec in ("fp32", "int8"):
                    model = ckpt if engine == "torch" else exports[prec]
                    for beam in beams:
                        if task == "text":
                            what = f"beam {beam}" if beam > 1 else "greedy"
                        else:
                            what = f"CTC prefix beam {beam}" if beam > 1 else "greedy"
                        label = (task, what, f"{engine} {prec}")
                        cells.append((label, (task, engine, prec, model, data, beam)))
        runs: list[list[dict]] = [[] for _ in cells]
        for _ in range(opts.repeats):  # rounds: slow drifts touch every cell alike
            for k, (_, cell) in enumerate(cells):
                runs[k].append(_cell(*cell, opts))
    print(
        f"| task | search | engine | speed (median of {opts.repeats}) | range "
        f"| peak RSS MB |  ({opts.threads} threads)"
    )
    print("|---|---|---|---|---|---|")
    for ((task, what, engine), _), rs in zip(cells, runs, strict=True):
        if task == "text":
            speeds = sorted(r["items"] / r["seconds"] for r in rs)
            show = lambda v: f"{v:.1f} sent/s"  # noqa: E731
        else:
            speeds = sorted(r["seconds"] / r["items"] for r in rs)
            show = lambda v: f"RTF {v:.4f}"  # noqa: E731
        mid = statistics.median(speeds)
        mb = max(r["peak_mb"] for r in rs)
        rng = f"{show(speeds[0])} - {show(speeds[-1])}"
        print(f"| {task} | {what} | {engine} | {show(mid)} | {rng} | {mb:.0f} |")
    runtime = _closure(RUNTIME_DISTS)
    full = runtime | _closure(["s2s"]) | _closure(["torch", "torchaudio"])
    mb = {
        k: sum(_dist_size(d) for d in v) / 1e6
        for k, v in (("rt", runtime), ("full", full))
    }
    print(
        f"\ninstall size: torch-free runtime {mb['rt']:.0f} MB ({len(runtime)} "
        f"distributions), full s2s {mb['full']:.0f} MB ({len(full)})"
    )


if __name__ == "__main__":
    main()
