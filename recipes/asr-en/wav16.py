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

from s2s.data.audio import load_audio
from s2s.errors import S2SError

RATE = 16000


def convert(manifest: str, out_dir: str, out_manifest: str) -> int:
    """Write the copies and the new manifest; returns the number of rows."""
    src_dir = os.path.dirname(os.path.abspath(manifest))
    dst_dir = os.path.dirname(os.path.abspath(out_manifest))
    os.makedirs(out_dir, exist_ok=True)
    with open(manifest, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["id", "path"]:
            raise S2SError(f"{manifest}:1: the header must start with id, path")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    lines = ["\t".join(header)]
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise S2SError(
                f"{manifest}:{n}: {len(row)} columns, the header has {len(header)}"
            )
        wav = os.path.join(out_dir, row[0] + ".wav")
        audio = load_audio(os.path.join(src_dir, row[1]), RATE)
        sf.write(wav, audio.clamp(-1, 1).numpy(), RATE, subtype="PCM_16")
        lines.append("\t".join([row[0], os.path.relpath(wav, dst_dir), *row[2:]]))
    tmp = out_manifest + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out_manifest)
    return len(rows)


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
