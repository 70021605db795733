"""A word list as a soft constraint on the searches of a character model.

A character model spells what it hears, and most of its word errors are words
no dictionary has (asr-cs: 55% of the wrong words of the LM-fused search are in
none of the recipe's word lists, which hold 92% of the test words). `--lexicon
FILE --lexicon-weight W` subtracts W once from every hypothesis for each word
that is not in FILE, at the first character that leaves every word of the list
(so the beam drops such spellings early), or at the word's end when it stopped
inside a longer word. Words of the list need not be the only ones: a high enough
acoustic and LM score still wins (names, numbers).

The list is a character trie over the model's vocabulary: edges (parent, token)
sorted as parent * V + token, found with one `searchsorted` per step for all
hypotheses. A hypothesis' state is its node in the trie (0: between words,
-1: its current word has left the list and paid).

The vocabulary must be of characters (`s2s prep ... --chars`): its word
boundary is the piece "▁", and EOS ends the last word.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import unicodedata
from pathlib import Path
from pickle import PickleError

import numpy as np
import torch

from s2s.atomic import atomic_file
from s2s.data.vocab import EOS, UNK, Vocab
from s2s.errors import S2SError

__all__ = ["Lexicon", "LexiconScorer", "cache_dir", "load_lexicon"]

_SPACE = "\u2581"
_MAX_CHARS = 64  # longer "words" (URLs, chemistry) are skipped
_CACHE_FORMAT = 1  # raise when the trie's layout or its building changes


class Lexicon:
    """The words of a list as a trie of token ids (`from_words`)."""

    def __init__(
        self,
        keys: torch.Tensor,
        children: torch.Tensor,
        word_end: torch.Tensor,
        vocab_size: int,
        space: int,
        words: int,
        skipped: int,
    ):
        # The edge from node p by token t has key p * V + t; node 0 is the root
        # (no word started).
        self.keys = keys  # (E,) int64, sorted
        self.children = children  # (E,) int64: the node each key leads to
        self.word_end = word_end  # (nodes,) bool
        self.vocab_size, self.space = vocab_size, space
        self.words, self.skipped = words, skipped
        self.cached = False  # read from the trie cache (`load_lexicon`)

    @classmethod
    def from_edges(
        cls,
        parents: torch.Tensor,
        tokens: torch.Tensor,
        word_end: torch.Tensor,
        vocab_size: int,
        space: int,
        words: int,
        skipped: int,
    ) -> Lexicon:
        """Node n >= 1 is reached from parents[n - 1] by tokens[n - 1]."""
        keys = parents * vocab_size + tokens
        order = keys.argsort()
        children = (order + 1).to(torch.long)
        return cls(keys[order], children, word_end, vocab_size, space, words, skipped)

    def state_dict(self) -> dict:
        """What the trie cache stores (tensors and ints)."""
        return {
            "keys": self.keys,
            "children": self.children,
            "word_end": self.word_end,
            "vocab_size": self.vocab_size,
            "space": self.space,
            "words": self.words,
            "skipped": self.skipped,
        }

    @classmethod
    def from_words(cls, words: list[str], vocab: Vocab, where: str = "") -> Lexicon:
        """The trie of `words` (each a whitespace-free string) in `vocab`'s
        characters. Words with a character outside the vocabulary, or longer than
        `_MAX_CHARS`, are skipped and counted.

        Built with array operations, so millions of words take seconds: the words
        as rows of a (N, L) token matrix, sorted and deduplicated; each word
        shares its first `lcp` tokens (the common prefix with the row before) with
        earlier words and adds one node for each of its others; depth by depth, a
        word's node at that depth is the last one made there by it or a row above.
        """
        space = _character_vocab(vocab, where)
        ids = _char_ids(vocab)
        words = [unicodedata.normalize("NFKC", w) for w in words]
        words = [w for w in words if w]
        lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        codes = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32)
        tokens = np.where(codes < len(ids), ids[np.minimum(codes, len(ids) - 1)], -1)
        del codes
        tokens[tokens == space] = -1  # a word holds no word boundary
        starts = np.cumsum(lengths) - lengths
        bad = np.zeros(len(words), dtype=bool)
        if len(tokens):
            bad = np.logical_or.reduceat(tokens < 0, starts)
        bad |= (lengths > _MAX_CHARS) | (lengths == 0)
        keep = ~bad
        width = int(lengths[keep].max()) if keep.any() else 1
        # Row and column of every character (int32: memory is the cost here).
        rows = np.repeat(np.arange(len(words), dtype=np.int32), lengths)
        cols = np.arange(len(tokens), dtype=np.int32)
        cols -= np.repeat(starts.astype(np.int32), lengths)
        inside = np.repeat(keep, lengths)
        matrix = np.zeros((len(words), width), dtype=np.uint16)  # 0: past the end
        matrix[rows[inside], cols[inside]] = tokens[inside]
        del rows, cols, inside, tokens
        matrix = np.unique(matrix[keep], axis=0)  # sorted rows, each once
        n = len(matrix)
        length = (matrix > 0).sum(axis=1)
        lcp = np.zeros(n, dtype=np.int64)
        if n > 1:  # the first column where a row differs from the one above
            lcp[1:] = (matrix[1:] != matrix[:-1]).argmax(axis=1)
        fresh = length - lcp  # >= 1: no row is a prefix of the one above it
        first = 1 + np.cumsum(fresh) - fresh  # node id of each row's first new node
        total = int(fresh.sum())
        parents = np.zeros(total, dtype=np.int64)
        child_tokens = np.zeros(total, dtype=np.int64)
        word_end = np.zeros(total + 1, dtype=bool)
        above = np.zeros(n, dtype=np.int64)  # each row's node one depth up (root)
        for depth in range(width):
            makes = (lcp <= depth) & (depth < length)
            made = np.where(makes, first + depth - lcp, 0)
            # Rows that make no node here share it with the last row above that did.
            last = np.maximum.accumulate(np.where(makes, np.arange(n), -1))
            node = np.where(last >= 0, made[np.maximum(last, 0)], 0)
            parents[made[makes] - 1] = above[makes]
            child_tokens[made[makes] - 1] = matrix[makes, depth]
            ends = length == depth + 1
            word_end[node[ends]] = True
            above = node
        return cls.from_edges(
            torch.from_numpy(parents),
            torch.from_numpy(child_tokens),
            torch.from_numpy(word_end),
            len(vocab),
            space,
            n,
            int(bad.sum()),
        )

    @property
    def nodes(self) -> int:
        return len(self.word_end)

    def to(self, device: torch.device) -> Lexicon:
        self.keys = self.keys.to(device)
        self.children = self.children.to(device)
        self.word_end = self.word_end.to(device)
        return self

    def child(self, node: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """The node after `token` from `node` (same shapes); -1 where the trie has
        no such edge or node is -1."""
        if len(self.keys) == 0:
            return torch.full_like(node, -1)
        q = node.clamp_min(0) * self.vocab_size + token
        i = torch.searchsorted(self.keys, q).clamp_max(len(self.keys) - 1)
        found = (self.keys[i] == q) & (node >= 0)
        return torch.where(found, self.children[i], -1)

    def contains(self, vocab: Vocab, word: str) -> bool:
        """Whether `word` is a word of the list (for tests and messages)."""
        ids = vocab.encode([word])[0]
        if ids and ids[0] == self.space:
            ids = ids[1:]
        node = torch.tensor(0)
        for t in ids:
            node = self.child(node, torch.tensor(t))
        return bool(node > 0) and bool(self.word_end[node])


def load_lexicon(path: str | Path, vocab: Vocab) -> Lexicon:
    """The words of `path` (whitespace-separated, usually one a line) as a
    `Lexicon` over `vocab`; an unreadable file, one without words, or one whose
    words all have characters outside the vocabulary is an error.

    Building the trie of a large list takes time and memory (4.3M Czech words: 27
    s, 2.6 GB), so the trie is kept in a cache keyed by the file's bytes and the
    vocabulary (`cache_dir`); a changed file or another model builds a new one."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise S2SError(f"{path}: cannot read the lexicon: {e.strerror}") from None
    key = hashlib.sha256(data)
    key.update(f"\0{_CACHE_FORMAT}\0{vocab.digest}".encode())
    cached = cache_dir()
    cached = cached / f"{key.hexdigest()[:32]}.pt" if cached else None
    lexicon = _read_cache(cached) if cached else None
    if lexicon is not None:
        return lexicon
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise S2SError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None
    del data
    words = text.split()
    del text
    if not words:
        raise S2SError(f"{path}: the lexicon has no words")
    lexicon = Lexicon.from_words(words, vocab, where=str(path))
    if lexicon.words == 0:
        raise S2SError(
            f"{path}: none of its {len(words)} words can be spelt with the model's "
            f"characters"
        )
    if cached:
        _write_cache(cached, lexicon)
    return lexicon


def cache_dir() -> Path | None:
    """Where built tries are kept: $S2S_CACHE_DIR, else $XDG_CACHE_HOME/s2s, else
    ~/.cache/s2s, with /lexicon appended; None (no cache) when S2S_CACHE_DIR is
    set to the empty string."""
    root = os.environ.get("S2S_CACHE_DIR")
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "s2s")
    return Path(root) / "lexicon" if root else None


def _read_cache(path: Path) -> Lexicon | None:
    """The cached trie at `path`, or None if there is none or it cannot be read
    (a damaged file is rebuilt and replaced)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        lexicon = Lexicon(**state)
    except (OSError, RuntimeError, EOFError, TypeError, ValueError, PickleError):
        return None
    lexicon.cached = True
    return lexicon


def _write_cache(path: Path, lexicon: Lexicon) -> None:
    """Keep the trie for the next call; a cache that cannot be written (read-only
    home, full disk) only costs the next call the build."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "wb") as f:
            torch.save(lexicon.state_dict(), f)


def _character_vocab(vocab: Vocab, where: str) -> int:
    """The id of the word boundary "▁" of a character vocabulary; an error for
    any other vocabulary."""
    sp = vocab.sp
    longer = [
        sp.id_to_piece(i)
        for i in range(len(vocab))
        if not (sp.is_control(i) or sp.is_unknown(i)) and len(sp.id_to_piece(i)) > 1
    ]
    if longer or sp.piece_to_id(_SPACE) == UNK:
        example = f" (e.g. {longer[0]!r})" if longer else ""
        raise S2SError(
            f"{where + ': ' if where else ''}--lexicon needs a model with a character "
            f"vocabulary (`s2s prep speech --chars`); this one has longer pieces"
            f"{example}"
        )
    return sp.piece_to_id(_SPACE)


def _char_ids(vocab: Vocab) -> np.ndarray:
    """Token id of each code point that is a piece of the vocabulary (-1: none)."""
    sp = vocab.sp
    pieces = {
        sp.id_to_piece(i): i
        for i in range(len(vocab))
        if not (sp.is_control(i) or sp.is_unknown(i))
    }
    table = np.full(max(ord(p) for p in pieces) + 1, -1, dtype=np.int32)
    for piece, i in pieces.items():
        table[ord(piece)] = i
    return table


class LexiconScorer:
    """A `Lexicon` as a `s2s.decode.beam.Scorer`: -weight once for each word not
    in the list. State: the trie node of each hypothesis row (N,), 0 between
    words, -1 once its word has left the list."""

    def __init__(self, lexicon: Lexicon, weight: float):
        self.lexicon, self.weight = lexicon, weight

    def init_state(self, batch_size: int, device: torch.device) -> torch.Tensor:
        self.lexicon.to(device)
        return torch.zeros(batch_size, dtype=torch.long, device=device)

    def _ends(self, node: torch.Tensor) -> torch.Tensor:
        """Ending the current word here costs the weight: a word started (node >
        0) that is not a word of the list."""
        return (node > 0) & ~self.lexicon.word_end[node.clamp_min(0)]

    def score(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        lex = self.lexicon
        node = state[:, None].expand_as(tokens)  # (N, C)
        boundary = (tokens == lex.space) | (tokens == EOS)
        leaves = (node >= 0) & (lex.child(node, tokens) < 0)
        pay = torch.where(boundary, self._ends(node), leaves & ~boundary)
        return pay.float() * -self.weight  # (N, C)

    def advance(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        boundary = (tokens == self.lexicon.space) | (tokens == EOS)
        return torch.where(boundary, 0, self.lexicon.child(state, tokens))

    def final(self, state: torch.Tensor) -> torch.Tensor:
        """Ending the utterance: the last word pays if it is unfinished."""
        return self._ends(state).float() * -self.weight
