"""A tiny generated 'translation' task: word-by-word German to English."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = {
    "eins": "one",
    "zwei": "two",
    "drei": "three",
    "vier": "four",
    "fünf": "five",
    "rot": "red",
    "blau": "blue",
    "grün": "green",
    "haus": "house",
    "baum": "tree",
    "hund": "dog",
    "katze": "cat",
    "groß": "big",
    "klein": "small",
    "und": "and",
    "nicht": "not",
    "alt": "old",
    "neu": "new",
    "auto": "car",
    "buch": "book",
}


def toy_pairs(n: int, seed: int, min_len: int = 2, max_len: int = 7):
    rng = random.Random(seed)
    de = list(WORDS)
    for _ in range(n):
        src = [rng.choice(de) for _ in range(rng.randint(min_len, max_len))]
        yield " ".join(src), " ".join(WORDS[w] for w in src)


def write_toy_corpus(
    root: Path, n_train: int = 2000, n_valid: int = 50, n_test: int = 50
) -> Path:
    """Write root/{train,valid,test}.{de,en}; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (
        ("train", n_train, 1),
        ("valid", n_valid, 2),
        ("test", n_test, 3),
    ):
        pairs = list(toy_pairs(n, seed))
        (root / f"{split}.de").write_text("".join(s + "\n" for s, _ in pairs))
        (root / f"{split}.en").write_text("".join(t + "\n" for _, t in pairs))
    return root


# --- synthetic tasks: copy, reverse, sort the words of a sentence ------------------

TASKS = ("copy", "reverse", "sort")


def task_pairs(
    task: str, n: int, seed: int, words: int = 20, min_len: int = 3, max_len: int = 9
):
    """(source, target) pairs over the first `words` words of WORDS: the target is
    the source copied, reversed or sorted (in WORDS order)."""
    vocab = list(WORDS)[:words]
    rng = random.Random(seed)
    for _ in range(n):
        src = [rng.choice(vocab) for _ in range(rng.randint(min_len, max_len))]
        tgt = {
            "copy": src,
            "reverse": src[::-1],
            "sort": sorted(src, key=vocab.index),
        }[task]
        yield " ".join(src), " ".join(tgt)


def write_task_corpus(
    root: Path, task: str, n_train: int = 4000, n_valid: int = 200, **kw
) -> Path:
    """Write root/{train,valid,test}.{src,tgt} of a synthetic task; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (
        ("train", n_train, 1),
        ("valid", n_valid, 2),
        ("test", n_valid, 3),
    ):
        pairs = list(task_pairs(task, n, seed, **kw))
        (root / f"{split}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (root / f"{split}.tgt").write_text("".join(t + "\n" for _, t in pairs))
    return root


# --- speech: sine-tone "words" ------------------------------------------------------

TONES = {"a": 300.0, "b": 700.0, "c": 1200.0, "d": 2000.0, "e": 3200.0}
RATE = 16000


def tone_wave(text: str, rate: int = RATE):
    """Each character a 0.1 s tone of its own pitch, 30 ms apart; 80 ms of silence
    between words and 50 ms at both ends."""
    import numpy as np

    def silence(s):
        return np.zeros(int(s * rate))

    t = np.arange(int(0.1 * rate)) / rate
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks
    parts = [silence(0.05)]
    for w, word in enumerate(text.split()):
        if w:
            parts.append(silence(0.08))
        for c, ch in enumerate(word):
            if c:
                parts.append(silence(0.03))
            parts.append(0.5 * ramp * np.sin(2 * np.pi * TONES[ch] * t))
    parts.append(silence(0.05))
    return np.concatenate(parts).astype(np.float32)


def tone_texts(n: int, seed: int):
    """Random 1-3 word utterances of 1-3 characters, no character twice in a row."""
    rng = random.Random(seed)
    chars = list(TONES)
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 3)):
            word = rng.choice(chars)
            for _ in range(rng.randint(0, 2)):
                word += rng.choice([c for c in chars if c != word[-1]])
            words.append(word)
        yield " ".join(words)


def write_tone_corpus(root: Path, n_train: int = 60, n_valid: int = 12) -> Path:
    """Write root/wav/*.wav and root/{train,valid}.tsv manifests; returns root."""
    import soundfile

    (root / "wav").mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("valid", n_valid, 2)):
        rows = ["id\tpath\tduration\ttext"]
        for k, text in enumerate(tone_texts(n, seed)):
            wave = tone_wave(text)
            name = f"{split}{k:03d}"
            soundfile.write(str(root / "wav" / f"{name}.wav"), wave, RATE)
            rows.append(f"{name}\twav/{name}.wav\t{len(wave) / RATE:.3f}\t{text}")
        (root / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root
