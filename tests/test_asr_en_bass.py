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

spec = importlib.util.spec_from_file_location("asr_en_bass", RECIPE / "bass.py")
bass = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bass  # its dataclass looks its module up
spec.loader.exec_module(bass)


HEADER = bass.HEADER
PACKED = 0x10000 + 22050  # samples of the packed speech file once unpacked
SAMPLES = bytes(range(100, 200)) * 10  # 1,000 samples for the really packed files


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
    with pytest.raises(bass.ArchiveError, match="f7: not RNC"):
        bass.rnc_unpack(b"RNX" + bytes(packed[3:]), "f7")
    packed[-1] ^= 0xFF
    with pytest.raises(bass.ArchiveError, match="f7: packed data cut or damaged"):
        bass.rnc_unpack(bytes(packed), "f7")
    with pytest.raises(bass.ArchiveError, match="f7: packed data cut"):
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
