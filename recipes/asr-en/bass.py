"""The voice acting of Beneath a Steel Sky, read from its archive: the first steps
of using it as real English speech (package beneath-a-steel-sky, Debian main,
freeware; the CD release, every line spoken by actors).

The package holds the game's archive: sky.dnr, its directory, and sky.dsk, the
files. This script reads the directory and each speech file's header and prints
an inventory (files, minutes, sections); it can unpack the recordings and write
them as WAV, and with --out pairs each with its line of text and writes
manifests (OUT/bass_{train,valid,test}.tsv, split by blocks of 32 lines).

  sky.dnr  uint32 entry count, then per entry 8 bytes (little-endian): uint16
           file number; 3 bytes offset into sky.dsk (bits 0-22; bit 23 set: the
           offset counts 16-byte units); 3 bytes flags (bits 0-21 the stored
           size; bit 23 set: stored as is, clear: may be RNC-packed)
  file     a 22-byte header of 11 uint16 (flag first, the total size at byte 12),
           then the data; a packed file has bit 7 of flag set, and its unpacked
           size is ((flag & 0xFF00) << 8) | total size, header included
           (flags bit 22 set: the packed data holds the header too)
  speech   files 50000-59999, unsigned 8-bit mono at 11,025 Hz after the header
  RNC      ProPack method 1 (rnc.py)
  text     English lines: files 60600 + section (0-6), stored as is: uint16 where
           the skip bytes start (less the block's number times 32), uint16 where
           the bits start, uint16 per block of 32 lines its length; one skip byte
           per line (its length; bit 7 set: the low 7 bits times 8), lengths in
           2-bit units; a line is Huffman-coded characters, first bit highest,
           up to a 0. The tree is not in the package (the original executable
           held it): ScummVM's source carries one per game version, and this
           script reads it from Debian's `scummvm` source package
           (engines/sky/hufftext.cpp, `_huffTree_00372`: children and value)
  pairing  line n of section s is spoken in file 50000 + SPEECH_BASE[s] + n

`--unpack` unpacks every speech file (both CRCs checked) and counts its samples;
`--wav-dir DIR` also writes them as WAV (11,025 Hz, the 8-bit samples as
16-bit).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import struct
import sys
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import DebianError, fetch, fetch_source  # noqa: E402  (recipes/ is on the path now)
from rnc import RncError, crc16, huffman_codes, rnc_unpack  # noqa: E402, F401  (crc16, huffman_codes: for tests)

PACKAGE = "beneath-a-steel-sky"
GAME_DIR = "usr/share/scummvm/beneath-a-steel-sky"
ENTRY = 8
HEADER = 22
SPEECH = range(50000, 60000)
RATE = 11025  # samples per second, one byte each
TEXT_FILES = 60600  # + section, English
SPEECH_BASE = (0, 600, 1100, 2430, 3380, 4530, 5080)  # per section (7)
SOURCE = "scummvm"  # the Debian source package that carries the text's tree
TREE_FILE = "engines/sky/hufftext.cpp"
TREE_NAME = "_huffTree_00372"
SPLITS = ("train", "valid", "test")


class ArchiveError(Exception):
    """A sky.dnr or sky.dsk that is not what this script reads."""


@dataclass(frozen=True)
class Entry:
    number: int
    offset: int  # bytes into sky.dsk
    size: int  # bytes stored there
    stored: bool  # flag bit 23: as is (never packed)
    header_packed: bool = False  # flag bit 22: the packed data holds the header


def read_tree(source: str, name: str = TREE_NAME) -> list[tuple[int, int, int]]:
    """The Huffman tree `name` of a hufftext.cpp: (left, right, value) per node,
    node 0 the root, a leaf has no children; values are C character literals
    or numbers."""
    start = source.find(name + "[] = {")
    end = source.find("\n};", start)
    if start < 0 or end < 0:
        raise ArchiveError(f"no tree {name} in the source")
    nodes = []
    for left, right, value in re.findall(
        r"\{\s*(\d+),\s*(\d+),\s*('(?:\\.|[^'\\])'|\d+)\s*\}", source[start:end]
    ):
        v = ord(ast.literal_eval(value)) if value.startswith("'") else int(value)
        nodes.append((int(left), int(right), v))
    for i, (left, right, _) in enumerate(nodes):
        if max(left, right) >= len(nodes) or (left or right) and not (left and right):
            raise ArchiveError(f"{name}: node {i} has a child outside the tree")
    return nodes


def tree_from_tarball(tarball: str, cache: str) -> str:
    """TREE_FILE's text from a ScummVM source tarball, kept at `cache`."""
    if not os.path.exists(cache):
        with tarfile.open(tarball) as tar:
            for member in tar:
                if member.name.endswith("/" + TREE_FILE):
                    data = tar.extractfile(member).read()
                    break
            else:
                raise ArchiveError(f"{tarball}: no {TREE_FILE}")
        os.makedirs(os.path.dirname(cache) or ".", exist_ok=True)
        with open(cache + ".part", "wb") as f:
            f.write(data)
        os.replace(cache + ".part", cache)
    with open(cache, encoding="latin-1") as f:
        return f.read()


def decode_line(data: bytes, number: int, tree: list[tuple[int, int, int]]) -> str:
    """Line `number` (block * 32 + line in block) of a section's text file."""
    block, line = number & 0xFE0, number & 0x1F
    units = sum(struct.unpack_from(f"<{block >> 5}H", data, 4)) if block else 0
    skips = block + struct.unpack_from("<H", data, 0)[0]
    for skip in data[skips : skips + line]:
        units += (skip & 0x7F) << 3 if skip & 0x80 else skip
    pos = struct.unpack_from("<H", data, 2)[0] * 8 + units * 2  # in bits
    out = []
    while True:
        node = 0
        while tree[node][0] or tree[node][1]:
            bit = data[pos >> 3] >> (7 - (pos & 7)) & 1
            node = tree[node][bit]
            pos += 1
        if tree[node][2] == 0:
            return bytes(out).decode("latin-1")
        out.append(tree[node][2])


def line_of(file_number: int) -> tuple[int, int] | None:
    """(section, line) spoken in a speech file; None outside the sections."""
    k = file_number - SPEECH.start
    for section in range(len(SPEECH_BASE) - 1, -1, -1):
        if k >= SPEECH_BASE[section]:
            return (section, k - SPEECH_BASE[section]) if k < 6000 else None
    return None


def read_directory(data: bytes, name: str = "sky.dnr") -> list[Entry]:
    """The entries of a sky.dnr's bytes; an error names `name` and the entry."""
    if len(data) < 4:
        raise ArchiveError(f"{name}: {len(data)} bytes, too short for the entry count")
    (count,) = struct.unpack_from("<I", data, 0)
    if len(data) < 4 + ENTRY * count:
        raise ArchiveError(
            f"{name}: says {count} entries but holds {(len(data) - 4) // ENTRY}"
        )
    entries = []
    for i in range(count):
        base = 4 + ENTRY * i
        (number,) = struct.unpack_from("<H", data, base)
        offset = int.from_bytes(data[base + 2 : base + 5], "little")
        flags = int.from_bytes(data[base + 5 : base + 8], "little")
        start = offset & 0x7FFFFF
        if offset >> 23 & 1:
            start <<= 4
        entries.append(
            Entry(
                number,
                start,
                flags & 0x3FFFFF,
                bool(flags >> 23 & 1),
                bool(flags >> 22 & 1),
            )
        )
    return entries


def unpacked_size(entry: Entry, header: bytes) -> tuple[int, bool]:
    """(the file's size once unpacked, header included; whether it is packed)."""
    flag, total = (
        struct.unpack_from("<H", header, 0)[0],
        struct.unpack_from("<H", header, 12)[0],
    )
    if not entry.stored and flag >> 7 & 1:
        return (flag & 0xFF00) << 8 | total, True
    return entry.size, False


def speech_samples(entry: Entry, raw: bytes) -> bytes:
    """A speech file's 8-bit samples from its stored bytes, unpacked if packed."""
    size, packed = unpacked_size(entry, raw[:HEADER])
    if not packed:
        return raw[HEADER:]
    try:
        data = rnc_unpack(raw[HEADER:], f"file {entry.number}")
    except RncError as e:
        raise ArchiveError(str(e)) from None
    if len(data) + (0 if entry.header_packed else HEADER) != size:
        raise ArchiveError(
            f"file {entry.number}: unpacked to {len(data)} bytes, "
            f"the header says {size}"
        )
    # Unpacked, the file is the header and the samples; the stored header stays
    # outside the packed data unless flags bit 22 says it is inside.
    return data[HEADER:] if entry.header_packed else data


def write_wav(path: str, samples: bytes) -> None:
    """Unsigned 8-bit samples as a 16-bit WAV at RATE."""
    import numpy as np
    import soundfile as sf

    wave = (np.frombuffer(samples, np.uint8).astype(np.int16) - 128) * 256
    sf.write(path, wave, RATE, "PCM_16")


def speech_inventory(
    dnr: str, dsk: str, unpack: bool = False, wav_dir: str | None = None
) -> dict:
    """Count the speech files of an archive and their minutes: from the headers,
    or (unpack) from the samples themselves, each file's CRCs checked; wav_dir:
    write each as <number>.wav there too."""
    with open(dnr, "rb") as f:
        entries = read_directory(f.read(), dnr)
    if wav_dir:
        os.makedirs(wav_dir, exist_ok=True)
    seconds, packed, sections = [], 0, Counter()
    with open(dsk, "rb") as f:
        disk_size = os.fstat(f.fileno()).st_size
        for e in entries:
            if e.number not in SPEECH:
                continue
            if e.offset + max(e.size, HEADER) > disk_size:
                raise ArchiveError(
                    f"{dsk}: file {e.number} ({dnr}) runs past the end "
                    f"({e.offset} + {e.size} > {disk_size} bytes)"
                )
            f.seek(e.offset)
            raw = f.read(e.size if unpack or wav_dir else HEADER)
            size, is_packed = unpacked_size(e, raw[:HEADER])
            if unpack or wav_dir:
                try:
                    samples = speech_samples(e, raw)
                except ArchiveError as err:
                    raise ArchiveError(f"{dsk}: {err}") from None
                seconds.append(len(samples) / RATE)
                if wav_dir:
                    write_wav(os.path.join(wav_dir, f"{e.number}.wav"), samples)
            else:
                seconds.append(max(size - HEADER, 0) / RATE)
            packed += is_packed
            sections[e.number // 1000 * 1000] += 1
    return {
        "entries": len(entries),
        "speech_files": len(seconds),
        "packed": packed,
        "minutes": round(sum(seconds) / 60, 2),
        "median_seconds": round(statistics.median(seconds), 2) if seconds else 0.0,
        "files_per_thousand": dict(sorted(sections.items())),
    }


def split_of(section: int, line: int, valid_mod: int = 2, test_mod: int = 2) -> str:
    """A fixed split per block of 32 lines (crc32 of "section-block"), so a
    stretch of conversation stays in one split."""
    h = zlib.crc32(f"{section}-{line >> 5}".encode()) % 20
    return "test" if h < test_mod else "valid" if h < test_mod + valid_mod else "train"


def write_manifests(dnr: str, dsk: str, tree: list, out: str) -> dict:
    """Every speech file with a line: OUT/audio/bass/<number>.wav and
    OUT/bass_{train,valid,test}.tsv; returns the counts."""
    from fotaq import transcript

    with open(dnr, "rb") as f:
        entries = read_directory(f.read(), dnr)
    by_number = {e.number: e for e in entries}
    adir = os.path.join(out, "audio", "bass")
    os.makedirs(adir, exist_ok=True)
    rows = {s: [] for s in SPLITS}
    dropped: Counter[str] = Counter()
    with open(dsk, "rb") as f:
        texts = {}
        for section in range(len(SPEECH_BASE)):
            e = by_number.get(TEXT_FILES + section)
            if e is None:
                raise ArchiveError(f"{dnr}: no text file {TEXT_FILES + section}")
            f.seek(e.offset)
            texts[section] = f.read(e.size)
        for e in entries:
            where = line_of(e.number) if e.number in SPEECH else None
            if where is None:
                if e.number in SPEECH:
                    dropped["no-line"] += 1
                continue
            section, line = where
            try:
                raw = decode_line(texts[section], line, tree)
            except (IndexError, struct.error):
                dropped["text-unreadable"] += 1
                continue
            text, why = transcript(raw)
            if text is None:
                dropped[why] += 1
                continue
            f.seek(e.offset)
            try:
                samples = speech_samples(e, f.read(e.size))
            except ArchiveError as err:
                raise ArchiveError(f"{dsk}: {err}") from None
            seconds = len(samples) / RATE
            if seconds <= 0.1:
                dropped["empty-audio"] += 1
                continue
            wav = os.path.join(adir, f"{e.number}.wav")
            if not os.path.exists(wav):
                write_wav(wav + ".part.wav", samples)
                os.replace(wav + ".part.wav", wav)
            rel = os.path.relpath(wav, out)
            rows[split_of(section, line)].append((e.number, rel, seconds, text, raw))
    stats = {"dropped": dict(dropped.most_common()), "splits": {}}
    for split, rs in rows.items():
        with open(os.path.join(out, f"bass_{split}.tsv"), "w", encoding="utf-8") as g:
            g.write("id\tpath\tduration\ttext\traw_text\n")
            for number, rel, seconds, text, raw in rs:
                cols = [f"bass-{number}", rel, f"{seconds:.3f}", text]
                g.write("\t".join(cols + [" ".join(raw.split())]) + "\n")
        stats["splits"][split] = {
            "utterances": len(rs),
            "minutes": round(sum(r[2] for r in rs) / 60, 2),
            "words": sum(len(r[3].split()) for r in rs),
        }
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="work")
    ap.add_argument(
        "--game-dir",
        help="a directory with sky.dnr and sky.dsk to read instead of Debian's",
    )
    ap.add_argument(
        "--unpack",
        action="store_true",
        help="unpack every speech file (CRCs checked) and count its samples",
    )
    ap.add_argument("--wav-dir", help="write each speech file here as <number>.wav")
    ap.add_argument(
        "--out", help="write manifests and audio here (data/), each line with its text"
    )
    ap.add_argument(
        "--tree-source",
        help=f"a {os.path.basename(TREE_FILE)} to read the text's tree from, "
        f"instead of Debian's {SOURCE} source package",
    )
    args = ap.parse_args()
    game, version = args.game_dir, None
    try:
        if game is None:
            pkg = fetch([PACKAGE], args.work)[PACKAGE]
            game, version = os.path.join(pkg.root, GAME_DIR), pkg.version
        dnr, dsk = os.path.join(game, "sky.dnr"), os.path.join(game, "sky.dsk")
        inv = speech_inventory(dnr, dsk, args.unpack, args.wav_dir)
        result = {"package": PACKAGE, "version": version, **inv}
        if args.out:
            if args.tree_source:
                with open(args.tree_source, encoding="latin-1") as f:
                    source = f.read()
            else:
                tarball = fetch_source(SOURCE, args.work)
                cache = os.path.join(args.work, "extract", "scummvm-hufftext.cpp")
                source = tree_from_tarball(tarball, cache)
                result["tree_from"] = os.path.basename(tarball)
            tree = read_tree(source)
            result.update(write_manifests(dnr, dsk, tree, args.out))
            with open(os.path.join(args.out, "bass_stats.json"), "w") as f:
                json.dump(result, f, indent=1)
    except (DebianError, ArchiveError, OSError, tarfile.TarError) as e:
        sys.exit(f"ERROR: {e}")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
