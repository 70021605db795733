import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from s2s.data.audio import Utterance, load_audio, read_manifest
from s2s.errors import S2SError

FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
}


def _tone(seconds, rate, freq=440.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 1:
        return mono.astype(np.float32)
    return np.stack([mono, mono], axis=1).astype(np.float32)  # (N, 2)


def _write(path, data, rate):
    fmt, subtype = FORMATS[path.suffix[1:]]
    soundfile.write(str(path), data, rate, format=fmt, subtype=subtype)
    return path


def _peak_hz(wave, rate):
    spectrum = torch.fft.rfft(wave).abs()
    return spectrum.argmax().item() * rate / wave.numel()


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
@pytest.mark.parametrize(("rate", "channels"), [(22050, 2), (8000, 1)])
def test_load_resamples_and_mixes_down(tmp_path, ext, rate, channels):
    path = _write(tmp_path / f"tone.{ext}", _tone(0.5, rate, channels=channels), rate)
    wave = load_audio(path, sample_rate=16000)
    assert wave.dim() == 1 and wave.dtype == torch.float32
    expected = math.ceil(int(0.5 * rate) * 16000 / rate)
    assert abs(wave.numel() - expected) <= 2  # Vorbis may round the last packet
    assert abs(_peak_hz(wave, 16000) - 440.0) < 5  # still 440 Hz at the new rate
    assert 0.4 < wave.abs().max() < 0.6


def test_stereo_is_averaged(tmp_path):
    left = _tone(0.1, 16000)
    path = _write(tmp_path / "st.wav", np.stack([left, np.zeros_like(left)], 1), 16000)
    wave = load_audio(path, sample_rate=16000)
    expected = torch.from_numpy(left) / 2
    torch.testing.assert_close(wave, expected, atol=1e-4, rtol=0)


def test_corrupt_missing_and_empty_files_name_the_path(tmp_path):
    corrupt = tmp_path / "bad.ogg"
    corrupt.write_bytes(b"OggS" + bytes(range(256)) * 4)
    with pytest.raises(S2SError, match=r"bad\.ogg: cannot decode audio"):
        load_audio(corrupt, 16000)
    with pytest.raises(S2SError, match=r"nope\.wav: file not found"):
        load_audio(tmp_path / "nope.wav", 16000)
    (tmp_path / "zero.flac").write_bytes(b"")
    with pytest.raises(S2SError, match=r"zero\.flac: empty file \(0 bytes\)"):
        load_audio(tmp_path / "zero.flac", 16000)
    empty = _write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(S2SError, match=r"empty\.wav: empty audio \(0 samples\)"):
        load_audio(empty, 16000)


def test_too_long_file_is_refused(tmp_path):
    path = _write(tmp_path / "long.wav", _tone(2.5, 8000), 8000)
    assert load_audio(path, 16000, max_seconds=3.0).numel() == 40000
    with pytest.raises(S2SError, match=r"long\.wav: 2\.5 s is longer than .* 2\.0 s"):
        load_audio(path, 16000, max_seconds=2.0)


def test_non_finite_samples_are_refused(tmp_path):
    data = _tone(0.1, 16000)
    data[10] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), data, 16000, subtype="FLOAT")
    with pytest.raises(S2SError, match=r"nan\.wav: audio contains NaN"):
        load_audio(path, 16000)


def test_float_samples_far_beyond_full_scale_are_refused(tmp_path):
    """Samples of 1e15 used to overflow the features into NaN and a traceback."""
    path = tmp_path / "loud.wav"
    soundfile.write(str(path), _tone(0.1, 16000) * 1e15, 16000, subtype="FLOAT")
    with pytest.raises(S2SError, match=r"loud\.wav: samples reach \de\+14, beyond"):
        load_audio(path, 16000)
    soundfile.write(str(path), _tone(0.1, 16000) * 30000, 16000, subtype="FLOAT")
    assert load_audio(path, 16000).abs().max() > 1000  # int16-scaled floats load


# --- manifests --------------------------------------------------------------------

HEADER = "id\tpath\tduration\ttext\n"


def _manifest(tmp_path, body, header=HEADER):
    path = tmp_path / "sub" / "train.tsv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((header + body).encode() if isinstance(body, str) else body)
    return path


def test_manifest_rows_and_relative_paths(tmp_path):
    path = _manifest(
        tmp_path, "a\twav/a.wav\t1.5\thello world\nb\t/abs/b.flac\t2\thi\n"
    )
    assert read_manifest(path) == [
        Utterance("a", tmp_path / "sub" / "wav" / "a.wav", 1.5, "hello world"),
        Utterance("b", Path("/abs/b.flac"), 2.0, "hi"),
    ]


def test_manifest_extra_columns_are_ignored(tmp_path):
    header = "id\tpath\tduration\ttext\tspeaker\n"
    path = _manifest(tmp_path, "a\ta.wav\t1.5\thi there\tm\n", header=header)
    assert read_manifest(path)[0].text == "hi there"
    bad = _manifest(tmp_path, "a\ta.wav\t1.5\thi\n", header=header)
    with pytest.raises(S2SError, match=r":2: expected 5 .*speaker\), found 4"):
        read_manifest(bad)


def test_manifest_text_is_optional_for_transcription(tmp_path):
    path = _manifest(tmp_path, "a\ta.wav\t1.0\t\nb\tb.wav\t1.0\n")
    assert [u.text for u in read_manifest(path, require_text=False)] == [None, None]
    with pytest.raises(S2SError, match=r"train\.tsv:2: empty transcript"):
        read_manifest(path)
    no_text = _manifest(tmp_path, "a\ta.wav\t1.0\n", header="id\tpath\tduration\n")
    assert read_manifest(no_text, require_text=False)[0].text is None
    with pytest.raises(S2SError, match=r"train\.tsv:1: header"):
        read_manifest(no_text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a\ta.wav\t1.0\n", r":2: expected 4 tab-separated columns"),
        ("a\ta.wav\t1.0\tx\ty\n", r":2: expected 4 .* found 5"),
        ("a\ta.wav\tlong\tx\n", r":2: duration must be a positive number"),
        ("a\ta.wav\t-1\tx\n", r":2: duration"),
        ("a\ta.wav\tnan\tx\n", r":2: duration"),
        (
            "a\ta.wav\t1\tx\nb\tb.wav\t1\ty\na\tc.wav\t1\tz\n",
            r":4: duplicate id 'a' .*line 2",
        ),
        ("a\ta.wav\t1\tx\n\nb\tb.wav\t1\ty\n", r":3: blank line"),
        ("\ta.wav\t1\tx\n", r":2: empty id"),
        ("a\t\t1\tx\n", r":2: empty audio path"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, body, message):
    path = _manifest(tmp_path, body)
    with pytest.raises(S2SError, match=r"train\.tsv" + message):
        read_manifest(path)


def test_manifest_encoding_and_header_errors(tmp_path):
    bad_bytes = _manifest(tmp_path, HEADER.encode() + b"a\ta.wav\t1\tcaf\xe9\n")
    with pytest.raises(S2SError, match=r"train\.tsv:2: not valid UTF-8 \(byte 0xe9"):
        read_manifest(bad_bytes)
    with pytest.raises(S2SError, match=r"train\.tsv:1: header"):
        read_manifest(
            _manifest(tmp_path, "a\ta.wav\t1\tx\n", header="id\tpath\ttext\n")
        )
    with pytest.raises(S2SError, match=r"missing\.tsv: cannot read manifest"):
        read_manifest(tmp_path / "missing.tsv")
    crlf_bom = _manifest(
        tmp_path, "\ufeff" + HEADER.replace("\n", "\r\n") + "a\ta\t1\tx\r\n", ""
    )
    assert read_manifest(crlf_bom)[0].text == "x"
