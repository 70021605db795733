"""Real English speech with transcripts from Debian: the voice acting of the
adventure game Flight of the Amazon Queen (package flight-of-the-amazon-queen,
Debian main; freeware licence in DATA.md).

The package holds one file, queen.1c: a bundle of the game's files behind a
table. Its dialogues (*.DOG) hold every spoken line as text, and each line's
recording is a file of the bundle (*.SB, MP3 at 11,025 Hz) whose name is made
from the dialogue's talk key, the line's id, who speaks (J: Joe, the hero; P:
the other person) and the segment of the line:

  bundle   "QTBL", 9 bytes this script does not read (a version string and
           flags), uint16 entries at byte 13, then per entry: a 12-byte
           NUL-padded name, 1 byte bundle number, uint32 offset, uint32 size
           (big-endian throughout)
  *.DOG    20 header bytes, then int16 levels, unique key, talk key, Joe's line
           count, the person's line count, 2 x (game state, value, item), uint16
           offsets of the person's lines, the cutaway, the person's second-visit
           lines; the dialogue tree at 32 (96 bytes a level), Joe's lines after
           it; a line: 2 bytes, int16 id, a length-prefixed string padded to 4
  voice    "%2d%4x%s%1x" % (talk key, line id, J/P, segment + 1), spaces as 0
           ("SSSS": Joe's first words, "XXXX": a second visit's), + ".SB"
  segment  a line is cut at "*" + a 2-letter command ("*XY" carries 11 more
           characters); each piece has its own recording

This script writes each recording as it is (MP3; s2s decodes and resamples it)
to OUT/audio/fotaq/<voice>.mp3 and the manifests OUT/fotaq_{train,valid,test}.tsv,
split by dialogue file (a dialogue's lines stay together; Joe's voice and some
characters are in every split), and OUT/fotaq_stats.json; and the real clips of
pocketsphinx-testdata as OUT/pocketsphinx_test.tsv when prepare_data.py has not.
Transcripts go through spoken_form() as the synthetic data does (numbers spelled
out), after the game's emphasis capitals ("I'm NOT opening") are lowercased;
lines that cannot be rewritten safely (grunts like "Hmmm", "<gulp>", "D.N.A.")
are dropped and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import zlib
from collections import Counter
from dataclasses import dataclass

from spoken_form import normalize, spoken_form

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import DebianError, fetch  # noqa: E402  (recipes/ is on the path now)

PACKAGE = "flight-of-the-amazon-queen"
BUNDLE = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
DOG_HEADER = 20
ENTRY = 21  # name 12, bundle 1, offset 4, size 4
SPLITS = ("train", "valid", "test")


class BundleError(Exception):
    """A bundle or dialogue file that is not what this script reads."""


@dataclass(frozen=True)
class Line:
    voice: str  # the recording's name in the bundle, e.g. 020006J1.SB
    text: str  # the segment as written in the game
    dialogue: str  # the .DOG file it comes from
    speaker: str  # "joe" or the dialogue's person (the file name without digits)


class Bundle:
    """The table of a queen.1c bundle and its files' bytes."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            head = f.read(15)
            if len(head) < 15 or head[:4] != b"QTBL":
                raise BundleError(f"{path}: not a queen.1c bundle (no QTBL table)")
            (n,) = struct.unpack(">H", head[13:15])
            table = f.read(ENTRY * n)
        if len(table) < ENTRY * n:
            raise BundleError(f"{path}: table of {n} entries is cut short")
        self.files: dict[str, tuple[int, int]] = {}
        size = os.path.getsize(path)
        for i in range(n):
            e = table[ENTRY * i : ENTRY * (i + 1)]
            name = e[:12].split(b"\0")[0].decode("ascii", "replace")
            offset, length = struct.unpack(">II", e[13:21])
            if offset + length > size:
                raise BundleError(
                    f"{path}: entry {i + 1} ({name}) runs past the end of the file"
                )
            self.files[name] = (offset, length)

    def read(self, name: str) -> bytes:
        offset, length = self.files[name]
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)


def _string(data: bytes, offset: int, align: int) -> tuple[str, int]:
    """A length-prefixed string at `offset` and the offset after its padding."""
    if offset >= len(data):
        raise BundleError(f"string offset {offset} past the end")
    n = data[offset]
    offset += 1
    text = data[offset : offset + n].decode("latin-1")
    if n:
        offset = (offset + n + align - 1) & ~(align - 1)
    return text, offset


def segments(sentence: str) -> list[tuple[int, str]]:
    """(segment number, text) of a line, cut at '*' + a 2-letter command."""
    out, index, start, i = [], 0, 0, 0
    while i < len(sentence):
        if sentence[i] == "*":
            out.append((index, sentence[start:i]))
            i += 1
            i += 13 if sentence[i : i + 2] == "XY" else 2
            index += 1
            start = i
        else:
            i += 1
    if start != i:
        out.append((index, sentence[start:i]))
    return out


def dialogue_lines(data: bytes) -> list[tuple[str, str]]:
    """(voice-file prefix, line) of every line of one .DOG file's bytes; a
    BundleError or struct.error where the bytes end too soon."""
    b = data[DOG_HEADER:]
    if len(b) < 32:
        raise BundleError(f"too short ({len(data)} bytes)")
    levels, _unique, key, joe_max, person_max = struct.unpack(">5h", b[:10])
    person_at, _cutaway_at, second_at = struct.unpack(">3H", b[22:28])
    joe_at = 32 + abs(levels) * 96

    def prefix(line_id: str | int, who: str) -> str:
        ident = line_id if isinstance(line_id, str) else f"{line_id:4x}"
        return f"{key:2d}{ident}{who}".replace(" ", "0").upper()

    def lines(offset: int, count: int, who: str):
        for _ in range(count):
            offset += 2
            (line_id,) = struct.unpack(">h", b[offset : offset + 2])
            offset += 2
            text, offset = _string(b, offset, 4)
            yield prefix(line_id, who), text

    out = list(lines(joe_at, joe_max + 1, "J")) + list(
        lines(person_at, person_max, "P")
    )
    (has_no_first,) = struct.unpack(">H", b[joe_at + 2 : joe_at + 4])
    if not has_no_first:
        out.append((prefix("SSSS", "J"), _string(b, joe_at + 4, 2)[0]))
    text, offset = _string(b, second_at, 2)
    out.append((prefix("XXXX", "P"), text))
    out.append((prefix("XXXX", "J"), _string(b, offset, 2)[0]))
    return out


def read_lines(bundle: Bundle) -> tuple[list[Line], int]:
    """Every dialogue segment whose recording is in the bundle, and how many
    recordings of dialogue-like names have no line."""
    lines: dict[str, Line] = {}
    for name in sorted(bundle.files):
        if not name.endswith(".DOG"):
            continue
        person = re.sub(r"[0-9]+$", "", name[:-4]).lower()
        try:
            entries = dialogue_lines(bundle.read(name))
        except (BundleError, struct.error) as e:
            raise BundleError(f"{bundle.path}: dialogue {name}: {e}") from None
        for pre, sentence in entries:
            for index, text in segments(sentence):
                voice = f"{pre}{index + 1:X}.SB"
                if voice in bundle.files and text.strip():
                    who = "joe" if pre[-1] == "J" else person
                    lines.setdefault(voice, Line(voice, text.strip(), name, who))
    dialogue_like = [
        n for n in bundle.files if re.fullmatch(r"\d\d[0-9A-FSX]{4}[JP][0-9A-F]\.SB", n)
    ]
    return sorted(lines.values(), key=lambda x: x.voice), sum(
        n not in lines for n in dialogue_like
    )


def transcript(text: str) -> tuple[str | None, str | None]:
    """The game's text -> (normalised transcript, None) or (None, reason)."""
    # The game writes emphasis in capitals ("I'm NOT opening that"); spoken_form
    # would refuse those words as acronyms.
    lowered = re.sub(r"\b[A-Z][A-Z']+\b", lambda m: m.group(0).lower(), text)
    lowered = lowered.replace("^_", "")  # a mark after "Treatment" in three lines
    spoken, why = spoken_form(lowered)
    if spoken is None:
        return None, why
    norm = normalize(spoken)
    return (norm, None) if norm else (None, "empty")


def split_of(dialogue: str, valid_mod: int, test_mod: int) -> str:
    """A fixed split for each dialogue file (crc32 of its name)."""
    h = zlib.crc32(dialogue.encode()) % 20
    return "test" if h < test_mod else "valid" if h < test_mod + valid_mod else "train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="work")
    ap.add_argument("--out", default="data")
    ap.add_argument("--bundle", help="a queen.1c to read instead of Debian's")
    ap.add_argument(
        "--valid-twentieths",
        type=int,
        default=2,
        help="dialogue files (by crc32 of the name, out of 20) for valid",
    )
    ap.add_argument("--test-twentieths", type=int, default=2)
    args = ap.parse_args()

    import soundfile as sf

    version = None
    path = args.bundle
    if path is None:
        try:
            pkg = fetch([PACKAGE], args.work)[PACKAGE]
        except DebianError as e:
            sys.exit(f"ERROR: {e}")
        path, version = os.path.join(pkg.root, BUNDLE), pkg.version
    try:
        bundle = Bundle(path)
        lines, unmatched = read_lines(bundle)
    except (BundleError, OSError) as e:
        sys.exit(f"ERROR: {e}")
    adir = os.path.join(args.out, "audio", "fotaq")
    os.makedirs(adir, exist_ok=True)
    rows = {s: [] for s in SPLITS}
    dropped: Counter[str] = Counter()
    for line in lines:
        text, why = transcript(line.text)
        if text is None:
            dropped[why] += 1
            continue
        mp3 = os.path.join(adir, line.voice[:-3] + ".mp3")
        if not os.path.exists(mp3):
            with open(mp3 + ".part", "wb") as f:
                f.write(bundle.read(line.voice))
            os.replace(mp3 + ".part", mp3)
        try:
            seconds = sf.info(mp3).duration
        except RuntimeError as e:
            dropped["undecodable"] += 1
            print(f"skipped {mp3}: {e}", file=sys.stderr)
            continue
        if seconds <= 0.1:
            dropped["empty-audio"] += 1
            continue
        split = split_of(line.dialogue, args.valid_twentieths, args.test_twentieths)
        rows[split].append((line, os.path.relpath(mp3, args.out), seconds, text))
    stats = dict(
        package=PACKAGE,
        package_version=version,
        bundle_files=len(bundle.files),
        dialogue_segments=len(lines),
        recordings_without_a_line=unmatched,
        dropped=dict(dropped.most_common()),
        splits={},
    )
    for split, rs in rows.items():
        with open(
            os.path.join(args.out, f"fotaq_{split}.tsv"), "w", encoding="utf-8"
        ) as f:
            f.write("id\tpath\tduration\ttext\tspeaker\tdialogue\traw_text\n")
            for line, rel, seconds, text in rs:
                cols = [f"fotaq-{line.voice[:-3]}", rel, f"{seconds:.3f}", text]
                cols += [line.speaker, line.dialogue, line.text.replace("\t", " ")]
                f.write("\t".join(cols) + "\n")
        st = dict(
            utterances=len(rs),
            minutes=round(sum(seconds for _, _, seconds, _ in rs) / 60, 2),
            words=sum(len(text.split()) for *_, text in rs),
            dialogues=len({line.dialogue for line, *_ in rs}),
            speakers=len({line.speaker for line, *_ in rs}),
            joe_utterances=sum(line.speaker == "joe" for line, *_ in rs),
        )
        stats["splits"][split] = st
        print(
            f"fotaq_{split:<5} {st['utterances']:5d} utts {st['minutes']:7.1f} min "
            f"{st['words']:6d} words {st['dialogues']:3d} dialogues "
            f"{st['speakers']:3d} speakers ({st['joe_utterances']} by Joe)"
        )
    print(f"dropped: {dict(dropped)}; recordings without a line: {unmatched}")
    if not os.path.exists(os.path.join(args.out, "pocketsphinx_test.tsv")):
        # The real clips every run of this recipe is tested on (prepare_data.py
        # writes them too, with the synthetic data).
        from prepare_data import prepare_pocketsphinx

        try:
            stats["pocketsphinx_test"] = prepare_pocketsphinx(args.work, args.out)
        except DebianError as e:
            sys.exit(f"ERROR: {e}")
    with open(os.path.join(args.out, "fotaq_stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    main()
