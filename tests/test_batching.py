"""make_batches: every pair once, within the token budget, repeatable, well packed."""

import numpy as np
import pytest

from s2s.data.batching import make_batches


def _lengths(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(1, 60, n)
    tgt = np.maximum(1, (src * rng.uniform(0.6, 1.5, n)).astype(int))
    return src, tgt


def _cost(batches, src, tgt):
    """Padded steps: what the budget counts, size = max(src, tgt + 1)."""
    size = np.maximum(src, tgt + 1)
    return sum(len(b) * int(size[b].max()) for b in batches)


@pytest.mark.parametrize("sort_by", ["size", "tgt", "src"])
def test_every_pair_once_within_budget(sort_by):
    src, tgt = _lengths()
    src[7] = 500  # longer than the budget: a batch of its own
    batches = make_batches(src, tgt, 400, seed=3, epoch=1, sort_by=sort_by)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(src)))
    size = np.maximum(src, tgt + 1)
    for b in batches:
        assert len(b) * size[b].max() <= 400 or len(b) == 1
    assert [7] in [b.tolist() for b in batches]


def test_repeatable_per_seed_and_epoch():
    src, tgt = _lengths()
    a = [x.tolist() for x in make_batches(src, tgt, 400, seed=3, epoch=1)]
    assert a == [x.tolist() for x in make_batches(src, tgt, 400, 3, 1)]
    assert a != [x.tolist() for x in make_batches(src, tgt, 400, 3, 2)]


def test_size_order_packs_tighter_than_one_side():
    src, tgt = _lengths()
    cost = {
        s: _cost(make_batches(src, tgt, 2000, sort_by=s), src, tgt)
        for s in ("size", "tgt", "src")
    }
    assert cost["size"] < min(cost["tgt"], cost["src"])
    # and it has fewer padded target steps than sorting by source
    t = tgt + 1
    pad = {
        s: sum(
            len(b) * int(t[b].max()) for b in make_batches(src, tgt, 2000, sort_by=s)
        )
        for s in ("size", "src")
    }
    assert pad["size"] < pad["src"]


def test_unknown_order_is_an_error():
    with pytest.raises(ValueError, match="sort_by"):
        make_batches(np.ones(3, int), np.ones(3, int), 10, sort_by="random")


def test_longest_first_batches_within_the_budget():
    from s2s.data.batching import longest_first

    sizes = [3, 9, 9, 1, 0, 5, 4]
    batches = longest_first(sizes, budget=18)
    assert sorted(i for b in batches for i in b.tolist()) == list(range(len(sizes)))
    assert [b.tolist() for b in batches] == [[1, 2], [5, 6, 0], [3, 4]]
    for b in batches:  # padded to the first (longest) item, within the budget
        assert len(b) * max(sizes[b[0]], 1) <= 18
    assert [b.tolist() for b in longest_first([40, 2], budget=10)] == [[0], [1]]
