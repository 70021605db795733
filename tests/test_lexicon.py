"""The word list of `--lexicon` (s2s.decode.lexicon): its trie, the scorer's
costs, the searches it joins, and its errors."""

import random

import pytest
import torch
from test_fusion import _lm_checkpoint
from typer.testing import CliRunner

from s2s.checkpoint import target_vocab
from s2s.cli import app
from s2s.data.vocab import EOS, train_sentencepiece
from s2s.decode.beam import ScorerSum
from s2s.decode.ctc import ctc_prefix_beam_search
from s2s.decode.lexicon import Lexicon, LexiconScorer, load_lexicon
from s2s.errors import S2SError

runner = CliRunner()
WORDS = ["ab", "abc", "ba", "cab", "d"]


@pytest.fixture(scope="module")
def vocab():
    lines = ["ab abc ba cab d e", "abcde edcba", "a b c d e"] * 20
    return train_sentencepiece(lines, vocab_size=100, model_type="char")


def ids(vocab, text):
    return vocab.encode([text])[0]


def test_trie_holds_the_words_and_nothing_else(vocab):
    lex = Lexicon.from_words([*WORDS, "ab", "xyz", "ed"], vocab)
    assert (lex.words, lex.skipped) == (6, 1)  # "ab" twice; "xyz" has no x
    for w in [*WORDS, "ed"]:
        assert lex.contains(vocab, w), w
    for w in ["a", "c", "ca", "abcd", "e", "dd", ""]:
        assert not lex.contains(vocab, w), w
    # One node per distinct prefix: a ab abc b ba c ca cab d e ed, and the root.
    assert lex.nodes == 12


def test_trie_of_random_words_matches_a_plain_one(vocab):
    rng = random.Random(1)
    for trial in range(20):
        words = [
            "".join(rng.choice("abcde") for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 60))
        ]
        lex = Lexicon.from_words(words, vocab)
        prefixes = {w[:k] for w in words for k in range(1, len(w) + 1)}
        assert lex.nodes == 1 + len(prefixes) and lex.words == len(set(words))
        for probe in [*prefixes, "ee", "abcdea", "dcbab"]:
            assert lex.contains(vocab, probe) == (probe in words), (trial, probe)


def test_a_subword_vocabulary_is_refused(toy_raw):
    lines = (toy_raw / "train.en").read_text().splitlines()
    bpe = train_sentencepiece(lines, vocab_size=60)
    with pytest.raises(S2SError, match="character vocabulary.*--chars"):
        Lexicon.from_words(["the"], bpe, where="words.txt")


def _walk(scorer, tokens, batch=1):
    """Summed scorer costs along `tokens`, then the final one."""
    state = scorer.init_state(batch, torch.device("cpu"))
    total = 0.0
    for t in tokens:
        tok = torch.tensor([[t]])
        total += scorer.score(state, tok).item()
        state = scorer.advance(state, torch.tensor([t]))
    return total + scorer.final(state).item()


def test_every_word_not_in_the_list_costs_the_weight_once(vocab):
    lex = Lexicon.from_words(WORDS, vocab)
    scorer = LexiconScorer(lex, 2.5)
    rng = random.Random(0)
    letters = "abcde"
    for _ in range(200):
        words = [
            "".join(rng.choice(letters) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 4))
        ]
        seq = ids(vocab, " ".join(words))
        expected = -2.5 * sum(w not in WORDS for w in words)
        assert _walk(scorer, seq) == pytest.approx(expected), words
        # EOS ends the last word as the end of the utterance does.
        assert _walk(scorer, [*seq, EOS]) == pytest.approx(expected), words


def test_the_cost_comes_when_a_word_leaves_the_list(vocab):
    scorer = LexiconScorer(Lexicon.from_words(WORDS, vocab), 1.0)
    state = scorer.init_state(1, torch.device("cpu"))
    costs = []
    for t in ids(vocab, "abd"):  # "▁", a, b: in; d leaves ("abd" starts no word)
        costs.append(scorer.score(state, torch.tensor([[t]])).item())
        state = scorer.advance(state, torch.tensor([t]))
    assert costs == [0.0, 0.0, 0.0, -1.0] and state.item() == -1


def test_scoring_many_tokens_at_once_equals_one_at_a_time(vocab):
    lex = Lexicon.from_words(WORDS, vocab)
    scorer = LexiconScorer(lex, 0.7)
    state = scorer.init_state(3, torch.device("cpu"))
    state = scorer.advance(state, torch.tensor([lex.space] * 3))
    # Rows inside "a" (a prefix), "e" (no word starts with it), "ab" (a word).
    state = scorer.advance(state, torch.tensor([ids(vocab, c)[1] for c in "aea"]))
    state[2] = lex.child(state[2], torch.tensor(ids(vocab, "b")[1]))
    assert state.tolist()[1] == -1 and state[2] > 0
    every = torch.arange(len(vocab)).expand(3, -1)
    block = scorer.score(state, every)
    for r in range(3):
        for t in range(len(vocab)):
            one = scorer.score(state[r : r + 1], torch.tensor([[t]]))
            assert block[r, t] == one.item()


def _spelling_posteriors(vocab, spellings):
    """(1, T, V) CTC log-probabilities: frame k mostly says the k-th token of the
    first spelling, a little less the k-th of the others (same length), blanks
    between."""
    seqs = [ids(vocab, s) for s in spellings]
    V, frames = len(vocab), []
    for k in range(len(seqs[0])):
        p = torch.full((V,), 0.01)
        for rank, seq in enumerate(seqs):
            p[seq[k]] += 0.5 - 0.1 * rank
        frames += [p, torch.full((V,), 0.01).index_fill(0, torch.tensor([0]), 1.0)]
    probs = torch.stack(frames)
    return (probs / probs.sum(1, keepdim=True)).log()[None]


def test_prefix_search_prefers_words_of_the_list(vocab):
    # The acoustics say "cbb" (not a word), then a little less "cab" (a word).
    lp = _spelling_posteriors(vocab, ["cbb", "cab"])
    lengths = torch.tensor([lp.size(1)])
    plain = ctc_prefix_beam_search(lp, lengths, beam=4)[0][0][0]
    assert vocab.decode([plain])[0] == "cbb"
    lex = Lexicon.from_words(WORDS, vocab)
    for weight, text in ((0.0, "cbb"), (0.1, "cbb"), (5.0, "cab")):
        scorer = LexiconScorer(lex, weight)
        best = ctc_prefix_beam_search(lp, lengths, beam=4, prefix_scorer=scorer)
        assert vocab.decode([best[0][0][0]])[0] == text, weight
    # Weight 0 keeps the plain search's hypotheses and scores.
    zero = ctc_prefix_beam_search(
        lp, lengths, beam=4, prefix_scorer=LexiconScorer(lex, 0.0)
    )
    plain_all = ctc_prefix_beam_search(lp, lengths, beam=4)
    assert [h[0] for h in zero[0]] == [h[0] for h in plain_all[0]]
    assert [h[1] for h in zero[0]] == pytest.approx([h[1] for h in plain_all[0]])


def test_a_sum_of_scorers_adds_their_scores_and_finals(vocab):
    lp = _spelling_posteriors(vocab, ["cbb", "cab", "ccb"])
    lengths = torch.tensor([lp.size(1)])
    lex = Lexicon.from_words(WORDS, vocab)
    one = ctc_prefix_beam_search(
        lp, lengths, beam=4, prefix_scorer=LexiconScorer(lex, 3.0)
    )
    two = ctc_prefix_beam_search(
        lp,
        lengths,
        beam=4,
        prefix_scorer=ScorerSum([LexiconScorer(lex, 1.0), LexiconScorer(lex, 2.0)]),
    )
    assert [h[0] for h in one[0]] == [h[0] for h in two[0]]
    assert [h[1] for h in one[0]] == pytest.approx([h[1] for h in two[0]])


def test_lexicon_file_errors(vocab, tmp_path):
    with pytest.raises(S2SError, match="nowhere.txt: cannot read the lexicon"):
        load_lexicon(tmp_path / "nowhere.txt", vocab)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(S2SError, match="empty.txt: the lexicon has no words"):
        load_lexicon(empty, vocab)
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("xyz\nqq\n")
    with pytest.raises(S2SError, match="none of its 2 words can be spelt"):
        load_lexicon(foreign, vocab)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\nba\n\xff\xfe\n")
    with pytest.raises(S2SError, match=r"bad.txt:3: not UTF-8"):
        load_lexicon(bad, vocab)
    good = tmp_path / "good.txt"
    good.write_text("ab ba\ncab\n")
    assert load_lexicon(good, vocab).words == 3


def _same_trie(a, b):
    return (
        torch.equal(a.keys, b.keys)
        and torch.equal(a.children, b.children)
        and torch.equal(a.word_end, b.word_end)
        and (a.words, a.skipped, a.space) == (b.words, b.skipped, b.space)
    )


def test_the_trie_is_cached_by_file_and_vocabulary(vocab, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("S2S_CACHE_DIR", str(cache))
    words = tmp_path / "words.txt"
    words.write_text("ab abc ba\ncab d xyz\n")
    built = load_lexicon(words, vocab)
    assert not built.cached and built.skipped == 1
    (entry,) = (cache / "lexicon").iterdir()
    again = load_lexicon(words, vocab)
    assert again.cached and _same_trie(again, built)
    # Another vocabulary, or other words, is another trie.
    other = train_sentencepiece(["abcd xyz"] * 20, vocab_size=100, model_type="char")
    assert not load_lexicon(words, other).cached
    words.write_text("ab abc ba\ncab\n")
    changed = load_lexicon(words, vocab)
    assert not changed.cached and changed.words == 4
    assert len(list((cache / "lexicon").iterdir())) == 3
    # A damaged cache file is built again and replaced.
    words.write_text("ab abc ba\ncab d xyz\n")
    entry.write_bytes(b"not a trie")
    rebuilt = load_lexicon(words, vocab)
    assert not rebuilt.cached and _same_trie(rebuilt, built)
    assert load_lexicon(words, vocab).cached
    # No cache: S2S_CACHE_DIR empty; a cache that cannot be written is skipped.
    monkeypatch.setenv("S2S_CACHE_DIR", "")
    assert not load_lexicon(words, vocab).cached
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("S2S_CACHE_DIR", str(blocker))  # a file, not a directory
    assert _same_trie(load_lexicon(words, vocab), built)
    # Errors about the file come first, cached or not.
    with pytest.raises(S2SError, match="nowhere.txt: cannot read the lexicon"):
        load_lexicon(tmp_path / "nowhere.txt", vocab)


def test_transcribe_with_a_lexicon_through_the_cli(tone_run, tone_raw, tmp_path):
    refs = [
        line.split("\t")[3]
        for line in (tone_raw / "valid.tsv").read_text().splitlines()[1:]
    ]
    words = sorted({w for r in refs for w in r.split()})
    (tmp_path / "words.txt").write_text("\n".join(words) + "\n")
    base = ["transcribe", "--checkpoint", str(tone_run / "best.pt")]
    base += ["--manifest", str(tone_raw / "valid.tsv"), "--beam", "4"]
    outs = {}
    for name, extra in {
        "plain": [],
        "w0": ["--lexicon", str(tmp_path / "words.txt"), "--lexicon-weight", "0"],
        "w5": ["--lexicon", str(tmp_path / "words.txt"), "--lexicon-weight", "5"],
    }.items():
        r = runner.invoke(app, [*base, "--output", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = [
            line.split("\t")[1] for line in (tmp_path / name).read_text().splitlines()
        ]
    assert outs["w0"] == outs["plain"] and len(outs["plain"]) == len(refs)

    def in_list(texts):
        hyp = [w for t in texts for w in t.split()]
        return sum(w in words for w in hyp) / max(1, len(hyp))

    assert in_list(outs["w5"]) >= in_list(outs["plain"])
    assert in_list(outs["w5"]) == 1.0
    # With an LM too (CTC prefix search gets both through one ScorerSum).
    proto = target_vocab(tone_run / "best.pt").proto
    lm = _lm_checkpoint(tmp_path / "lm.pt", proto)
    both = ["--lm", lm, "--lexicon", str(tmp_path / "words.txt")]
    for name, weights in {"zero": ["0", "0"], "both": ["0.3", "5"]}.items():
        r = runner.invoke(
            app,
            [*base, "--output", str(tmp_path / name), *both[:2], "--lm-weight"]
            + [weights[0], *both[2:], "--lexicon-weight", weights[1]],
        )
        assert r.exit_code == 0, r.output
        assert "LM" in r.output and "lexicon" in r.output and "words" in r.output
        assert "trie from the cache" in r.output  # built by the first call
        outs[name] = [
            line.split("\t")[1] for line in (tmp_path / name).read_text().splitlines()
        ]
    assert outs["zero"] == outs["plain"] and in_list(outs["both"]) == 1.0
    r = runner.invoke(app, [*base, "--lexicon", str(tmp_path / "words.txt")])
    assert r.exit_code == 1 and "--lexicon needs --lexicon-weight" in r.output
    r = runner.invoke(app, [*base, "--lexicon-weight", "1"])
    assert r.exit_code == 1 and "--lexicon-weight needs --lexicon" in r.output
    r = runner.invoke(
        app, [*base, "--lexicon", str(tmp_path / "no.txt"), "--lexicon-weight", "1"]
    )
    assert r.exit_code == 1 and "no.txt: cannot read the lexicon" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("mode", ["joint", "attention"])
def test_the_joint_and_attention_searches_take_the_lexicon(
    joint_run, tone_raw, tmp_path, mode
):
    words = tmp_path / "words.txt"
    words.write_text("a ab abc\n")  # few of the tone corpus' words
    base = ["transcribe", "--checkpoint", str(joint_run / "best.pt"), "--mode", mode]
    base += ["--manifest", str(tone_raw / "valid.tsv"), "--beam", "3"]
    outs = {}
    for name, extra in {
        "plain": [],
        "w0": ["--lexicon", str(words), "--lexicon-weight", "0"],
        "w50": ["--lexicon", str(words), "--lexicon-weight", "50"],
    }.items():
        r = runner.invoke(app, [*base, "--output", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = (tmp_path / name).read_text().splitlines()
    assert outs["w0"] == outs["plain"]
    hyp = [w for line in outs["w50"] for w in line.split("\t")[1].split()]
    plain = [w for line in outs["plain"] for w in line.split("\t")[1].split()]
    in_list = sum(w in {"a", "ab", "abc"} for w in hyp) / max(1, len(hyp))
    assert in_list >= sum(w in {"a", "ab", "abc"} for w in plain) / max(1, len(plain))
