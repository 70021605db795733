"""`s2s prep text`: parallel text files to SentencePiece models and binarized shards.

Three streaming passes over the training files, so memory stays bounded at any size:
check (encoding, empty lines, equal line counts), train SentencePiece (it samples at
most `max_sentences`), then encode in chunks, filter and write shards.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from s2s.atomic import build_dir
from s2s.data.binarized import ShardWriter, write_meta
from s2s.data.text import iter_parallel
from s2s.data.vocab import EOS, Vocab, train_sentencepiece
from s2s.errors import S2SError

__all__ = ["PrepOptions", "prep_text"]

_CHUNK = 10_000


@dataclass
class PrepOptions:
    src: str
    tgt: str
    train: str
    valid: str
    test: str | None = None
    vocab_size: int = 8000
    spm_type: str = "unigram"
    joint_vocab: bool = False
    max_len: int = 250
    max_ratio: float = 3.0
    drop_empty: bool = False
    shard_size: int = 1_000_000
    max_spm_sentences: int = 1_000_000  # memory grows with this sample, not the corpus
    stats: dict = field(default_factory=dict)


def _paths(prefix: str, lang: str) -> Path:
    return Path(f"{prefix}.{lang}")


def _pairs(opts: PrepOptions, prefix: str) -> Iterator[tuple[int, str, str]]:
    return iter_parallel(
        _paths(prefix, opts.src), _paths(prefix, opts.tgt), drop_empty=opts.drop_empty
    )


def _count(opts: PrepOptions, prefix: str, tick: Callable[[int], None]) -> Counter:
    """Pass 1: every line is checked; returns line and pair counts."""
    counts: Counter = Counter()
    last = 0
    for lineno, _, _ in _pairs(opts, prefix):
        counts["pairs"] += 1
        last = lineno
        if lineno % _CHUNK == 0:
            tick(_CHUNK)
    # Line numbers skip over dropped empty pairs; the last one read is the total
    # unless trailing lines were empty: count those from the source file.
    with open(_paths(prefix, opts.src), "rb") as f:
        total = sum(1 for _ in f)
    counts["lines"] = max(total, last)
    counts["dropped_empty"] = counts["lines"] - counts["pairs"]
    return counts


def prep_text(
    opts: PrepOptions, out: str | Path, log: Callable[[str], None] = print
) -> dict:
    """Run the whole preparation into directory `out`, built beside it and swapped
    in when complete (`s2s.atomic.build_dir`): an interrupted run leaves the old
    directory as it was. Returns the stats written."""
    t0 = time.time()
    inputs = [
        _paths(p, lang)
        for p in (opts.train, opts.valid, opts.test)
        if p
        for lang in (opts.src, opts.tgt)
    ]
    with build_dir(out, "meta.json", inputs) as tmp:
        stats = _prep_text(opts, tmp, log)
    log(f"wrote {out} in {time.time() - t0:.1f}s")
    return stats


def _prep_text(opts: PrepOptions, out: Path, log: Callable[[str], None]) -> dict:
    """The preparation, into the (new, temporary) directory `out`."""
    from rich.console import Console
    from rich.progress import Progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": opts.train, "valid": opts.valid}
    if opts.test:
        splits["test"] = opts.test
    for prefix in splits.values():
        for lang in (opts.src, opts.tgt):
            if not _paths(prefix, lang).is_file():
                raise S2SError(f"{_paths(prefix, lang)}: no such file")
    stats: dict[str, dict] = {}
    console = Console(stderr=True)
    with Progress(transient=True, console=console) as progress:
        for split, prefix in splits.items():
            task = progress.add_task(f"checking {split}", total=None)
            stats[split] = dict(
                _count(opts, prefix, lambda n, t=task: progress.advance(t, n))
            )
            progress.remove_task(task)
    n_train = stats["train"]["pairs"]
    if n_train == 0:
        raise S2SError(f"{opts.train}.{opts.src}: no training pairs")
    total = sum(s["lines"] for s in stats.values())
    log(f"checked {total} lines in {len(splits)} splits")

    def side(k: int) -> Iterator[str]:
        for pair in _pairs(opts, opts.train):
            yield pair[k]

    def both() -> Iterator[str]:
        yield from side(1)
        yield from side(2)

    log(f"training SentencePiece ({opts.spm_type}, {opts.vocab_size} pieces) ...")
    kw = dict(
        vocab_size=opts.vocab_size,
        model_type=opts.spm_type,
        max_sentences=opts.max_spm_sentences,
        log=log,
    )
    if opts.joint_vocab:
        src_vocab = tgt_vocab = train_sentencepiece(
            both(), name="joint vocabulary", **kw
        )
        vocab_files = {"src": "spm.joint.model", "tgt": "spm.joint.model"}
    else:
        src_vocab = train_sentencepiece(side(1), name=f"{opts.src} vocabulary", **kw)
        tgt_vocab = train_sentencepiece(side(2), name=f"{opts.tgt} vocabulary", **kw)
        vocab_files = {"src": f"spm.{opts.src}.model", "tgt": f"spm.{opts.tgt}.model"}
    (out / vocab_files["src"]).write_bytes(src_vocab.proto)
    (out / vocab_files["tgt"]).write_bytes(tgt_vocab.proto)

    dtype = "uint16" if max(len(src_vocab), len(tgt_vocab)) < 2**16 else "int32"
    shards: dict[str, dict[str, list[str]]] = {}
    with Progress(console=console) as progress:
        for split, prefix in splits.items():
            task = progress.add_task(f"encoding {split}", total=stats[split]["pairs"])
            shards[split] = _encode_split(
                opts,
                split,
                prefix,
                out,
                src_vocab,
                tgt_vocab,
                dtype,
                stats[split],
                filtered=(split == "train"),
                tick=lambda n, t=task: progress.advance(t, n),
            )
    write_meta(
        out,
        {
            "task": "translation",
            "src": opts.src,
            "tgt": opts.tgt,
            "vocab": vocab_files,
            "vocab_size": {"src": len(src_vocab), "tgt": len(tgt_vocab)},
            "dtype": dtype,
            "shards": shards,
            "stats": stats,
            "options": {
                k: getattr(opts, k)
                for k in (
                    "vocab_size",
                    "spm_type",
                    "joint_vocab",
                    "max_len",
                    "max_ratio",
                )
            },
        },
    )
    for split, s in stats.items():
        dropped = ", ".join(
            f"{s[k]} {k.removeprefix('dropped_')}"
            for k in ("dropped_empty", "dropped_too_long", "dropped_ratio")
            if s.get(k)
        )
        log(
            f"{split}: kept {s['kept']} of {s['lines']} lines "
            f"({s['src_tokens']} + {s['tgt_tokens']} tokens)"
            + (f"; dropped {dropped}" if dropped else "")
        )
    return stats


def _encode_split(
    opts: PrepOptions,
    split: str,
    prefix: str,
    out: Path,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    dtype: str,
    stats: dict,
    filtered: bool,
    tick: Callable[[int], None],
) -> dict[str, list[str]]:
    """Pass 3: encode in chunks; training pairs are filtered by length and ratio."""
    ws = ShardWriter(out, f"{split}.src", dtype, opts.shard_size)
    wt = ShardWriter(out, f"{split}.tgt", dtype, opts.shard_size)
    # The kept raw text of held-out splits, for BLEU against detokenized output.
    refs = None if filtered else open(out / f"{split}.ref.{opts.tgt}", "w")  # noqa: SIM115
    srcs = None if filtered else open(out / f"{split}.raw.{opts.src}", "w")  # noqa: SIM115
    counts = Counter()
    pairs = _pairs(opts, prefix)
    try:
        while chunk := list(islice(pairs, _CHUNK)):
            src_ids = src_vocab.encode([s for _, s, _ in chunk])
            tgt_ids = tgt_vocab.encode([t for _, _, t in chunk])
            for (_, s, t), si, ti in zip(chunk, src_ids, tgt_ids, strict=True):
                ls, lt = len(si) + 1, len(ti) + 1  # with EOS
                if filtered and max(ls, lt) > opts.max_len:
                    counts["dropped_too_long"] += 1
                    continue
                if filtered and max(ls, lt) > opts.max_ratio * min(ls, lt):
                    counts["dropped_ratio"] += 1
                    continue
                ws.add(si + [EOS])
                wt.add(ti)  # BOS/EOS are added when batches are made
                if refs is not None:
                    refs.write(t + "\n")
                    srcs.write(s + "\n")
            tick(len(chunk))
    finally:
        if refs is not None:
            refs.close()
            srcs.close()
    stats.update(counts)
    stats.update(kept=ws.items, src_tokens=ws.tokens, tgt_tokens=wt.tokens)
    return {"src": ws.close(), "tgt": wt.close()}
