"""recipes/asr-en: the training-only augmentation (pitch, room, telephone band),
the extra training sentences, the LM text and the word list (no TTS engine is
run: the planning and the signal processing are pure Python and numpy)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "asr-en"
sys.path.insert(0, str(RECIPE))  # for the scripts' own imports (tts, spoken_form)


def load(name: str):
    """A script of the recipe under its own module name (mt-de-en has a
    prepare_data.py too)."""
    spec = importlib.util.spec_from_file_location(
        f"asr_en_{name}", RECIPE / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare_data = load("prepare_data")
tts = load("tts")
wordlist = load("wordlist")

SR = tts.SR


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)


def test_room_impulse_response_direct_path_energy_and_decay():
    h = tts.room_impulse_response(0.5, 6.0, np.random.default_rng(0))
    assert len(h) == SR // 2 and h[0] == 1.0
    # the tail's energy is drr_db below the direct path's
    assert 10 * np.log10((h[1:] ** 2).sum()) == pytest.approx(-6.0, abs=1e-6)
    # 60 dB down at rt60: the last tenth holds almost nothing of the tail
    tenth = len(h) // 10
    assert (h[-tenth:] ** 2).sum() < 1e-4 * (h[1 : tenth + 1] ** 2).sum()


def test_reverberate_keeps_the_speech_and_adds_a_tail():
    x = tone(440, 0.5)
    y = tts.reverberate(x, 0.4, 60.0, np.random.default_rng(0))
    assert len(y) == len(x) + int(0.4 * SR / 2)
    # at 60 dB direct-to-reverberant the room is nearly dry
    assert np.abs(y[: len(x)] - x).max() < 0.01
    wet = tts.reverberate(x, 0.4, 0.0, np.random.default_rng(0))
    assert np.abs(wet[: len(x)] - x).max() > 0.1
    assert np.abs(wet[len(x) :]).max() > 0.01  # the room rings on


@pytest.mark.parametrize(
    "hz, kept", [(100, False), (1000, True), (3000, True), (6000, False)]
)
def test_telephone_band_keeps_300_to_3400_hz(hz, kept):
    x = tone(hz)
    ratio = (tts.telephone_band(x) ** 2).sum() / (x**2).sum()
    assert ratio > 0.99 if kept else ratio < 1e-3


def args_for(tmp_path: Path, *extra: str):
    argv = ["prepare_data.py", "--sentences", "x", "--out", str(tmp_path), *extra]
    old, sys.argv = sys.argv, argv
    try:
        return prepare_data.parse_args()
    finally:
        sys.argv = old


def sentences(n: int):
    return [(i, f"s {i}", f"s {i}", f"sentence number {i}") for i in range(n)]


AUGMENT = ("--pitch-prob", "1", "--reverb-prob", "1", "--telephone-prob", "1")


def test_augmentation_is_for_train_only_and_leaves_the_other_draws(tmp_path):
    s = sentences(12)
    parts = {"test": s[:2], "valid": s[2:4], "train": s[4:]}
    voices = [
        v for v in tts.all_voices() if v not in ("flite:slt", "festival:ked_diphone")
    ]
    plain = prepare_data.plan_utterances(parts, voices, args_for(tmp_path))
    aug = prepare_data.plan_utterances(parts, voices, args_for(tmp_path, *AUGMENT))
    assert [j["id"] for j in plain] == [j["id"] for j in aug]
    keys = ("voice", "speed", "noise", "snr_db", "peak_db", "noise_seed")
    for p, a in zip(plain, aug, strict=True):
        assert [p[k] for k in keys] == [a[k] for k in keys]
        assert not p["pitch_cents"] and p["rt60"] is None and not p["telephone"]
        if a["split"] == "train":
            assert 0 < abs(a["pitch_cents"]) <= 300
            assert 0.2 <= a["rt60"] <= 0.8 and 0.0 <= a["drr_db"] <= 12.0
            assert a["telephone"]
        else:  # valid, test, test_seen: the same audio as without augmentation
            assert a == p


def test_lm_text_leaves_out_valid_and_test(tmp_path):
    s = sentences(10)
    parts = {"test": s[:2], "valid": s[2:4], "train": s[4:8]}
    prepare_data.write_lm_text(s, parts, str(tmp_path))
    lines = (tmp_path / "lm_text.txt").read_text().splitlines()
    # train's sentences and the two never synthesised, in line order
    assert lines == [norm for *_, norm in s[4:]]


def test_dictionary_words_are_normalised_single_words(tmp_path):
    d = tmp_path / "dict"
    d.write_text("Aaron\nAaron's\ncafé\nO'Neil\nx-ray\nice cream\n'tis\n")
    words = wordlist.dictionary_words(d)
    # x-ray and ice cream become two words: not entries of a word list
    assert words == {"aaron", "aaron's", "cafe", "o'neil", "tis"}
