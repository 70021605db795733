"""recipes/asr-en/bass.py: the speech inventory of a Beneath a Steel Sky archive,
on a tiny sky.dnr / sky.dsk pair built here in the same layout (no Debian
package)."""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "asr-en"
sys.path.insert(0, str(RECIPE))  # for the script's own imports (rnc, fotaq)

spec = importlib.util.spec_from_file_location("asr_en_bass", RECIPE / "bass.py")
bass = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bass  # its dataclass looks its module up
spec.loader.exec_module(bass)


HEADER = bass.HEADER
PACKED = 0x10000 + 22050  # samples of the packed speech file once unpacked
SAMPLES = bytes(range(100, 200)) * 12  # 1,200 samples (0.11 s), really packed


def _header(flag: int, total: int) -> bytes:
    words = [0] * (HEADER // 2)
    words[0], words[6] = flag, total
    return struct.pack(f"<{HEADER // 2}H", *words)


def _archive(tmp_path: Path, real: bool = False) -> Path:
    """Four files: speech stored as is (0.5 s), packed speech, speech at a
    16-byte-unit offset (1 s), and a file that is not speech. The packed speech
    claims PACKED samples (more than 16 bits of size, so the flag's high byte
    counts) over junk, or with `real` is SAMPLES packed (header outside the
    packed data), plus a fifth file that packs its header with SAMPLES."""
    if real:
        size = HEADER + len(SAMPLES)
        runs = [(SAMPLES[:100], 100, len(SAMPLES) - 100), (b"", 0, 0)]
        head = _header(0x80, size)
        packed = [(52003, head + rnc_pack(runs), 0)]
        inner = head + SAMPLES
        runs = [(inner[: HEADER + 100], 100, len(SAMPLES) - 100), (b"", 0, 0)]
        packed.append((53000, head + rnc_pack(runs), 1 << 22))
    else:
        size = HEADER + PACKED
        head = _header(size >> 16 << 8 | 0x80, size & 0xFFFF)
        packed = [(52003, head + bytes(100), 0)]
    files = [(50001, _header(0, 0) + bytes(5512), 1 << 23, 0)]
    files += [(n, data, flags, 0) for n, data, flags in packed]
    files += [
        (59000, _header(0, 0) + bytes(11025), 1 << 23, 1),
        (60150, _header(0, 0) + bytes(300), 1 << 23, 0),
    ]
    disk, table = bytearray(), bytearray()
    for number, data, flags, units in files:
        if units:
            disk += bytes(-len(disk) % 16)
            offset = len(disk) >> 4 | 1 << 23
        else:
            offset = len(disk)
        table += struct.pack("<H", number) + offset.to_bytes(3, "little")
        table += (len(data) | flags).to_bytes(3, "little")
        disk += data
    (tmp_path / "sky.dnr").write_bytes(struct.pack("<I", len(files)) + table)
    (tmp_path / "sky.dsk").write_bytes(disk)
    return tmp_path


def test_inventory_counts_speech_and_unpacked_minutes(tmp_path):
    game = _archive(tmp_path)
    inv = bass.speech_inventory(str(game / "sky.dnr"), str(game / "sky.dsk"))
    assert inv["entries"] == 4
    assert inv["speech_files"] == 3
    assert inv["packed"] == 1
    assert inv["minutes"] == round((5512 + PACKED + 11025) / 11025 / 60, 2)
    assert inv["median_seconds"] == 1.0
    assert inv["files_per_thousand"] == {50000: 1, 52000: 1, 59000: 1}


def test_directory_reads_offsets_in_bytes_and_in_16_byte_units(tmp_path):
    game = _archive(tmp_path)
    entries = bass.read_directory((game / "sky.dnr").read_bytes())
    disk = (game / "sky.dsk").read_bytes()
    third = entries[2]
    assert third.number == 59000 and third.offset % 16 == 0
    assert disk[third.offset : third.offset + HEADER] == _header(0, 0)
    assert [e.stored for e in entries] == [True, False, True, True]


def test_unpack_and_wav_give_the_samples_of_every_kind_of_file(tmp_path):
    game = _archive(tmp_path, real=True)
    wavs = tmp_path / "wav"
    inv = bass.speech_inventory(
        str(game / "sky.dnr"), str(game / "sky.dsk"), unpack=True, wav_dir=str(wavs)
    )
    assert inv["speech_files"] == 4 and inv["packed"] == 2
    seconds = (5512 + 2 * len(SAMPLES) + 11025) / bass.RATE
    assert inv["minutes"] == round(seconds / 60, 2)
    import soundfile as sf

    for number in (52003, 53000):
        wave, rate = sf.read(wavs / f"{number}.wav", dtype="int16")
        assert rate == bass.RATE
        assert (wave // 256 + 128).astype("uint8").tobytes() == SAMPLES
    assert sorted(p.name for p in wavs.iterdir()) == [
        "50001.wav",
        "52003.wav",
        "53000.wav",
        "59000.wav",
    ]


@pytest.mark.parametrize(
    "cut, message",
    [(3, "too short for the entry count"), (20, "says 4 entries but holds 2")],
)
def test_a_cut_directory_is_named(tmp_path, cut, message):
    game = _archive(tmp_path)
    data = (game / "sky.dnr").read_bytes()[:cut]
    with pytest.raises(bass.ArchiveError, match=f"sky.dnr: .*{message}"):
        bass.read_directory(data, "sky.dnr")


def test_the_script_reports_a_cut_disk_by_file_and_number(tmp_path):
    game = _archive(tmp_path)
    disk = game / "sky.dsk"
    disk.write_bytes(disk.read_bytes()[:6000])
    proc = subprocess.run(
        [sys.executable, str(RECIPE / "bass.py"), "--game-dir", str(game)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "sky.dsk: file 59000" in proc.stderr and "Traceback" not in proc.stderr
    disk.unlink()
    game = _archive(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(RECIPE / "bass.py"), "--game-dir", str(game)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["speech_files"] == 3


class _RncWriter:
    """The inverse of bass.py's bit reader, for tests: bits go least significant
    first into little-endian 16-bit words, each word's 2 bytes reserved in the
    byte stream when its first bit is written; a literal run's bytes go into the
    byte stream where they stand, after the word being filled."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.word_at = -1
        self.used = 16  # bits written into the current word

    def bits(self, value: int, n: int) -> None:
        for i in range(n):
            if self.used == 16:
                self.word_at, self.used = len(self.out), 0
                self.out += b"\0\0"
            if value >> i & 1:
                self.out[self.word_at + self.used // 8] |= 1 << (self.used % 8)
            self.used += 1

    def literal(self, data: bytes) -> None:
        self.out += data

    def value(self, codes: dict[int, tuple[int, int]], v: int) -> None:
        symbol = v if v < 2 else v.bit_length()
        length, code = codes[symbol]
        self.bits(code, length)
        if symbol >= 2:
            self.bits(v - (1 << (symbol - 1)), symbol - 1)


def rnc_pack(commands: list[tuple[bytes, int, int]], extra: bytes = b"") -> bytes:
    """RNC method 1 data of one block: per command a literal run, then (but for
    the last) a match (distance, length); every table 16 codes of 4 bits."""
    lengths = [4] * 16
    codes = {sym: (n, code) for n, code, sym in bass.huffman_codes(lengths)}
    w = _RncWriter()
    w.bits(0, 2)
    for _ in range(3):
        w.bits(len(lengths), 5)
        for n in lengths:
            w.bits(n, 4)
    w.bits(len(commands), 16)
    out = bytearray()
    for i, (run, back, length) in enumerate(commands):
        w.value(codes, len(run))
        if run:
            w.literal(run)
            out += run
        if i < len(commands) - 1:
            w.value(codes, back - 1)
            w.value(codes, length - 2)
            for _ in range(length):
                out.append(out[-back])
    body = bytes(w.out) + extra
    head = b"RNC\x01" + struct.pack(">II", len(out), len(body))
    head += struct.pack(">HH", bass.crc16(bytes(out)), bass.crc16(body)) + b"\0\x01"
    return head + body


def test_crc16_is_arc():
    assert bass.crc16(b"123456789") == 0xBB3D  # CRC-16/ARC's check value


def test_huffman_codes_are_canonical_and_read_first_bit_lowest():
    # lengths 1, 2, 3, 3 give the codes 0, 10, 110, 111 (first bit first)
    assert bass.huffman_codes([2, 1, 3, 3]) == [
        (1, 0b0, 1),
        (2, 0b01, 0),
        (3, 0b011, 2),
        (3, 0b111, 3),
    ]


@pytest.mark.parametrize(
    "commands",
    [
        [(b"hello", 0, 0)],
        # a match longer than its distance repeats the run it starts in
        [(b"abc", 3, 9), (b"", 0, 0)],
        [(b"abc", 3, 6), (b"XYZ", 0, 0)],
        # literal runs that end inside, and at the end of, a 16-bit word
        [(b"x" * 7, 1, 5), (b"0123456789abcdefghij", 12, 33), (b"end", 0, 0)],
    ],
)
def test_rnc_unpack_restores_literals_and_matches(commands):
    packed = rnc_pack(commands)
    expected = bytearray()
    for i, (run, back, length) in enumerate(commands):
        expected += run
        if i < len(commands) - 1:
            for _ in range(length):
                expected.append(expected[-back])
    assert bass.rnc_unpack(packed) == bytes(expected)


def test_rnc_unpack_names_damage():
    packed = bytearray(rnc_pack([(b"abc", 3, 6), (b"XYZ", 0, 0)]))
    with pytest.raises(bass.RncError, match="f7: not RNC"):
        bass.rnc_unpack(b"RNX" + bytes(packed[3:]), "f7")
    packed[-1] ^= 0xFF
    with pytest.raises(bass.RncError, match="f7: packed data cut or damaged"):
        bass.rnc_unpack(bytes(packed), "f7")
    with pytest.raises(bass.RncError, match="f7: packed data cut"):
        bass.rnc_unpack(bytes(packed[:-3]), "f7")


def test_the_script_names_a_damaged_packed_file(tmp_path):
    game = _archive(tmp_path, real=True)
    disk = bytearray((game / "sky.dsk").read_bytes())
    at = disk.index(b"RNC\x01") + 40  # inside the first packed file's stream
    disk[at] ^= 0xFF
    (game / "sky.dsk").write_bytes(disk)
    proc = subprocess.run(
        [sys.executable, str(RECIPE / "bass.py"), "--game-dir", str(game), "--unpack"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "sky.dsk: file 52003: packed data cut or damaged" in proc.stderr


# A tiny hufftext.cpp: the root's children are 1 and 2; the leaves are the end
# (0), "a", " ", "b", the quote, the backslash and "}" (character literals with
# escapes, as ScummVM writes them).
TREE_SOURCE = r"""
const HuffTree Text::_huffTree_00365[] = {
	{ 0, 0, 'x' },
};

const HuffTree Text::_huffTree_00372[] = {
	{ 1, 2, 0 },
	{ 3, 4, 0 },
	{ 5, 6, 0 },
	{ 0, 0, 0 },
	{ 7, 8, 0 },
	{ 0, 0, 'a' },
	{ 9, 10, 0 },
	{ 0, 0, ' ' },
	{ 0, 0, 'b' },
	{ 11, 12, 0 },
	{ 0, 0, '\'' },
	{ 0, 0, '\\' },
	{ 0, 0, '}' },
};
"""


def _codes(tree: list[tuple[int, int, int]]) -> dict[int, str]:
    """The bit string of each leaf's value (left 0, right 1)."""
    out, todo = {}, [(0, "")]
    while todo:
        node, path = todo.pop()
        left, right, value = tree[node]
        if left or right:
            todo += [(left, path + "0"), (right, path + "1")]
        else:
            out[value] = path
    return out


def text_section(lines: list[str], tree: list[tuple[int, int, int]]) -> bytes:
    """A section's text file as the game lays it out (bass.py's docstring): lines
    start on 2-bit units; a line of 128 units or more pads to a multiple of 8
    and is written with bit 7 of its skip byte set."""
    codes = _codes(tree)
    bits, skips, block_units = "", [], []
    for i, line in enumerate(lines):
        code = "".join(codes[ord(c)] for c in line) + codes[0]
        units = -(-len(code) // 2)
        if units >= 128:
            units = -(-units // 8) * 8
            skips.append(0x80 | units >> 3)
        else:
            skips.append(units)
        bits += code.ljust(units * 2, "0")
        if i % 32 == 0:
            block_units.append(0)
        block_units[-1] += units
    skips += [0] * (-len(skips) % 32)
    bits = bits.ljust(-(-len(bits) // 8) * 8, "0")
    data = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    head = 4 + 2 * len(block_units)
    return (
        struct.pack("<HH", head, head + len(skips))
        + struct.pack(f"<{len(block_units)}H", *block_units)
        + bytes(skips)
        + data
        + b"\0\0"
    )


def test_read_tree_takes_the_named_tree_and_its_character_literals():
    tree = bass.read_tree(TREE_SOURCE)
    assert len(tree) == 13 and tree[0] == (1, 2, 0)
    assert [v for left, right, v in tree if not left] == [0, 97, 32, 98, 39, 92, 125]
    with pytest.raises(bass.ArchiveError, match="no tree"):
        bass.read_tree(TREE_SOURCE, "_huffTree_00999")
    broken = TREE_SOURCE.replace("{ 11, 12, 0 }", "{ 11, 13, 0 }")
    with pytest.raises(bass.ArchiveError, match="node 9 has a child outside"):
        bass.read_tree(broken)


def test_decode_line_finds_every_line_across_blocks_and_long_skips():
    tree = bass.read_tree(TREE_SOURCE)
    lines = [("ab " * (i % 7)) + "b'a\\}" for i in range(70)]
    lines[33] = "a b" * 60  # more than 128 units: the coarse skip
    data = text_section(lines, tree)
    for i, line in enumerate(lines):
        assert bass.decode_line(data, i, tree) == line


def test_line_of_maps_speech_files_to_sections():
    assert bass.line_of(50000) == (0, 0)
    assert bass.line_of(50599) == (0, 599)
    assert bass.line_of(50600) == (1, 0)
    assert bass.line_of(55080) == (6, 0)
    assert bass.line_of(56000) is None
    assert bass.line_of(59000) is None


def test_tree_from_tarball_finds_the_file_and_keeps_it(tmp_path):
    import io
    import tarfile

    tarball = tmp_path / "scummvm_1.orig.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        for name, text in [
            ("scummvm-1/README", "x"),
            ("scummvm-1/engines/sky/hufftext.cpp", TREE_SOURCE),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    cache = tmp_path / "cache" / "hufftext.cpp"
    assert bass.tree_from_tarball(str(tarball), str(cache)) == TREE_SOURCE
    tarball.unlink()  # read from the cache now
    assert bass.tree_from_tarball(str(tarball), str(cache)) == TREE_SOURCE


def test_the_script_writes_manifests_s2s_reads(tmp_path):
    """Speech files paired with their lines through --out, on a tiny archive
    whose sections hold text files; the lines land in the split of their block
    and are normalised as the other game's lines are."""
    tree = bass.read_tree(TREE_SOURCE)
    game = _archive(tmp_path, real=True)  # speech 50001 (0.5 s), 52003, 53000, 59000
    texts = {
        0: ["", "a b'a"],  # line 1 of section 0 is file 50001
        2: [""] * 903 + ["ba ab"],  # file 52003 = 50000 + 1100 + 903
        3: [""] * 570 + ["b a  b"],  # file 53000 = 50000 + 2430 + 570
    }
    dnr, dsk = (
        (game / "sky.dnr").read_bytes(),
        bytearray((game / "sky.dsk").read_bytes()),
    )
    count, table = struct.unpack_from("<I", dnr)[0], bytearray(dnr[4:])
    for section in range(7):
        data = text_section(texts.get(section, ["a"]), tree)
        table += struct.pack("<H", 60600 + section) + len(dsk).to_bytes(3, "little")
        table += (len(data) | 1 << 23).to_bytes(3, "little")
        dsk += data
    (game / "sky.dnr").write_bytes(struct.pack("<I", count + 7) + table)
    (game / "sky.dsk").write_bytes(dsk)
    (tmp_path / "hufftext.cpp").write_text(TREE_SOURCE)
    out = tmp_path / "data"
    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPE / "bass.py"),
            "--game-dir",
            str(game),
            "--tree-source",
            str(tmp_path / "hufftext.cpp"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(proc.stdout)
    assert stats["dropped"] == {"no-line": 1}  # 59000
    rows = {}
    for split in ("train", "valid", "test"):
        lines = (out / f"bass_{split}.tsv").read_text().splitlines()
        assert lines[0] == "id\tpath\tduration\ttext\traw_text"
        for line in lines[1:]:
            rows[line.split("\t")[0]] = (split, line.split("\t"))
    assert sorted(rows) == ["bass-50001", "bass-52003", "bass-53000"]
    assert rows["bass-50001"][1][3:] == ["a b'a", "a b'a"]
    assert rows["bass-53000"][1][3:] == ["b a b", "b a b"]  # spaces collapsed
    assert rows["bass-52003"][0] == bass.split_of(2, 903)
    assert rows["bass-50001"][1][1:3] == ["audio/bass/50001.wav", "0.500"]
    from s2s.data.audio import read_manifest

    for split in ("train", "valid", "test"):
        read_manifest(str(out / f"bass_{split}.tsv"))
