"""How much voice acting Beneath a Steel Sky holds: the first step of reading it as
real English speech (package beneath-a-steel-sky, Debian main, freeware; the CD
release, every line spoken by actors).

The package holds the game's archive: sky.dnr, its directory, and sky.dsk, the
files. This script reads the directory and each speech file's header and prints
an inventory (files, minutes, sections); it does not yet write audio or
transcripts (what that needs is at the end).

  sky.dnr  uint32 entry count, then per entry 8 bytes (little-endian): uint16
           file number; 3 bytes offset into sky.dsk (bits 0-22; bit 23 set: the
           offset counts 16-byte units); 3 bytes flags (bits 0-21 the stored
           size; bit 23 set: stored as is, clear: may be RNC-packed)
  file     a 44-byte header of 22 uint16 (flag first, the total size at byte 12),
           then the data; a packed file has bit 7 of flag set, and its unpacked
           size is ((flag & 0xFF00) << 8) | total size, header included
  speech   files 50000-59999, unsigned 8-bit mono at 11,025 Hz after the header

Still to do for training data: RNC ProPack method 1 to unpack the speech, and
the game's text (files 60600-60607 for English) whose Huffman tree is not in
the package (ScummVM's source carries it per game version), to pair each
recording with its line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
from collections import Counter
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import DebianError, fetch  # noqa: E402  (recipes/ is on the path now)

PACKAGE = "beneath-a-steel-sky"
GAME_DIR = "usr/share/scummvm/beneath-a-steel-sky"
ENTRY = 8
HEADER = 44
SPEECH = range(50000, 60000)
RATE = 11025  # samples per second, one byte each


class ArchiveError(Exception):
    """A sky.dnr or sky.dsk that is not what this script reads."""


@dataclass(frozen=True)
class Entry:
    number: int
    offset: int  # bytes into sky.dsk
    size: int  # bytes stored there
    stored: bool  # flag bit 23: as is (never packed)


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
        entries.append(Entry(number, start, flags & 0x3FFFFF, bool(flags >> 23 & 1)))
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


def speech_inventory(dnr: str, dsk: str) -> dict:
    """Count the speech files of an archive and their minutes (from the headers)."""
    with open(dnr, "rb") as f:
        entries = read_directory(f.read(), dnr)
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
            size, is_packed = unpacked_size(e, f.read(HEADER))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="work")
    ap.add_argument(
        "--game-dir",
        help="a directory with sky.dnr and sky.dsk to read instead of Debian's",
    )
    args = ap.parse_args()
    game, version = args.game_dir, None
    if game is None:
        try:
            pkg = fetch([PACKAGE], args.work)[PACKAGE]
        except DebianError as e:
            sys.exit(f"ERROR: {e}")
        game, version = os.path.join(pkg.root, GAME_DIR), pkg.version
    try:
        inv = speech_inventory(
            os.path.join(game, "sky.dnr"), os.path.join(game, "sky.dsk")
        )
    except (ArchiveError, OSError) as e:
        sys.exit(f"ERROR: {e}")
    print(json.dumps({"package": PACKAGE, "version": version, **inv}, indent=1))


if __name__ == "__main__":
    main()
