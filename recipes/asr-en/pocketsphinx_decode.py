#!/usr/bin/env python3
"""Decode a manifest (id, path, ...) with PyPI pocketsphinx's built-in US English
model (pocketsphinx 5.x wheel ships model/en-us: acoustic model, en-us.lm.bin,
cmudict-en-us.dict).  Writes `id<TAB>hypothesis` lines.  Audio must be 16 kHz,
16-bit mono WAV (as written by prepare_data.py).

  pip install pocketsphinx   # into a separate venv, e.g. /tmp/ps
  python pocketsphinx_decode.py data/test.tsv > work/test.pocketsphinx.hyp
"""

import os
import sys
import wave

from pocketsphinx import Decoder  # default config loads the bundled en-us model

manifest = sys.argv[1]
out = sys.stdout  # or: python pocketsphinx_decode.py data/test.tsv > test.hyp
decoder = Decoder(samprate=16000, loglevel="FATAL")
with open(manifest, encoding="utf-8") as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        row = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
        path = os.path.join(os.path.dirname(os.path.abspath(manifest)), row["path"])
        with wave.open(path, "rb") as w:
            assert (
                w.getframerate() == 16000
                and w.getnchannels() == 1
                and w.getsampwidth() == 2
            )
            pcm = w.readframes(w.getnframes())
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        out.write("{}\t{}\n".format(row["id"], hyp.hypstr if hyp else ""))
        out.flush()
