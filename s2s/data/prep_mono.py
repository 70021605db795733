"""`s2s prep text` with one side only: monolingual text for a language model.

Like the parallel preparation it streams (check, train SentencePiece on a sample,
encode in chunks), so memory stays bounded. The vocabulary is trained here, or
reused: an LM meant for shallow fusion must share the vocabulary of the model it is
fused with, so `spm_model` takes a SentencePiece model file (e.g. a translation prep
directory's `spm.joint.model`, a speech prep directory's `spm.model`) and
`vocab_from` a checkpoint, whose target vocabulary is used.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from s2s.atomic import build_dir
from s2s.data.binarized import ShardWriter, write_meta
from s2s.data.text import iter_lines
from s2s.data.vocab import UNK, Vocab, train_sentencepiece
from s2s.errors import S2SError, where

__all__ = ["MonoPrepOptions", "prep_mono"]

_CHUNK = 10_000


@dataclass
class MonoPrepOptions:
    lang: str
    train: str
    valid: str
    test: str | None = None
    vocab_size: int = 8000
    spm_type: str = "unigram"
    spm_model: str | None = None  # reuse this SentencePiece model file
    vocab_from: str | None = None  # the checkpoint `vocab` was read from (recorded)
    vocab: Vocab | None = None  # a vocabulary to reuse (the CLI reads --vocab-from)
    drop_empty: bool = False
    shard_size: int = 1_000_000
    max_spm_sentences: int = 1_000_000


def _lines(path: Path, drop_empty: bool, counts: Counter) -> Iterator[str]:
    for lineno, line in enumerate(iter_lines(path), 1):
        if line:
            yield line
        elif drop_empty:
            counts["dropped_empty"] += 1
        else:
            raise S2SError(
                f"{where(path, lineno)}: empty line (use --drop-empty to skip them)"
            )


def reused_vocab(opts: MonoPrepOptions) -> Vocab | None:
    """The vocabulary of `--spm-model` or `--vocab-from`, if either is given.

    Data preparation reads no checkpoint: for `--vocab-from` the caller passes the
    checkpoint's target vocabulary in `opts.vocab` (`s2s.checkpoint.target_vocab`)."""
    if opts.spm_model and (opts.vocab_from or opts.vocab is not None):
        raise S2SError("give --spm-model or --vocab-from, not both")
    if opts.spm_model:
        return Vocab.load(opts.spm_model)
    if opts.vocab_from and opts.vocab is None:
        raise S2SError(f"{opts.vocab_from}: its vocabulary was not read")
    return opts.vocab


def prep_mono(
    opts: MonoPrepOptions, out: str | Path, log: Callable[[str], None] = print
) -> dict:
    """Run the whole preparation into directory `out`, built beside it and swapped
    in when complete (`s2s.atomic.build_dir`): an interrupted run leaves the old
    directory as it was. Returns the stats written."""
    t0 = time.time()
    inputs = [f"{p}.{opts.lang}" for p in (opts.train, opts.valid, opts.test) if p]
    with build_dir(out, "meta.json", inputs) as tmp:
        stats = _prep_mono(opts, tmp, log)
    log(f"wrote {out} in {time.time() - t0:.1f}s")
    return stats


def _prep_mono(
    opts: MonoPrepOptions, out: str | Path, log: Callable[[str], None] = print
) -> dict:
    """Prepare monolingual text into directory `out`; returns the stats written."""
    from rich.console import Console
    from rich.progress import Progress

    out = Path(out)
    splits = {"train": opts.train, "valid": opts.valid}
    if opts.test:
        splits["test"] = opts.test
    paths = {split: Path(f"{prefix}.{opts.lang}") for split, prefix in splits.items()}
    for path in paths.values():
        if not path.is_file():
            raise S2SError(f"{path}: no such file")
    vocab = reused_vocab(opts)
    out.mkdir(parents=True, exist_ok=True)
    stats: dict[str, dict] = {}
    for split, path in paths.items():  # pass 1: every line is checked
        counts: Counter = Counter()
        stats[split] = {"lines": sum(1 for _ in _lines(path, opts.drop_empty, counts))}
        stats[split]["lines"] += counts["dropped_empty"]
        stats[split].update(counts)
    if stats["train"]["lines"] == stats["train"].get("dropped_empty", 0):
        raise S2SError(f"{paths['train']}: no training sentences")

    if vocab is None:
        log(f"training SentencePiece ({opts.spm_type}, {opts.vocab_size} pieces) ...")
        vocab = train_sentencepiece(
            _lines(paths["train"], True, Counter()),
            vocab_size=opts.vocab_size,
            model_type=opts.spm_type,
            max_sentences=opts.max_spm_sentences,
            log=log,
            name=f"{opts.lang} vocabulary",
        )
    else:
        log(f"reusing {opts.spm_model or opts.vocab_from} ({len(vocab)} pieces)")
    vocab_file = f"spm.{opts.lang}.model"
    (out / vocab_file).write_bytes(vocab.proto)

    dtype = "uint16" if len(vocab) < 2**16 else "int32"
    shards = {}
    with Progress(console=Console(stderr=True)) as progress:
        for split, path in paths.items():
            n = stats[split]["lines"] - stats[split].get("dropped_empty", 0)
            task = progress.add_task(f"encoding {split}", total=n)
            writer = ShardWriter(out, f"{split}.tgt", dtype, opts.shard_size)
            lines = _lines(path, True, Counter())
            unk = 0
            while chunk := list(islice(lines, _CHUNK)):
                for ids in vocab.encode(chunk):
                    writer.add(ids)  # BOS/EOS join the sentences when streamed
                    unk += int(np.count_nonzero(np.asarray(ids) == UNK))
                progress.advance(task, len(chunk))
            shards[split] = {"tgt": writer.close()}
            stats[split].update(kept=writer.items, tokens=writer.tokens, unk=unk)
    write_meta(
        out,
        {
            "task": "monolingual",
            "tgt": opts.lang,
            "vocab": {"tgt": vocab_file},
            "vocab_size": {"tgt": len(vocab)},
            "dtype": dtype,
            "shards": shards,
            "stats": stats,
            "options": {
                "vocab_size": opts.vocab_size,
                "spm_type": opts.spm_type,
                "spm_model": opts.spm_model,
                "vocab_from": opts.vocab_from,
            },
        },
    )
    for split, s in stats.items():
        n_empty = s.get("dropped_empty", 0)
        dropped = f"; dropped {n_empty} empty" if n_empty else ""
        log(
            f"{split}: {s['kept']} sentences, {s['tokens']} tokens "
            f"({s['unk']} unknown){dropped}"
        )
    return stats
