"""Long recordings are read a window at a time (issue 22, Memory): `AudioReader`
gives the whole file's samples stretch by stretch, `s2s transcribe` and `s2s prep
speech` never ask for more than a window, and the results equal the in-memory ones.
benchmarks/long_audio_memory.py measures the peak memory against the length."""

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from s2s.checkpoint import load_speech_model
from s2s.data import prep_speech as prep_module
from s2s.data.audio import AudioReader, load_audio
from s2s.data.binarized import ShardWriter
from s2s.data.prep_speech import SpeechPrepOptions, prep_speech
from s2s.data.speech import SpeechData
from s2s.decode import transcribe as transcribe_module
from s2s.decode.api import Transcriber as ApiTranscriber
from s2s.decode.transcribe import Transcriber
from s2s.errors import S2SError
from toy import RATE, tone_texts, tone_wave


@pytest.mark.parametrize(
    "rate, channels, subtype",
    [
        (16000, 1, "PCM_16"),
        (44100, 2, "PCM_16"),
        (8000, 1, "FLOAT"),
        (22050, 1, "PCM_24"),
    ],
)
def test_reader_stretches_equal_the_whole_file(tmp_path, rate, channels, subtype):
    rng = np.random.default_rng(rate)
    x = rng.uniform(-0.5, 0.5, (rate * 3 + 123, channels)).astype(np.float32)
    path = tmp_path / "a.wav"
    soundfile.write(str(path), x, rate, subtype=subtype)
    data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    whole = torch.from_numpy(data).mean(1)
    if rate != 16000:
        whole = torchaudio.functional.resample(whole, rate, 16000)
    reader = AudioReader(path, 16000)
    assert reader.num_samples == len(whole)
    assert torch.equal(load_audio(path, 16000), reader.read(0, reader.num_samples))
    n = len(whole)
    for a, b in [(0, 1000), (5, 16001), (12345, 30000), (n - 777, n), (40000, n + 99)]:
        part = reader.read(a, b)
        assert len(part) == min(b, n) - a
        torch.testing.assert_close(part, whole[a:b], atol=1e-6, rtol=0)


def test_reader_errors_name_the_file_and_context(tmp_path):
    path = tmp_path / "nan.wav"
    x = np.zeros(16000, np.float32)
    x[12000] = np.nan
    soundfile.write(str(path), x, 16000, subtype="FLOAT")
    reader = AudioReader(path, 16000, context="m.tsv:3")
    assert len(reader.read(0, 8000)) == 8000  # the damage is further on
    with pytest.raises(S2SError, match=r"^m\.tsv:3: .*nan\.wav: audio contains NaN"):
        reader.read(8000, 16000)
    with pytest.raises(S2SError, match=r"^m\.tsv:3: .*missing\.wav: file not found"):
        AudioReader(tmp_path / "missing.wav", 16000, context="m.tsv:3")


def test_shard_writer_drops_a_half_written_item(tmp_path):
    w = ShardWriter(tmp_path, "x", "float16", 100)
    w.add(np.ones((3, 2)))

    def blocks():
        yield np.full((4, 2), 2.0)
        raise S2SError("bad block")

    with pytest.raises(S2SError, match="bad block"):
        w.add_blocks(blocks())
    assert w.add_blocks([np.full((2, 2), 5.0), np.full((1, 2), 6.0)]) == 3
    (stem,) = w.close()
    data = np.fromfile(tmp_path / f"{stem}.bin", np.float16).reshape(-1, 2)
    assert np.load(tmp_path / f"{stem}.idx.npy").tolist() == [0, 3, 6]
    assert data[:, 0].tolist() == [1, 1, 1, 5, 5, 6]


def _spy_reads(monkeypatch) -> list[int]:
    """Lengths of every AudioReader.read from now on."""
    reads: list[int] = []
    real = AudioReader.read

    def read(self, start, stop):
        reads.append(stop - start)
        return real(self, start, stop)

    monkeypatch.setattr(AudioReader, "read", read)
    return reads


def test_prep_streams_a_long_held_out_recording(tone_raw, tmp_path, monkeypatch):
    # Two 12 s held-out recordings, at the model's rate and at 8 kHz, prepared in
    # blocks of 200 frames: the whole files' features, and no read over a block.
    text = " ".join(tone_texts(20, seed=3))
    rows = ["id\tpath\tduration\ttext"]
    for rate in (RATE, 8000):
        wave = tone_wave(text, rate=rate)
        soundfile.write(str(tmp_path / f"long{rate}.wav"), wave, rate)
        rows.append(f"r{rate}\t{tmp_path}/long{rate}.wav\t{len(wave) / rate}\t{text}")
    (tmp_path / "valid.tsv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(prep_module, "_BLOCK_FRAMES", 200)
    reads = _spy_reads(monkeypatch)
    opts = SpeechPrepOptions(
        train=str(tone_raw / "train.tsv"),
        valid=str(tmp_path / "valid.tsv"),
        chars=True,
        num_mels=20,
    )
    prep_speech(opts, tmp_path / "bin", log=lambda m: None)
    data = SpeechData(tmp_path / "bin", "valid")
    extract = data.features.extractor()
    assert max(reads) <= 199 * 160 + 400  # one block of frames
    assert data.references() == [text, text]
    for k, rate in enumerate((RATE, 8000)):
        whole = extract(load_audio(tmp_path / f"long{rate}.wav", RATE)).numpy()
        assert len(whole) > 5 * 200
        stored = data.feats[k]  # float16 on disk, read back as float32
        assert stored.shape == whole.shape
        expected = whole.astype(np.float16).astype(np.float32)
        if rate == RATE:  # frames depend on their own samples only: exact
            np.testing.assert_array_equal(stored, expected)
        else:  # resampled stretch by stretch: float rounding, which the log
            # amplifies a little in near-silent mel bins (floor -15.9)
            np.testing.assert_allclose(stored, expected, atol=0.05, rtol=0)


@pytest.mark.parametrize("mode", ["ctc", "joint"])
def test_transcribe_reads_a_long_file_a_window_at_a_time(
    tone_run, joint_run, tmp_path, monkeypatch, mode
):
    run = tone_run if mode == "ctc" else joint_run
    text = " ".join(tone_texts(12, seed=7))
    wave = tone_wave(text)
    soundfile.write(str(tmp_path / "long.wav"), wave, RATE)
    decode = dict(chunk_seconds=1.5, chunk_overlap=0.5)
    model, cfg, vocab, features, cmvn = load_speech_model(run / "best.pt")
    for k, v in decode.items():
        setattr(cfg.decode, k, v)
    in_memory = Transcriber(
        model, vocab, features, cmvn, cfg.decode, torch.device("cpu")
    )
    expected = in_memory.transcribe([load_audio(tmp_path / "long.wav", RATE)])
    monkeypatch.setattr(transcribe_module, "_ENERGY_FRAMES", 100)
    reads = _spy_reads(monkeypatch)
    api = ApiTranscriber(run / "best.pt", device="cpu", threads=1, **decode)
    assert api.transcribe(tmp_path / "long.wav") == expected[0]
    assert len(wave) > 4 * 1.5 * RATE
    assert max(reads) <= 1.5 * RATE + 400  # a window at most
