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
