"""Bad input for the audio reader and the speech manifest reader, generated: every
file either decodes to sane samples or fails with an `S2SError` naming it (and the
manifest line)."""

import io
import math
import re
import struct

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s.data.audio import audio_seconds, load_audio, read_manifest
from s2s.errors import S2SError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
RATE = 16000
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", None)}


def encode(ext: str, seconds: float = 0.25, rate: int = RATE, channels: int = 1):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * 440 * t)[:, None].repeat(channels, 1)
    fmt, subtype = FORMATS[ext]
    buf = io.BytesIO()
    soundfile.write(buf, wave.astype(np.float32), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


VALID = {ext: encode(ext) for ext in FORMATS}


@pytest.fixture
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-audio")


def check_load(path, max_seconds=None):
    """load_audio's contract: sane samples, or an S2SError starting with the path."""
    try:
        wave = load_audio(path, RATE, max_seconds=max_seconds)
    except S2SError as e:
        assert str(e).startswith(f"{path}: "), str(e)
        return None
    assert wave.dim() == 1 and wave.numel() > 0 and wave.isfinite().all()
    assert wave.abs().max() <= 1.0 + 1e-6  # integer files stay in [-1, 1]
    seconds = audio_seconds(path)  # the header agrees with what was decoded
    assert abs(wave.numel() - seconds * RATE) <= RATE * 0.05 + 2
    return wave


@FUZZ
@given(
    ext=st.sampled_from(sorted(FORMATS)),
    magic=st.sampled_from([b"", b"RIFF\x00\x01\x00\x00WAVEfmt ", b"fLaC", b"OggS"]),
    noise=st.binary(max_size=300),
)
def test_fuzz_random_bytes(files, ext, magic, noise):
    path = files / f"noise.{ext}"
    path.write_bytes(magic + noise)
    check_load(path)


@FUZZ
@given(ext=st.sampled_from(sorted(FORMATS)), frac=st.floats(0, 1))
def test_fuzz_truncated_files(files, ext, frac):
    """A valid file cut anywhere: an error, or a prefix of the audio."""
    data = VALID[ext]
    path = files / f"cut.{ext}"
    path.write_bytes(data[: int(frac * len(data))])
    wave = check_load(path)
    if wave is not None:
        assert wave.numel() <= 0.25 * RATE + 2


# Offsets of the canonical 44-byte WAV header's fields.
WAV_FIELDS = {
    "riff size": (4, "<I"),
    "fmt size": (16, "<I"),
    "format tag": (20, "<H"),
    "channels": (22, "<H"),
    "sample rate": (24, "<I"),
    "byte rate": (28, "<I"),
    "block align": (32, "<H"),
    "bits": (34, "<H"),
    "data size": (40, "<I"),
}
ABSURD = st.sampled_from([0, 1, 2, 3, 7, 255, 65535, 2**31 - 1, 2**32 - 1])


@FUZZ
@given(
    field=st.sampled_from(sorted(WAV_FIELDS)),
    value=ABSURD | st.integers(0, 2**32 - 1),
)
def test_fuzz_wav_header_values(files, field, value):
    """Zero channels, a 1 Hz or 4 GHz rate, a 4 GB data size ...: an error or
    sane audio, never a crash or an allocation sized by the lie."""
    offset, fmt = WAV_FIELDS[field]
    data = bytearray(encode("wav", channels=2))
    struct.pack_into(fmt, data, offset, value % (256 ** struct.calcsize(fmt)))
    path = files / "header.wav"
    path.write_bytes(bytes(data))
    check_load(path)


def test_empty_file_zero_samples_and_absurd_rates(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    header_only = tmp_path / "header-only.wav"
    header_only.write_bytes(VALID["wav"][:44])  # a valid WAV with 0 samples
    for path, reason in (
        (tmp_path / "zero.wav", "empty file"),
        (header_only, r"empty audio \(0 samples\)"),
    ):
        for read in (audio_seconds, lambda p: load_audio(p, RATE)):
            with pytest.raises(S2SError, match=rf"{path.name}: {reason}"):
                read(path)
    for rate in (1, 999, 2_000_000):
        data = bytearray(VALID["wav"])
        struct.pack_into("<I", data, 24, rate)
        path = tmp_path / f"rate{rate}.wav"
        path.write_bytes(bytes(data))
        with pytest.raises(S2SError, match=rf"rate{rate}\.wav: sample rate {rate} Hz"):
            load_audio(path, RATE)
    # Rates with no common factor would need a (rate x 16000) resampling kernel.
    for rate in (16_001, 44_101, 767_999):
        data = bytearray(VALID["wav"])
        struct.pack_into("<I", data, 24, rate)
        path = tmp_path / f"rate{rate}.wav"
        path.write_bytes(bytes(data))
        with pytest.raises(S2SError, match=rf"cannot resample {rate} Hz to 16000 Hz"):
            load_audio(path, RATE)
        assert audio_seconds(path) > 0  # the header itself is fine


def test_not_a_regular_file(tmp_path):
    with pytest.raises(S2SError, match=r"is a directory"):
        load_audio(tmp_path, RATE)
    with pytest.raises(S2SError, match=r"^/dev/null: not a regular file"):
        audio_seconds("/dev/null")


@FUZZ
@given(
    rate=st.sampled_from([8000, 16000, 22050, 44100]),
    seconds=st.floats(0.05, 0.5),
    limit=st.floats(0.01, 1.0),
)
def test_fuzz_rate_and_length_limit(files, rate, seconds, limit):
    """Other rates are resampled to the one asked for; longer than the limit is an
    error naming the file, before it is decoded."""
    path = files / "tone.flac"
    path.write_bytes(encode("flac", seconds, rate))
    frames = int(seconds * rate)
    if frames > limit * rate:
        with pytest.raises(S2SError, match=r"tone\.flac: .* longer than the limit"):
            load_audio(path, RATE, max_seconds=limit)
    else:
        wave = check_load(path, max_seconds=limit)
        assert wave.numel() == math.ceil(frames * RATE / rate)


# --- manifests --------------------------------------------------------------------

HEADER = b"id\tpath\tduration\ttext\n"
FIELD = st.sampled_from(["a", "b", "x y", "", " ", "a.wav", "\u00e9", "\x00", "\r"])
DURATION = st.sampled_from(
    ["1", "0.5", "2e0", "0", "-1", "nan", "inf", "-inf", "abc", "", "1e400", "1,5"]
)


@st.composite
def manifests(draw) -> bytes:
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        fields = [draw(FIELD), draw(FIELD), draw(DURATION), draw(FIELD)]
        if draw(st.booleans()):  # too few or too many columns
            fields = fields[: draw(st.integers(0, 3))] + draw(
                st.lists(FIELD, max_size=2)
            )
        rows.append("\t".join(fields).encode())
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    header = draw(
        st.sampled_from(
            [HEADER, b"\xef\xbb\xbf" + HEADER, b"id\tpath\tduration\n", b""]
        )
    )
    body = header.replace(b"\n", eol) + b"".join(r + eol for r in rows)
    if draw(st.booleans()):  # one bad byte, or the file cut short
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.sampled_from([b"\xff", b""]))
    return body


def check_manifest(path, data: bytes, require_text: bool):
    """The contract: sane rows, one per line; or the first bad line is named."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    try:
        utts = read_manifest(path, require_text=require_text)
    except S2SError as e:
        msg = str(e)
        assert msg.startswith(f"{path}"), msg
        m = re.match(rf"{re.escape(str(path))}:(\d+): ", msg)
        if m is None:  # about the whole file
            assert lines == [] and "empty manifest" in msg, msg
            return
        k = int(m.group(1))
        assert 1 <= k <= len(lines), msg
        if k > 2:  # everything before the named line reads
            path.write_bytes(b"\n".join(lines[: k - 1]) + b"\n")
            assert len(read_manifest(path, require_text=require_text)) == k - 2
        return
    assert len(utts) == len(lines) - 1  # no row lost
    assert len({u.id for u in utts}) == len(utts)
    for u in utts:
        assert u.id and u.id == u.id.strip() and "\x00" not in u.id + str(u.path)
        assert math.isfinite(u.duration) and u.duration > 0
        assert u.path.is_absolute() and u.path.name
        assert (u.text is not None) if require_text else True


@FUZZ
@given(data=manifests() | st.binary(max_size=100), require_text=st.booleans())
def test_fuzz_manifest(files, data, require_text):
    path = files / "m.tsv"
    path.write_bytes(data)
    check_manifest(path, data, require_text)


def test_manifest_missing_or_directory(tmp_path):
    with pytest.raises(S2SError, match=r"nope\.tsv: cannot read manifest"):
        read_manifest(tmp_path / "nope.tsv")
    with pytest.raises(S2SError, match=rf"{tmp_path}: cannot read manifest"):
        read_manifest(tmp_path)


def test_manifest_nul_byte_names_the_line(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_bytes(HEADER + b"a\ta.wav\t1\tx\nb\tb\x00.wav\t1\ty\n")
    with pytest.raises(S2SError, match=r"m\.tsv:3: contains a NUL byte"):
        read_manifest(path)
