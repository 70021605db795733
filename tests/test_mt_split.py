"""mt-de-en's document split: `--split-seed` draws another split of the same
documents by the same rules, and 0 is the recipe's."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "mt-de-en"
sys.path.insert(0, str(RECIPE))
sys.path.insert(0, str(RECIPE.parent))

import prepare_data  # noqa: E402


def _pairs() -> list[dict]:
    """120 help pages of 30 pairs and 60 Ding blocks of 10, every pair unique."""
    pairs = []
    for source, docs, per in (("help", 120, 30), ("ding", 60, 10)):
        for d in range(docs):
            for k in range(per):
                text = f"{source} {d} {k}"
                pairs.append(
                    {"source": source, "doc": f"d{d}", "src": text, "tgt": text.upper()}
                )
    return pairs


def _split(seed: int):
    stats = {"sources": {s: {"dropped": Counter()} for s in ("help", "ding")}}
    final, _, assign = prepare_data.split_pairs(_pairs(), stats, seed)
    return final, assign


def test_split_seed_draws_another_split_by_the_same_rules():
    base, base_docs = _split(0)
    again, _ = _split(0)
    other, other_docs = _split(1)
    assert base == again  # deterministic
    assert base_docs != other_docs
    for final, docs in ((base, base_docs), (other, other_docs)):
        for split in ("test", "valid"):
            for source, target in (("help", 1200), ("ding", 200)):
                n = sum(p["source"] == source for p in final[split])
                assert target <= n < target + 30, (split, source, n)
        train_docs = {(p["source"], p["doc"]) for p in final["train"]}
        assert not train_docs & set(docs)  # whole documents held out
        assert sum(len(v) for v in final.values()) == len(_pairs())
