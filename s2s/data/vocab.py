"""SentencePiece vocabularies that travel inside checkpoints as bytes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

from s2s.errors import S2SError

__all__ = ["Vocab", "train_sentencepiece", "PAD", "UNK", "BOS", "EOS"]

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class Vocab:
    """A SentencePiece model with fixed special ids: pad 0, unk 1, bos 2, eos 3."""

    def __init__(self, model_proto: bytes):
        self.proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(self.proto)
        except (RuntimeError, OSError) as e:
            raise S2SError(f"not a SentencePiece model: {e}") from None
        specials = (
            self.sp.pad_id(),
            self.sp.unk_id(),
            self.sp.bos_id(),
            self.sp.eos_id(),
        )
        if specials != (PAD, UNK, BOS, EOS):
            raise S2SError(
                f"SentencePiece model has special ids {specials}; s2s needs "
                f"pad=0 unk=1 bos=2 eos=3 (train it with `s2s prep`)"
            )

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        try:
            return cls(Path(path).read_bytes())
        except OSError as e:
            raise S2SError(f"{path}: cannot read vocabulary: {e.strerror}") from None

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    @property
    def digest(self) -> str:
        """A short fingerprint: two vocabularies are the same iff digests match."""
        return hashlib.sha256(self.proto).hexdigest()[:16]

    def encode(self, lines: list[str]) -> list[list[int]]:
        return self.sp.encode(lines, out_type=int)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.sp.decode(ids)

    def pieces(self, line: str) -> list[str]:
        return self.sp.encode(line, out_type=str)


def train_sentencepiece(
    sentences: Iterable[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    max_sentences: int = 2_000_000,
    log: Callable[[str], None] | None = None,
    name: str = "vocabulary",
) -> Vocab:
    """Train a SentencePiece model on an iterator of sentences, in memory.

    SentencePiece samples at most `max_sentences` of them, so memory stays bounded on
    large corpora. `hard_vocab_limit=False` lets tiny corpora train a smaller
    vocabulary than asked for instead of failing; `log` (if given) is told so,
    naming the vocabulary by `name`.
    """
    model = io.BytesIO()

    def it() -> Iterator[str]:
        yield from sentences

    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=it(),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            hard_vocab_limit=False,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise S2SError(f"SentencePiece training failed: {e}") from None
    vocab = Vocab(model.getvalue())
    if log is not None and len(vocab) < vocab_size:
        log(
            f"{name}: {len(vocab):,} pieces, not the {vocab_size:,} asked for "
            "(--vocab-size): the training text gives no more"
        )
    return vocab
