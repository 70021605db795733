import pytest

from s2s.metrics import bleu_chrf, error_rate, wer_cer


def test_error_rate_counts_operations():
    r = error_rate(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"])
    assert (r.substitutions, r.deletions, r.insertions, r.ref_length) == (1, 0, 1, 4)
    r = error_rate(["a", "b", "c"], ["a", "c"])
    assert (r.substitutions, r.deletions, r.insertions) == (0, 1, 0)
    assert error_rate([], ["x"]).insertions == 1


def test_wer_cer_corpus_level():
    wer, cer = wer_cer(["the cat sat", "hello"], ["the cat sat down", "hello"])
    assert wer.deletions == 1 and wer.ref_length == 5
    assert wer.rate == pytest.approx(20.0)
    assert cer.deletions == len(" down")


def test_bleu_perfect_and_signature():
    s = bleu_chrf(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert s.bleu == pytest.approx(100.0) and s.chrf == pytest.approx(100.0)
    assert "tok:13a" in s.bleu_signature
