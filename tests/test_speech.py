"""Speech end to end on sine-tone words: prep, training (CTC through the shared
Trainer), resume, search and chunked transcription."""

import json

import numpy as np
import pytest
import soundfile
import torch

from conftest import TINY_CTC
from s2s.checkpoint import load_checkpoint, load_model, load_speech_model
from s2s.config import load_config
from s2s.data.prep_speech import SpeechPrepOptions, prep_speech
from s2s.data.speech import Noise, SpeechData, add_noise, collate_speech
from s2s.decode.ctc import ctc_greedy, ctc_prefix_beam_search
from s2s.decode.transcribe import Transcriber, chunk_spans
from s2s.errors import S2SError
from s2s.metrics import wer_cer
from s2s.train.trainer import Trainer
from toy import RATE, tone_texts, tone_wave

# --- prep -------------------------------------------------------------------------


def test_prep_writes_features_targets_and_cmvn(tone_bin, tone_raw):
    data = SpeechData(tone_bin, "train")
    assert len(data) == 60 and data.features.num_mels == 20
    feats = data.feats[0]
    assert feats.dtype == np.float32 and feats.shape[1] == 20
    wave, _ = soundfile.read(str(tone_raw / "wav" / "train000.wav"))
    assert len(feats) == 1 + (len(wave) - 400) // 160
    vocab = data.vocab()
    assert vocab.decode([data.tgt[0].tolist()])[0] == data.references()[0]
    # CMVN from the training set: normalised training frames are ~N(0, 1).
    batch = collate_speech(data, np.arange(len(data)))
    valid = torch.arange(batch.feats.size(1)) < batch.feat_lens[:, None]
    frames = batch.feats[valid]  # (frames, F)
    assert frames.mean(0).abs().max() < 1e-2
    assert (frames.std(0) - 1).abs().max() < 1e-2


def test_prep_bad_audio_names_line_and_file_or_is_skipped(tone_raw, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + bytes(range(200)))
    rows = (tone_raw / "train.tsv").read_text().splitlines()
    rows.insert(3, f"bad\t{tmp_path / 'bad.wav'}\t1.0\tab")
    manifest = tmp_path / "train.tsv"
    manifest.write_text("\n".join(rows).replace("\twav/", f"\t{tone_raw}/wav/") + "\n")
    opts = SpeechPrepOptions(
        train=str(manifest), valid=str(tone_raw / "valid.tsv"), chars=True, num_mels=20
    )
    with pytest.raises(S2SError, match=r"train\.tsv:4: .*bad\.wav: cannot decode"):
        prep_speech(opts, tmp_path / "bin", log=lambda m: None)
    opts.skip_bad, opts.max_seconds = True, 1.0
    stats = prep_speech(opts, tmp_path / "bin", log=lambda m: None)
    assert stats["train"]["skipped_bad_audio"] == 1
    assert stats["train"]["dropped_too_long"] > 0  # 1.0 s limit: long ones go
    assert stats["train"]["kept"] == 60 - stats["train"]["dropped_too_long"]
    assert stats["valid"]["kept"] == 12  # held-out data is never filtered


# --- noise -------------------------------------------------------------------------


def _log_mel(T=400, F=20, seed=0):
    # Speech-like: loud bands in some frames, a low floor elsewhere (log power).
    g = np.random.default_rng(seed)
    quiet = np.log(g.exponential(1e-3, (T, F)))
    loud = np.log(g.exponential(1.0, (T, F))) + np.linspace(3, 0, F)
    return np.where(g.random((T, 1)) < 0.5, loud, quiet).astype(np.float32)


@pytest.mark.parametrize("colour", [0.0, 0.5, 1.0])
def test_noise_adds_power_at_the_snr_asked(colour):
    x = _log_mel()
    torch.manual_seed(0)
    y = add_noise(x, 10.0, colour)
    assert y.shape == x.shape and y.dtype == np.float32
    assert (y >= x - 1e-5).all()  # powers add: no cell gets quieter
    added = np.exp(y.astype(np.float64)) - np.exp(x.astype(np.float64))
    snr = 10 * np.log10(np.exp(x.astype(np.float64)).sum() / added.sum())
    assert abs(snr - 10.0) < 0.3  # Exp(1) cells: the SNR holds on average
    # The quiet frames are where noise shows; the loud bands keep their shape.
    assert np.abs(y - x).max() > 3
    torch.manual_seed(0)
    assert np.array_equal(add_noise(x, 10.0, colour), y)  # torch's RNG decides
    # 80 dB down: only the faintest cells move.
    assert np.median(np.abs(add_noise(x, 80.0, colour) - x)) < 1e-4


def test_noise_colour_moves_between_flat_and_speech_shaped():
    x = _log_mel()
    clean = np.exp(x.astype(np.float64))
    for colour, close in ((0.0, "flat"), (1.0, "speech")):
        torch.manual_seed(1)
        added = np.exp(add_noise(x, 0.0, colour).astype(np.float64)) - clean
        per_band = added.mean(axis=0)  # (F,)
        target = np.ones_like(per_band) if close == "flat" else clean.mean(axis=0)
        ratio = per_band / target
        assert ratio.std() / ratio.mean() < 0.15, close


def test_only_training_batches_get_noise(tone_bin):
    from s2s.train.ctc_task import CTCTask

    data = SpeechData(tone_bin, "train")
    ids = np.arange(4)
    torch.manual_seed(0)
    clean = collate_speech(data, ids)
    never = collate_speech(data, ids, Noise(0.0, 5, 25))
    always = collate_speech(data, ids, Noise(1.0, 5, 25))
    assert torch.equal(clean.feats, never.feats)
    assert torch.equal(clean.feat_lens, always.feat_lens)
    for b, n in enumerate(always.feat_lens.tolist()):
        assert not torch.equal(always.feats[b, :n], clean.feats[b, :n])
        assert torch.equal(always.feats[b, n:], clean.feats[b, n:])  # padding stays 0
    cfg = load_config(None, [*TINY_CTC, "model.noise_prob=1"])
    task = CTCTask(cfg, tone_bin)
    valid = SpeechData(tone_bin, "valid")
    v_ids = np.arange(2)
    held_out = collate_speech(valid, v_ids).feats
    assert torch.equal(task.collate("valid", v_ids).feats, held_out)
    assert not torch.equal(task.collate("train", ids).feats, clean.feats)


@pytest.mark.parametrize(
    "sets, message",
    [
        (["model.task=translation", "model.noise_prob=0.5"], "needs model.task=ctc"),
        (["model.noise_snr_min=40"], "noise_snr_min \\(40\\) is above"),
        (["model.noise_prob=1.5"], "noise_prob"),
    ],
)
def test_bad_noise_settings_are_errors(sets, message):
    with pytest.raises(S2SError, match=message):
        load_config(None, [*TINY_CTC, *sets])


# --- training ---------------------------------------------------------------------


def test_speech_batches_sort_by_frames():
    # Frame counts drive the cost; sorting by transcript length pads them a lot.
    from s2s.data.batching import make_batches

    rng = np.random.default_rng(0)
    frames = rng.integers(100, 2000, 500)
    labels = (frames / 10 * rng.uniform(0.5, 1.5, 500)).astype(int)

    def fill(batches):
        return sum(frames[b].sum() for b in batches) / sum(
            frames[b].max() * len(b) for b in batches
        )

    by_src = make_batches(frames, labels, 8000, sort_by="src")
    assert fill(by_src) > 0.95 > fill(make_batches(frames, labels, 8000, sort_by="tgt"))
    assert sorted(np.concatenate(by_src).tolist()) == list(range(500))


def test_ctc_training_overfits_the_tones(tone_run):
    lines = (tone_run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < 0.1 * losses[0]
    assert all(r["inf_losses"] == 0 for r in records if "loss" in r)
    last = [r for r in records if "valid_wer" in r][-1]
    assert last["valid_wer"] < 10 and last["valid_cer"] < 5
    ckpt = load_checkpoint(tone_run / "best.pt")
    assert {"features", "cmvn", "vocab"} <= set(ckpt)
    with pytest.raises(S2SError, match="s2s translate needs a translation model"):
        load_model(tone_run / "best.pt")


def _train(data, out, steps, resume=False):
    # SpecAugment, noise and dropout on: resuming must restore the RNG state too.
    extra = ["model.specaugment=true", "model.freq_width=4", "model.dropout=0.2"]
    extra += ["model.noise_prob=0.5"]
    cfg = load_config(
        None,
        [*TINY_CTC, *extra, f"train.max_steps={steps}", "train.save_every=3"],
    )
    cfg.train.valid_every = 4
    Trainer(cfg, data, out, resume=resume).run()
    return load_checkpoint(out / "last.pt")


def test_ctc_resume_continues_exactly(tone_bin, tmp_path):
    # 60 utterances at 1500 frames: ~4 batches an epoch, so 7 steps cross one.
    straight = _train(tone_bin, tmp_path / "a", 7)
    _train(tone_bin, tmp_path / "b", 4)
    resumed = _train(tone_bin, tmp_path / "b", 7, resume=True)
    assert straight["state"]["step"] == resumed["state"]["step"] == 7
    assert straight["state"]["epoch"] >= 1
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    # An averaged checkpoint keeps what decoding needs (features, CMVN).
    from s2s.train.average import average_checkpoints

    average_checkpoints(tmp_path / "b", tmp_path / "avg.pt", last=2)
    _, _, _, features, cmvn = load_speech_model(tmp_path / "avg.pt")
    assert features.num_mels == 20 and cmvn.count > 0


def test_infinite_ctc_losses_are_counted_and_shown(tone_raw, tmp_path):
    import io

    from rich.console import Console

    rows = (tone_raw / "train.tsv").read_text().splitlines()[:9]
    # 0.3 s of audio (7 frames after subsampling) cannot carry 30 characters.
    rows += [f"fast{k}\twav/train00{k}.wav\t0.3\t{'abcde' * 6}" for k in (1, 2)]
    manifest = tmp_path / "fast.tsv"
    manifest.write_text("\n".join(rows).replace("\twav/", f"\t{tone_raw}/wav/") + "\n")
    logs = []
    opts = SpeechPrepOptions(
        train=str(manifest), valid=str(tone_raw / "valid.tsv"), chars=True, num_mels=20
    )
    prep_speech(opts, tmp_path / "bin", log=logs.append)
    assert any("2 utterances have more tokens than" in m for m in logs)
    cfg = load_config(None, [*TINY_CTC, "train.max_steps=3", "train.log_every=1"])
    cfg.train.batch_tokens = 100_000  # one batch: every step sees both
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    Trainer(cfg, tmp_path / "bin", tmp_path / "run", console=console).run()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["inf_losses"] for r in records if "loss" in r] == [2, 2, 2]
    assert [r["valid_inf"] for r in records if "valid_loss" in r] == [0]
    assert "inf_losses 2" in out.getvalue()


def test_task_and_data_must_match(toy_bin, tone_bin, tmp_path):
    with pytest.raises(S2SError, match="holds translation data.*set model.task=trans"):
        Trainer(load_config(None, TINY_CTC), toy_bin, tmp_path / "a")
    with pytest.raises(S2SError, match="has 20 mel bins .* model.num_mels=20"):
        Trainer(load_config(None, [*TINY_CTC, "model.num_mels=40"]), tone_bin, tmp_path)


# --- decoding ---------------------------------------------------------------------


def _transcriber(run, **decode):
    model, cfg, vocab, features, cmvn = load_speech_model(run / "best.pt")
    for k, v in decode.items():
        setattr(cfg.decode, k, v)
    return Transcriber(model, vocab, features, cmvn, cfg.decode, torch.device("cpu"))


def _waves(texts):
    return [torch.from_numpy(tone_wave(t)) for t in texts]


def test_beam_one_equals_greedy_on_the_trained_model(tone_run):
    # The trained model is confident: nearly every frame's best symbol has most of
    # the mass, so merging alignments cannot change the single best prefix.
    tr = _transcriber(tone_run)
    log_probs = tr.log_probs(_waves(tone_texts(8, seed=5)))
    padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True)
    lengths = torch.tensor([len(lp) for lp in log_probs])
    assert padded.exp().amax(-1)[padded.exp().sum(-1) > 0].median() > 0.9
    beams = ctc_prefix_beam_search(padded, lengths, beam=1)
    assert [b[0][0] for b in beams] == ctc_greedy(padded, lengths)


def test_transcribes_unseen_tone_utterances(tone_run):
    texts = list(tone_texts(10, seed=7))
    for beam in (1, 4):
        hyps = _transcriber(tone_run, beam=beam).transcribe(_waves(texts))
        wer, cer = wer_cer(hyps, texts)
        assert cer.rate < 10, (hyps, texts)


def test_chunk_spans_cover_with_overlap():
    for T in (5, 100, 101, 250, 341, 999):
        spans = chunk_spans(T, window=100, overlap=20)
        assert spans[0][0] == 0 and spans[-1][1] == T
        assert all(a % 4 == 0 and b - a <= 100 for a, b in spans)
        for (a0, b0), (a1, _) in zip(spans, spans[1:], strict=False):
            assert a0 < a1 and b0 - a1 >= 20


def test_chunked_equals_unchunked(tone_run):
    texts = [" ".join(tone_texts(8, seed=11))]  # one ~5 s utterance
    wave = _waves(texts)
    whole = _transcriber(tone_run, chunk_seconds=60.0)
    chunked = _transcriber(tone_run, chunk_seconds=1.5, chunk_overlap=0.5)
    frames = whole.extract.num_frames(wave[0].numel())
    assert len(chunk_spans(frames, chunked.window, chunked.overlap)) >= 4
    lp_whole, lp_chunked = whole.log_probs(wave)[0], chunked.log_probs(wave)[0]
    assert lp_whole.shape == lp_chunked.shape
    assert whole.transcribe(wave) == chunked.transcribe(wave) == texts
    # Away from window edges the posteriors agree closely.
    agree = (lp_whole.argmax(-1) == lp_chunked.argmax(-1)).float().mean()
    assert agree > 0.95


def test_audio_of_other_rates_is_resampled(tone_run, tmp_path):
    text = "abc de"
    wave = tone_wave(text, rate=8000)
    soundfile.write(str(tmp_path / "x.flac"), wave, 8000)
    from s2s.data.audio import load_audio

    tr = _transcriber(tone_run)
    assert tr.transcribe([load_audio(tmp_path / "x.flac", RATE)]) == [text]


def test_select_by_cer_keeps_the_lowest_validation_cer(tone_bin, tmp_path):
    cfg = load_config(
        None,
        [
            *TINY_CTC,
            "train.max_steps=40",
            "train.valid_every=10",
            "train.select_by=cer",
        ],
    )
    Trainer(cfg, tone_bin, tmp_path).run()
    rows = [
        json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    valid = [r for r in rows if "valid_cer" in r]
    best = min(valid, key=lambda r: (r["valid_cer"], r["step"]))
    state = load_checkpoint(tmp_path / "best.pt")["state"]
    assert state["step"] == best["step"]
    assert state["best"] == pytest.approx(best["valid_cer"], abs=1e-3)  # not loss


def test_noise_cost_benchmark_prints_its_table(tone_bin):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent.parent / "benchmarks" / "noise_cost.py"
    args = [str(tone_bin), "--batch-tokens", "1500", "--batches", "2", "--repeats", "1"]
    out = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=True
    ).stdout
    assert "| no noise |" in out and "| noise on every utterance |" in out
    assert "ms a batch" in out
