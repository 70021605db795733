#!/usr/bin/env python3
"""Copy a manifest's audio to 16 kHz 16-bit mono WAV, for decoders that read only
that (pocketsphinx_decode.py): every row's file decoded and resampled as s2s does
(`s2s.data.audio.load_audio`), written under OUT_DIR as <id>.wav, and the manifest
written again with those paths (relative to its own folder) and every other column
as it was.

  python wav16.py data/fotaq_test.tsv data/audio/fotaq_test_16k data/fotaq_test_16k.tsv
"""

import argparse
import os
import sys

import soundfile as sf

from s2s.data.audio import load_audio, read_manifest
from s2s.errors import S2SError

RATE = 16000


def convert(manifest: str, out_dir: str, out_manifest: str) -> int:
    """Write the copies and the new manifest; returns the number of rows. The
    manifest is checked by s2s's own reader first (header, columns, ids, paths)."""
    utts = read_manifest(manifest)
    with open(manifest, encoding="utf-8") as f:
        # Split as read_manifest does (on newlines only; it allows no blank line).
        lines = [line.removesuffix("\r") for line in f.read().split("\n")]
    if lines[-1] == "":
        lines.pop()
    dst_dir = os.path.dirname(os.path.abspath(out_manifest))
    os.makedirs(out_dir, exist_ok=True)
    out = [lines[0]]
    for utt, line in zip(utts, lines[1:], strict=True):
        wav = os.path.join(out_dir, utt.id + ".wav")
        audio = load_audio(utt.path, RATE)
        sf.write(wav, audio.clamp(-1, 1).numpy(), RATE, subtype="PCM_16")
        cols = line.split("\t")
        cols[1] = os.path.relpath(wav, dst_dir)
        out.append("\t".join(cols))
    tmp = out_manifest + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, out_manifest)
    return len(utts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest")
    p.add_argument("out_dir")
    p.add_argument("out_manifest")
    a = p.parse_args()
    try:
        n = convert(a.manifest, a.out_dir, a.out_manifest)
    except S2SError as e:
        sys.exit(f"ERROR: {e}")
    print(f"{a.out_manifest}: {n} files at {RATE} Hz in {a.out_dir}")


if __name__ == "__main__":
    main()
