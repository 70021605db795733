"""Learning curves of one or more runs from their metrics.jsonl (`s2s plot
curves`): training and validation loss, and the validation metric (BLEU, WER,
...), against steps and against training time, one colour per run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from s2s.errors import S2SError
from s2s.viz.figure import pyplot, save_png

__all__ = ["RunCurves", "read_run", "plot_curves", "CURVES_SIZE"]

CURVES_SIZE = (13.0, 8.0)  # inches: a 1300 x 800 PNG

# Validation metrics in order of preference, with the direction that is better.
_METRICS = {
    "valid_bleu": ("BLEU", "higher is better"),
    "valid_wer": ("WER %", "lower is better"),
    "valid_cer": ("CER %", "lower is better"),
    "valid_chrf": ("chrF", "higher is better"),
    "valid_ppl": ("perplexity", "lower is better"),
}


@dataclass
class Series:
    steps: list[float] = field(default_factory=list)
    seconds: list[float | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, step: float, seconds: float | None, value: float) -> None:
        self.steps.append(step)
        self.seconds.append(seconds)
        self.values.append(value)


@dataclass
class RunCurves:
    name: str
    series: dict[str, Series] = field(default_factory=dict)  # key -> points


def read_run(run: Path) -> RunCurves:
    """The curves of run directory `run` (or a metrics.jsonl file). Training time
    is the records' `elapsed` (earlier runs of a resumed job included); records
    written by an older s2s without it use wall-clock time since the first (a
    validation record without one, the time of the record before it)."""
    path = run / "metrics.jsonl" if run.is_dir() else run
    # runs/x -> x; results/x.metrics.jsonl -> x; runs/x/metrics.jsonl -> x
    name = run.name.removesuffix(".jsonl").removesuffix(".metrics")
    if not run.is_dir() and name == "metrics":
        name = run.parent.name
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise S2SError(f"{path}: cannot read metrics ({e.strerror or e})") from None
    curves = RunCurves(name)
    first_time = last_seconds = None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = float(record["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise S2SError(f"{path}:{n}: not a metrics record") from None
        if first_time is None and "time" in record:
            first_time = record["time"]
        seconds = record.get("elapsed")
        if seconds is None and "time" in record and first_time is not None:
            seconds = record["time"] - first_time
        if seconds is None:  # an old validation record: just after its window's
            seconds = last_seconds
        last_seconds = seconds
        for key in ("loss", "valid_loss", *_METRICS):
            value = record.get(key)
            if isinstance(value, (int, float)):
                curves.series.setdefault(key, Series()).add(step, seconds, value)
    if not curves.series:
        raise S2SError(f"{path}: no training or validation records yet")
    return curves


def _metric(runs: list[RunCurves], wanted: str = "") -> str | None:
    """The `valid_` key to draw: `wanted` (e.g. "cer"), or else the validation
    metric most runs have, in `_METRICS` order."""
    if wanted:
        key = f"valid_{wanted}"
        if key not in _METRICS:
            known = ", ".join(k.removeprefix("valid_") for k in _METRICS)
            raise S2SError(f"--metric {wanted}: not one of {known}")
        if not any(key in r.series for r in runs):
            raise S2SError(f"--metric {wanted}: no run has validation {wanted} records")
        return key
    counts = {k: sum(k in r.series for r in runs) for k in _METRICS}
    best = max(counts.values(), default=0)
    return next((k for k, c in counts.items() if c == best), None) if best else None


def plot_curves(runs: list[Path], out: Path, metric: str = "") -> None:
    """Write a PNG of the learning curves of `runs` to `out`: loss (top) and the
    validation metric (bottom), against steps (left) and training time (right).
    `metric` (bleu, wer, cer, chrf, ppl) picks it; "": the one most runs have, in
    `_METRICS` order."""
    curves = [read_run(Path(r)) for r in runs]
    names = [c.name for c in curves]
    if len(set(names)) < len(names):  # runs/a/x and runs/b/x: say which
        names = [str(Path(r)) for r in runs]
    metric = _metric(curves, metric)
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=CURVES_SIZE, layout="constrained")
    longest = max(
        (s for c in curves for v in c.series.values() for s in v.seconds if s),
        default=0.0,
    )
    unit, div = ("hours", 3600.0) if longest > 3 * 3600 else ("minutes", 60.0)
    if longest < 120:
        unit, div = "seconds", 1.0
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (run, name) in enumerate(zip(curves, names, strict=True)):
        colour = colours[k % len(colours)]
        for col, use_time in enumerate((False, True)):
            for key, ax, style in (
                ("loss", axes[0][col], dict(lw=1.0, alpha=0.45, label=f"{name} train")),
                (
                    "valid_loss",
                    axes[0][col],
                    dict(lw=2.0, marker="o", ms=3, label=f"{name} valid"),
                ),
                (metric, axes[1][col], dict(lw=2.0, marker="o", ms=3, label=name)),
            ):
                s = run.series.get(key) if key else None
                if s is None:
                    continue
                if use_time:
                    pts = [
                        (t / div, v)
                        for t, v in zip(s.seconds, s.values, strict=True)
                        if t is not None
                    ]
                else:
                    pts = list(zip(s.steps, s.values, strict=True))
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, color=colour, **style)
    label, better = _METRICS.get(metric, ("", "")) if metric else ("", "")
    for col, xlabel in enumerate(("step", f"training time ({unit})")):
        top, bottom = axes[0][col], axes[1][col]
        top.set_title(f"loss per token vs {xlabel.split(' (')[0]}")
        top.set_ylabel("loss (nats per token)")
        bottom.set_title(
            f"validation {label} ({better})" if metric else "no validation metric yet"
        )
        bottom.set_ylabel(f"valid {label}")
        for ax in (top, bottom):
            ax.set_xlabel(xlabel)
            ax.grid(True, alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.suptitle("learning curves: " + ", ".join(names), fontsize=13)
    save_png(fig, out)
