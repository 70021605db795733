import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.data.speech import min_ctc_frames
from s2s.decode.beam import TokenBonus
from s2s.decode.ctc import ctc_greedy, ctc_prefix_beam_search
from s2s.models.ctc import CTCHead, ctc_loss

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)


def _log_probs(seed, B, T, V, peak=0.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=gen)
    if peak:
        hot = torch.randint(V, (B, T, 1), generator=gen)
        logits = logits.scatter_add(2, hot, torch.full((B, T, 1), peak))
    return logits.log_softmax(dim=-1)


def _brute_force(log_probs, blank=0, extra=None):
    """Exact score of every labelling by summing over all V**T alignments."""
    T, V = log_probs.shape
    totals = {}
    for path in itertools.product(range(V), repeat=T):
        labels = tuple(
            s for i, s in enumerate(path) if s != blank and (i == 0 or s != path[i - 1])
        )
        lp = sum(log_probs[t, s].item() for t, s in enumerate(path))
        totals[labels] = torch.logaddexp(
            torch.tensor(totals.get(labels, -math.inf)), torch.tensor(lp)
        ).item()
    if extra is not None:
        totals = {seq: score + extra(seq) for seq, score in totals.items()}
    return totals


# --- loss -------------------------------------------------------------------------


def test_head_shapes_and_normalisation():
    torch.manual_seed(0)
    head = CTCHead(7, 5, blank=0)
    log_probs = head(torch.randn(2, 3, 7))
    assert log_probs.shape == (2, 3, 5) and log_probs.dtype == torch.float32
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 3))


def test_loss_counts_impossible_targets_and_keeps_gradient_finite():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5, requires_grad=True)
    log_probs = logits.log_softmax(-1)
    in_lengths = torch.tensor([4, 2, 3])
    # utt 1: 3 tokens in 2 frames; utt 2: [2, 2] fits 3 frames only with a blank.
    targets = torch.tensor([[1, 2, 3], [1, 2, 3], [2, 2, 0]])
    target_lengths = torch.tensor([3, 3, 2])
    loss, num_inf = ctc_loss(log_probs, in_lengths, targets, target_lengths)
    assert num_inf.item() == 1
    reference = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), targets, in_lengths, target_lengths, reduction="none"
    )
    assert torch.isinf(reference[1]) and torch.isfinite(reference[[0, 2]]).all()
    torch.testing.assert_close(loss, reference[[0, 2]].sum())
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[1].abs().max() == 0  # the impossible utterance adds nothing


@PROPERTY
@given(seed=st.integers(0, 10_000))
def test_min_frames_predicts_exactly_the_infinite_losses(seed):
    gen = torch.Generator().manual_seed(seed)
    B, T, U = 6, 4, 5
    targets = torch.randint(1, 3, (B, U), generator=gen)  # few symbols: many repeats
    target_lengths = torch.randint(0, U + 1, (B,), generator=gen)
    in_lengths = torch.randint(1, T + 1, (B,), generator=gen)
    log_probs = torch.randn(B, T, 3, generator=gen).log_softmax(-1)
    reference = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), targets, in_lengths, target_lengths, reduction="none"
    )
    impossible = min_ctc_frames(targets, target_lengths) > in_lengths
    assert torch.equal(impossible, torch.isinf(reference))
    loss, num_inf = ctc_loss(log_probs, in_lengths, targets, target_lengths)
    assert num_inf.item() == impossible.sum().item()
    torch.testing.assert_close(loss, reference[~impossible].sum())


# --- greedy -----------------------------------------------------------------------


def test_greedy_collapses_repeats_and_drops_blanks_within_length():
    path = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 3], [2, 0, 0, 2, 2, 1, 1, 1]])
    log_probs = torch.nn.functional.one_hot(path, 4).float().log()
    assert ctc_greedy(log_probs, torch.tensor([7, 5]), blank=0) == [[1, 1, 2], [2, 2]]


# --- prefix beam search -----------------------------------------------------------


@PROPERTY
@given(seed=st.integers(0, 10_000), T=st.integers(1, 12), V=st.integers(2, 6))
def test_beam_one_equals_greedy_on_peaked_distributions(seed, T, V):
    # With every frame's top symbol above ~0.75, merging alignments cannot change the
    # winner, so beam 1 must agree with best-path decoding.
    log_probs = _log_probs(seed, 3, T, V, peak=8.0)
    lengths = torch.tensor([T, max(1, T - 3), max(1, T // 2)])
    beams = ctc_prefix_beam_search(log_probs, lengths, beam=1)
    assert [nbest[0][0] for nbest in beams] == ctc_greedy(log_probs, lengths)


def test_beam_one_can_beat_greedy_by_merging_alignments():
    # Frame 0 is surely "a"; frame 1 is blank .3, a .3, b .4. Best path says "ab" (.4),
    # but "a" has .3 + .3 = .6 over its two alignments; prefix search keeps it.
    probs = torch.tensor([[[1e-6, 1 - 2e-6, 1e-6], [0.3, 0.3, 0.4]]])
    lengths = torch.tensor([2])
    assert ctc_greedy(probs.log(), lengths) == [[1, 2]]
    (best,) = ctc_prefix_beam_search(probs.log(), lengths, beam=1)
    assert best[0][0] == [1] and math.isclose(best[0][1], math.log(0.6), rel_tol=1e-4)


@PROPERTY
@given(seed=st.integers(0, 10_000), T=st.integers(1, 5), V=st.integers(2, 3))
def test_wide_beam_matches_sum_over_all_alignments(seed, T, V):
    log_probs = _log_probs(seed, 1, T, V)
    (nbest,) = ctc_prefix_beam_search(log_probs, torch.tensor([T]), beam=64)
    exact = _brute_force(log_probs[0])
    assert {tuple(seq) for seq, _ in nbest} == set(exact)
    for seq, score in nbest:
        assert math.isclose(score, exact[tuple(seq)], rel_tol=1e-4, abs_tol=1e-4)
    assert math.isclose(nbest[0][1], max(exact.values()), rel_tol=1e-4, abs_tol=1e-4)


@PROPERTY
@given(seed=st.integers(0, 10_000), beam=st.integers(1, 5))
def test_batched_equals_one_by_one(seed, beam):
    B, T, V = 4, 9, 5
    log_probs = _log_probs(seed, B, T, V)
    lengths = torch.tensor([9, 1, 6, 3])
    batched = ctc_prefix_beam_search(log_probs, lengths, beam=beam, token_beam=2)
    for b in range(B):
        L = int(lengths[b])
        (single,) = ctc_prefix_beam_search(
            log_probs[b : b + 1, :L], lengths[b : b + 1], beam=beam, token_beam=2
        )
        assert [seq for seq, _ in batched[b]] == [seq for seq, _ in single]
        torch.testing.assert_close(
            torch.tensor([s for _, s in batched[b]]),
            torch.tensor([s for _, s in single]),
        )


def test_empty_input_gives_the_empty_prefix():
    log_probs = _log_probs(0, 2, 3, 4)
    out = ctc_prefix_beam_search(log_probs[:, :0], torch.tensor([0, 0]), beam=3)
    assert out == [[([], 0.0)], [([], 0.0)]]


class _BigramScorer:
    """A bigram "LM" from a table; its state is a dict of tensors."""

    def __init__(self, table):
        self.table = table  # (V + 1, V): row V is the start of the sentence

    def init_state(self, batch_size, device):
        start = torch.full((batch_size,), self.table.shape[0] - 1, device=device)
        return {"last": start, "steps": torch.zeros(batch_size, 2)}

    def score(self, state, tokens):
        return self.table[state["last"][:, None], tokens]  # (N, C)

    def advance(self, state, tokens):
        return {"last": tokens, "steps": state["steps"] + 1}

    def total(self, seq):
        prev, score = self.table.shape[0] - 1, 0.0
        for tok in seq:
            score, prev = score + self.table[prev, tok].item(), tok
        return score


def test_token_bonus_adds_its_score_per_token():
    log_probs = _log_probs(3, 1, 5, 3)
    (plain,) = ctc_prefix_beam_search(log_probs, torch.tensor([5]), beam=64)
    (fused,) = ctc_prefix_beam_search(
        log_probs, torch.tensor([5]), beam=64, prefix_scorer=TokenBonus(0.5)
    )
    expected = {tuple(seq): score + 0.5 * len(seq) for seq, score in plain}
    assert len(fused) == len(plain)
    for seq, score in fused:
        assert math.isclose(score, expected[tuple(seq)], abs_tol=1e-5)
    (long_wins,) = ctc_prefix_beam_search(
        log_probs, torch.tensor([5]), beam=64, prefix_scorer=TokenBonus(50.0)
    )
    assert len(long_wins[0][0]) == 5


@PROPERTY
@given(seed=st.integers(0, 10_000), T=st.integers(1, 5))
def test_stateful_scorer_is_exact_with_a_wide_beam(seed, T):
    V = 3
    log_probs = _log_probs(seed, 2, T, V)
    table = torch.randn(V + 1, V, generator=torch.Generator().manual_seed(seed + 1))
    scorer = _BigramScorer(table)
    lengths = torch.tensor([T, max(1, T - 2)])
    out = ctc_prefix_beam_search(log_probs, lengths, beam=64, prefix_scorer=scorer)
    for b in range(2):
        L = int(lengths[b])
        exact = _brute_force(log_probs[b, :L], extra=scorer.total)
        assert {tuple(seq) for seq, _ in out[b]} == set(exact)
        for seq, score in out[b]:
            assert math.isclose(score, exact[tuple(seq)], abs_tol=1e-4)


def test_rejects_a_vocabulary_of_only_blank():
    with pytest.raises(ValueError):
        ctc_prefix_beam_search(torch.zeros(1, 2, 1), torch.tensor([2]), beam=2)
