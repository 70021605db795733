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


def _header(flag: int, total: int) -> bytes:
    words = [0] * 22
    words[0], words[6] = flag, total
    return struct.pack("<22H", *words)


def _archive(tmp_path: Path) -> Path:
    """Four files: speech stored as is (0.5 s), packed speech whose unpacked size
    needs more than 16 bits (PACKED samples, so the flag's high byte counts),
    speech at a 16-byte-unit offset (1 s), and a file that is not speech."""
    size = HEADER + PACKED
    files = [
        (50001, _header(0, 0) + bytes(5512), True, 0),
        (52003, _header(size >> 16 << 8 | 0x80, size & 0xFFFF) + bytes(100), False, 0),
        (59000, _header(0, 0) + bytes(11025), True, 1),
        (60150, _header(0, 0) + bytes(300), True, 0),
    ]
    disk, table = bytearray(), bytearray()
    for number, data, stored, units in files:
        if units:
            disk += bytes(-len(disk) % 16)
            offset = len(disk) >> 4 | 1 << 23
        else:
            offset = len(disk)
        table += struct.pack("<H", number) + offset.to_bytes(3, "little")
        table += (len(data) | stored << 23).to_bytes(3, "little")
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
