"""recipes/asr-en/fotaq.py: the dialogue lines and recordings of a queen.1c
bundle, on a tiny bundle built here in the same layout (no Debian package)."""

from __future__ import annotations

import importlib.util
import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "asr-en"
sys.path.insert(0, str(RECIPE))  # for the script's own imports (spoken_form)

spec = importlib.util.spec_from_file_location("asr_en_fotaq", RECIPE / "fotaq.py")
fotaq = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = fotaq  # its dataclass looks its module up
spec.loader.exec_module(fotaq)


def _string(text: str, align: int) -> bytes:
    raw = bytes([len(text)]) + text.encode("latin-1")
    if text:
        raw += b"\0" * (-(len(raw)) % align)
    return raw


def _dog(
    key: int,
    joe: list[tuple[int, str]],
    person: list[tuple[int, str]],
    first: str,
    second: tuple[str, str],
) -> bytes:
    """A .DOG file: one dialogue level, Joe's first words and lines, the person's
    lines, the second-visit pair; offsets as the game writes them."""
    joe_at = 32 + 96  # one level
    joe_part = b"\0\0" + struct.pack(">H", 0) + _string(first, 4)  # has a first line
    for line_id, text in joe:
        joe_part += b"\0\0" + struct.pack(">h", line_id) + _string(text, 4)
    person_at = joe_at + len(joe_part)
    person_part = b""
    for line_id, text in person:
        person_part += b"\0\0" + struct.pack(">h", line_id) + _string(text, 4)
    second_at = person_at + len(person_part)
    second_part = _string(second[0], 2) + _string(second[1], 2)
    head = struct.pack(">5h", 1, 7, key, len(joe), len(person)) + b"\0" * 12
    head += struct.pack(">3H", person_at, 0, second_at) + b"\0" * 4
    body = head + b"\0" * 96 + joe_part + person_part + second_part
    assert len(head) == 32 and body[joe_at:].startswith(joe_part)
    return b"\0" * fotaq.DOG_HEADER + body


def _audio(seconds: float, hz: float = 220.0) -> bytes:
    import soundfile as sf

    sr = 11025
    x = 0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _bundle(path: Path, files: dict[str, bytes]) -> Path:
    names = sorted(files)
    table_end = 15 + fotaq.ENTRY * len(names)
    head = b"QTBL" + b"CEM10\0" + b"\0\0\1" + struct.pack(">H", len(names))
    table, data, offset = b"", b"", table_end
    for name in names:
        table += name.encode().ljust(12, b"\0") + b"\1"
        table += struct.pack(">II", offset, len(files[name]))
        data += files[name]
        offset += len(files[name])
    path.write_bytes(head + table + data)
    return path


LINES = {
    "joe": [
        (6, "At least I don't look like I need to wear one."),
        (0x1E, "Hello there.*FLHow are you?"),
    ],
    "person": [
        (6, "I have 3 planes, Joe.*XY00(237,112)And you have NONE!"),
        (7, "<gulp>"),
    ],
}


@pytest.fixture
def bundle(tmp_path):
    dog = _dog(2, LINES["joe"], LINES["person"], "Hi.", ("Back again?", "Yes."))
    files = {
        "BOB2.DOG": dog,
        "020006J1.SB": _audio(1.0),
        "02001EJ1.SB": _audio(0.6),
        "02001EJ2.SB": _audio(0.7),
        "020006P1.SB": _audio(0.8),
        "020006P2.SB": _audio(0.9),
        "020007P1.SB": _audio(0.5),
        "02SSSSJ1.SB": _audio(0.4),
        "02XXXXP1.SB": _audio(0.5),
        "02XXXXJ1.SB": _audio(0.3),
        "020099P1.SB": _audio(0.3),  # a recording without a line
        "JOE00001.SB": _audio(0.3),  # not a dialogue recording
    }
    return _bundle(tmp_path / "queen.1c", files)


def test_segments_cut_at_commands_and_skip_coordinates():
    assert fotaq.segments("Hello there.*FLHow are you?") == [
        (0, "Hello there."),
        (1, "How are you?"),
    ]
    assert fotaq.segments("Go.*XY00(237,112)Now!") == [(0, "Go."), (1, "Now!")]
    assert fotaq.segments("*WT") == [(0, "")]
    assert fotaq.segments("Plain.") == [(0, "Plain.")]


def test_every_line_finds_its_recording_and_speaker(bundle):
    lines, unmatched = fotaq.read_lines(fotaq.Bundle(str(bundle)))
    got = {x.voice: (x.text, x.speaker, x.dialogue) for x in lines}
    assert got == {
        "020006J1.SB": (LINES["joe"][0][1], "joe", "BOB2.DOG"),
        "02001EJ1.SB": ("Hello there.", "joe", "BOB2.DOG"),
        "02001EJ2.SB": ("How are you?", "joe", "BOB2.DOG"),
        "020006P1.SB": ("I have 3 planes, Joe.", "bob", "BOB2.DOG"),
        "020006P2.SB": ("And you have NONE!", "bob", "BOB2.DOG"),
        "020007P1.SB": ("<gulp>", "bob", "BOB2.DOG"),
        "02SSSSJ1.SB": ("Hi.", "joe", "BOB2.DOG"),
        "02XXXXP1.SB": ("Back again?", "bob", "BOB2.DOG"),
        "02XXXXJ1.SB": ("Yes.", "joe", "BOB2.DOG"),
    }
    assert unmatched == 1  # 020099P1.SB


def test_transcripts_spell_numbers_lower_emphasis_and_drop_noises():
    assert fotaq.transcript("I have 3 planes, Joe.") == (
        "i have three planes joe",
        None,
    )
    assert fotaq.transcript("I'm NOT opening that...") == ("i'm not opening that", None)
    assert fotaq.transcript("<gulp>") == (None, "symbol")
    assert fotaq.transcript("Hmmm...")[0] is None


def test_split_is_fixed_per_dialogue_and_follows_the_shares():
    names = [f"D{i}.DOG" for i in range(400)]
    splits = [fotaq.split_of(n, 2, 2) for n in names]
    assert splits == [fotaq.split_of(n, 2, 2) for n in names]
    assert 20 < splits.count("test") < 60 and 20 < splits.count("valid") < 60
    assert {fotaq.split_of(n, 0, 0) for n in names} == {"train"}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b"XXXX" + b[4:], "not a queen.1c bundle"),
        (lambda b: b[:40], "cut short"),
        (lambda b: b[: len(b) - 10], "runs past the end"),
    ],
)
def test_a_damaged_bundle_is_named_in_the_error(bundle, damage, message):
    bundle.write_bytes(damage(bundle.read_bytes()))
    with pytest.raises(fotaq.BundleError, match=message) as err:
        fotaq.Bundle(str(bundle))
    assert str(bundle) in str(err.value)


@pytest.mark.parametrize(
    "keep, message", [(80, "requires a buffer"), (30, "too short")]
)
def test_a_cut_dialogue_names_the_bundle_and_the_dialogue(tmp_path, keep, message):
    dog = _dog(2, LINES["joe"], LINES["person"], "Hi.", ("Back again?", "Yes."))
    path = _bundle(tmp_path / "queen.1c", {"BOB2.DOG": dog[:keep]})
    with pytest.raises(fotaq.BundleError, match=message) as err:
        fotaq.read_lines(fotaq.Bundle(str(path)))
    assert f"{path}: dialogue BOB2.DOG: " in str(err.value)
    proc = subprocess.run(
        [sys.executable, str(RECIPE / "fotaq.py"), "--bundle", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "ERROR:" in proc.stderr and "BOB2.DOG" in proc.stderr


def test_the_script_writes_manifests_s2s_reads(bundle, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "pocketsphinx_test.tsv").write_text("id\tpath\tduration\ttext\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPE / "fotaq.py"),
            "--bundle",
            str(bundle),
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
            "--valid-twentieths",
            "0",
            "--test-twentieths",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    from s2s.data.audio import load_audio, read_manifest

    train = read_manifest(out / "fotaq_train.tsv")
    assert sorted(u.text for u in train) == sorted(
        [
            "at least i don't look like i need to wear one",
            "hello there",
            "how are you",
            "i have three planes joe",
            "and you have none",
            "hi",
            "yes",
            "back again",
        ]
    )
    assert read_manifest(out / "fotaq_test.tsv") == []
    first = next(u for u in train if u.id == "fotaq-020006J1")
    assert first.duration == pytest.approx(1.0, abs=0.01)
    wave = load_audio(first.path, 16000)
    assert len(wave) == pytest.approx(16000, abs=20)
    assert "'symbol': 1" in proc.stdout  # <gulp>


def test_wav16_copies_a_manifest_to_16k_wav_and_names_a_bad_row(tmp_path):
    """wav16.py (the game's test lines for pocketsphinx): a 22,050 Hz stereo file
    becomes 16 kHz 16-bit mono of the same length, the manifest keeps its columns
    with the new path; a short row or a repeated id (two rows, one file) is an error
    naming the manifest's line."""
    import soundfile as sf

    spec16 = importlib.util.spec_from_file_location("asr_en_wav16", RECIPE / "wav16.py")
    wav16 = importlib.util.module_from_spec(spec16)
    spec16.loader.exec_module(wav16)
    t = np.arange(22050) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", np.stack([tone, tone], 1), 22050)
    src = tmp_path / "in" / "m.tsv"
    src.write_text("id\tpath\tduration\ttext\tspeaker\nu1\ta.wav\t1.000\thi\tjoe\n")
    out = tmp_path / "m16.tsv"
    assert wav16.convert(str(src), str(tmp_path / "wav"), str(out)) == 1
    assert out.read_text() == (
        "id\tpath\tduration\ttext\tspeaker\nu1\twav/u1.wav\t1.000\thi\tjoe\n"
    )
    info = sf.info(tmp_path / "wav" / "u1.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert abs(info.frames - 16000) <= 1
    x, _ = sf.read(tmp_path / "wav" / "u1.wav")
    assert 0.45 < np.abs(x).max() < 0.55  # the level is kept
    src.write_text("id\tpath\tduration\ttext\nu1\ta.wav\n")
    with pytest.raises(wav16.S2SError, match=r"m\.tsv:2: expected 4 .*found 2"):
        wav16.convert(str(src), str(tmp_path / "wav"), str(out))
    src.write_text("id\tpath\tduration\ttext\nu1\ta.wav\t1\thi\nu1\ta.wav\t1\tho\n")
    with pytest.raises(wav16.S2SError, match=r"m\.tsv:3: duplicate id 'u1'"):
        wav16.convert(str(src), str(tmp_path / "wav"), str(out))
