#!/usr/bin/env python3
"""A picture of the training-only augmentation (DATA.md): one sentence read by one
voice, as it is, pitch-shifted, in a room, and on a telephone line; spectrograms
side by side. Needs espeak-ng, sox and matplotlib (`pip install 's2s[plot]'`).

Usage: python plot_augmentation.py --out results/augmentation.png
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tts import synthesize

from s2s.viz.figure import pyplot, save_png

TEXT = "the quick brown fox jumps over the lazy dog"
VARIANTS = [
    ("as synthesised", {}),
    ("pitch +300 cents", {"pitch_cents": 300}),
    ("room: RT60 0.6 s, DRR 3 dB", {"rt60": 0.6, "drr_db": 3.0}),
    ("telephone band 300-3,400 Hz", {"telephone": True}),
]


def spectrogram(x, sr=16000, n_fft=512, hop=160):
    win = np.hanning(n_fft)
    frames = [x[i : i + n_fft] * win for i in range(0, len(x) - n_fft, hop)]
    power = np.abs(np.fft.rfft(np.array(frames), axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voice", default="espeak:en-us+f2")
    ap.add_argument("--out", default="results/augmentation.png")
    args = ap.parse_args()
    plt = pyplot()
    fig, axes = plt.subplots(len(VARIANTS), 1, figsize=(8, 7), sharex=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (ax, (title, extra)) in enumerate(zip(axes, VARIANTS, strict=True)):
            job = dict(
                id=f"variant{i}",
                voice=args.voice,
                speed=1.0,
                noise="clean",
                snr_db=None,
                peak_db=-3.0,
                noise_seed=1,
                tts_text=TEXT,
                abs_path=os.path.join(tmp, f"variant{i}.wav"),
                **extra,
            )
            synthesize(job, tmp)
            x, sr = sf.read(job["abs_path"])
            spec = spectrogram(x, sr)
            ax.imshow(
                spec,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=spec.max() - 80,
                extent=(0, len(x) / sr, 0, sr / 2000),
            )
            ax.set_title(title, fontsize=10)
            ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    fig.suptitle(f'"{TEXT}" ({args.voice})')
    fig.tight_layout()
    save_png(fig, Path(args.out))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
