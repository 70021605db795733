"""Out of memory while decoding: the batch is halved and retried, results unchanged.
And freed CPU memory is kept for the next step."""

import ctypes.util
import resource
import sys

import pytest
import torch

from conftest import TINY, TINY_CTC
from s2s.config import load_config
from s2s.data.batching import ParallelData
from s2s.data.speech import SpeechData
from s2s.decode.transcribe import Transcriber
from s2s.decode.translate import Translator
from s2s.errors import S2SError
from s2s.memory import keep_freed_memory, split_on_oom
from s2s.models.seq2seq import build_model
from toy import tone_wave

CPU = torch.device("cpu")


def _fails_over(k: int, run, calls: list[int]):
    """`run`, but raising out-of-memory for batches of more than `k` items."""

    def patched(items):
        calls.append(len(items))
        if len(items) > k:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return run(items)

    return patched


def test_split_on_oom_halves_down_to_one_item():
    calls: list[int] = []
    double = _fails_over(2, lambda xs: [2 * x for x in xs], calls)
    assert split_on_oom(double, list(range(7)), CPU, "hint") == [
        2 * x for x in range(7)
    ]
    assert calls == [7, 3, 1, 2, 4, 2, 2]
    with pytest.raises(S2SError, match="batch of one input; lower the thing"):
        split_on_oom(_fails_over(0, double, []), [1, 2], CPU, "lower the thing")


def test_translator_retries_halves(toy_bin):
    cfg = load_config(None, [*TINY, "decode.beam=2", "decode.batch_tokens=100000"])
    src_vocab, tgt_vocab = ParallelData(toy_bin, "train").vocabs()
    torch.manual_seed(0)
    model = build_model(cfg.model, len(src_vocab), len(tgt_vocab))
    tr = Translator(model, src_vocab, tgt_vocab, cfg.decode, CPU)
    lines = ["eins zwei drei", "rot", "", "haus baum hund katze", "alt neu", "buch"]
    expected = tr.translate(lines)
    calls: list[int] = []
    search = tr._search
    tr._search = lambda seqs, amp: _fails_over(2, lambda s: search(s, amp), calls)(seqs)
    assert tr.translate(lines) == expected
    assert calls == [5, 2, 3, 1, 2]  # the empty line is not decoded


def test_transcriber_retries_halves(tone_bin):
    cfg = load_config(None, [*TINY_CTC, "decode.beam=1"])
    data = SpeechData(tone_bin, "train")
    vocab = data.vocab()
    torch.manual_seed(0)
    model = build_model(cfg.model, 0, len(vocab))
    tr = Transcriber(model, vocab, data.features, data.cmvn, cfg.decode, CPU)
    waves = [torch.from_numpy(tone_wave(t)) for t in ("ab", "c d", "e", "abc de")]
    expected = tr.transcribe(waves)
    calls: list[int] = []
    encode = tr._encode
    tr._encode = lambda w, group: _fails_over(1, lambda g: encode(w, g), calls)(group)
    assert tr.transcribe(waves) == expected
    assert calls == [4, 2, 1, 1, 2, 1, 1]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc's mallopt",
)
def test_keep_freed_memory_reuses_pages():
    """After keep_freed_memory, a 16 MB tensor made again and again reuses freed
    memory: no fresh pages once the heap has grown (a fresh tensor faults in 4,096;
    with glibc's defaults every one of them did)."""
    keep_freed_memory()

    def faults_of_one_tensor() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.ones(4 << 20)  # 16 MB, every page written
        del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults = [faults_of_one_tensor() for _ in range(8)]
    assert max(faults[-3:]) < 400, faults
