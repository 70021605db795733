"""Pictures of what a model attends to (`s2s plot attention`): a translation's
attention matrix with source and target pieces on the axes, and for speech the
log-mel spectrogram with the CTC posteriors (and a joint model's decoder
attention) on the same time axis under it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s2s.decode.alignment import SpeechAlignment, TranslationAlignment
from s2s.viz.figure import pyplot, save_png

__all__ = ["plot_translation", "plot_speech", "translation_size", "speech_size"]

_INCH_PER_PIECE = 0.32


def translation_size(n_src: int, n_tgt: int) -> tuple[float, float]:
    """Figure inches (width, height) for n_src x n_tgt pieces: room for every
    label, between 6 and 24 inches a side."""
    width = min(24.0, max(6.0, 2.5 + _INCH_PER_PIECE * n_src))
    height = min(24.0, max(6.0, 2.5 + _INCH_PER_PIECE * n_tgt))
    return width, height


def speech_size(joint: bool) -> tuple[float, float]:
    """Figure inches: spectrogram, posteriors and (joint) attention panels."""
    return (14.0, 11.0) if joint else (14.0, 7.0)


def _title(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plot_translation(a: TranslationAlignment, source: str, out: Path) -> None:
    """Attention weights (rows: output pieces, columns: source pieces) as a PNG."""
    plt = pyplot()
    U, S = a.weights.shape  # (U, S)
    fig, ax = plt.subplots(figsize=translation_size(S, U), layout="constrained")
    im = ax.imshow(a.weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), a.src_pieces, rotation=60, ha="right", fontsize=10)
    ax.set_yticks(range(U), a.tgt_pieces, fontsize=10)
    if U * S <= 400:  # few cells: print the weights in them too
        for (u, s_), w in np.ndenumerate(a.weights):
            colour = "white" if w > 0.5 else "black"
            ax.text(
                s_, u, f"{w:.2f}", ha="center", va="center", fontsize=8, color=colour
            )
    ax.set_xlabel("source pieces")
    ax.set_ylabel("output pieces")
    ax.set_title(
        f"attention\nsource: {_title(source)}\noutput: {_title(a.text)}", fontsize=11
    )
    fig.colorbar(im, ax=ax, shrink=0.6, label="attention weight")
    save_png(fig, out)


def plot_speech(a: SpeechAlignment, audio: str, out: Path) -> None:
    """Log-mel spectrogram, CTC posteriors and (joint models) decoder attention,
    one time axis, as a PNG."""
    plt = pyplot()
    joint = a.weights is not None
    rows = 3 if joint else 2
    ratios = [1.0, 0.8, 1.0][:rows]
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=speech_size(joint),
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": ratios},
    )
    T, F = a.feats.shape  # (T, F)
    seconds = T * a.frame_seconds
    spec = axes[0]
    spec.imshow(
        a.feats.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, seconds, 0, F),
        interpolation="nearest",
    )
    spec.set_ylabel("mel bin")
    spec.set_title(
        f"{_title(audio, 80)}: log-mel features; {a.mode} output: "
        f"{_title(a.text, 60)!r}",
        fontsize=11,
    )
    _posteriors(axes[1], a, seconds)
    if joint:
        _attention(axes[2], a, seconds)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0.0, seconds)
    save_png(fig, out)


def _posteriors(ax, a: SpeechAlignment, seconds: float) -> None:
    """Per output frame, the probability of blank (grey) and of every token that is
    the most likely one somewhere (a line each, labelled at its peak)."""
    probs = np.exp(a.log_probs)  # (T', V)
    Tp = probs.shape[0]
    step = seconds / max(Tp, 1)
    times = (np.arange(Tp) + 0.5) * step  # centre of each encoder frame
    ax.fill_between(times, probs[:, a.blank], color="0.85", step="mid", label="blank")
    best = probs.argmax(axis=1)  # (T',)
    shown = [v for v in np.unique(best) if v != a.blank]
    cmap = pyplot().get_cmap("tab10")
    for k, v in enumerate(shown):
        colour = cmap(k % 10)
        ax.plot(times, probs[:, v], color=colour, lw=1.5)
        for peak in _peaks(best == v, probs[:, v]):  # every stretch it wins
            ax.annotate(
                a.pieces[v],
                (times[peak], probs[peak, v]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=11,
                color=colour,
                fontweight="bold",
            )
    ax.set_ylim(0.0, 1.12)
    ax.set_ylabel("CTC posterior")
    ax.set_title(
        f"CTC posteriors per encoder frame ({step * 1000:.0f} ms); grey: blank",
        fontsize=11,
    )
    ax.grid(True, alpha=0.3)


def _peaks(wins: np.ndarray, probs: np.ndarray) -> list[int]:
    """The most probable frame of each run of frames where `wins` (T',) holds."""
    peaks, start = [], None
    for t, w in enumerate([*wins.tolist(), False]):
        if w and start is None:
            start = t
        elif not w and start is not None:
            peaks.append(start + int(probs[start:t].argmax()))
            start = None
    return peaks


def _attention(ax, a: SpeechAlignment, seconds: float) -> None:
    weights = a.weights  # (U, T')
    U = weights.shape[0]
    ax.imshow(
        weights,
        aspect="auto",
        cmap="Greys",
        vmin=0.0,
        extent=(0.0, seconds, U - 0.5, -0.5),
        interpolation="nearest",
    )
    ax.set_yticks(range(U), a.tgt_pieces, fontsize=9 if U < 40 else 6)
    ax.set_ylabel("output pieces")
    ax.set_title("decoder attention over the encoder frames", fontsize=11)
