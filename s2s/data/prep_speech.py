"""`s2s prep speech`: manifests in; log-mel shards, CMVN statistics, a vocabulary out.

Utterances stream one at a time (decode, resample, features, write), so memory does
not grow with the corpus; a long held-out recording streams a minute at a time
(`AudioReader`, `ShardWriter.add_blocks`), so it does not grow with the recording.
Every problem names the manifest line and the audio file; with `skip_bad` an
utterance whose audio cannot be used is skipped and counted instead. Manifest syntax
errors always stop the run: they are fixed in the manifest.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from s2s.atomic import build_dir
from s2s.data.audio import AudioReader, Utterance, read_manifest, speed_perturb
from s2s.data.binarized import ShardWriter, write_meta
from s2s.data.features import GlobalCMVN
from s2s.data.speech import FeatureSettings, min_ctc_frames, subsampled_length
from s2s.data.vocab import Vocab, train_sentencepiece
from s2s.errors import S2SError, where

__all__ = ["SpeechPrepOptions", "prep_speech"]


@dataclass
class SpeechPrepOptions:
    train: str
    valid: str
    test: str | None = None
    vocab_size: int = 1000
    chars: bool = False  # a character vocabulary instead of unigram pieces
    features: str = "fbank"
    num_mels: int = 80
    sample_rate: int = 16000
    max_seconds: float = 30.0  # longer training utterances are dropped (counted)
    skip_bad: bool = False
    speed_perturb: tuple[float, ...] = ()  # extra training copies at these speeds
    # Reuse a checkpoint's vocabulary instead of training one (fine-tuning it on this
    # data with train.init_from): the path (recorded), its vocabulary and its
    # feature settings (None: a checkpoint without audio features), which must be
    # what this prep computes (`s2s.checkpoint.target_vocab_and_features`).
    vocab_from: str | None = None
    vocab: Vocab | None = None
    vocab_features: dict | None = None
    shard_size: int = 100_000
    stats: dict = field(default_factory=dict)


@dataclass
class _Item:
    id: str
    line: int  # manifest line number
    utt: Utterance
    speed: float = 1.0


def _items(manifest: str, utts: list[Utterance], speeds: tuple) -> Iterator[_Item]:
    for k, utt in enumerate(utts):
        yield _Item(utt.id, k + 2, utt)  # line 1 is the header
        for s in speeds:
            yield _Item(f"{utt.id}-sp{s:g}", k + 2, utt, s)


def prep_speech(
    opts: SpeechPrepOptions, out: str | Path, log: Callable[[str], None] = print
) -> dict:
    """Run the whole preparation into directory `out`, built beside it and swapped
    in when complete (`s2s.atomic.build_dir`): an interrupted run leaves the old
    directory as it was. Returns the stats written."""
    t0 = time.time()
    inputs = [p for p in (opts.train, opts.valid, opts.test) if p]
    with build_dir(out, "meta.json", inputs) as tmp:
        stats = _prep_speech(opts, tmp, log)
    log(f"wrote {out} in {time.time() - t0:.1f}s")
    return stats


def _prep_speech(
    opts: SpeechPrepOptions, out: Path, log: Callable[[str], None]
) -> dict:
    """The preparation, into the (new, temporary) directory `out`."""
    from rich.console import Console
    from rich.progress import Progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": opts.train, "valid": opts.valid}
    if opts.test:
        splits["test"] = opts.test
    manifests = {s: read_manifest(path) for s, path in splits.items()}
    if not manifests["train"]:
        raise S2SError(f"{opts.train}: no training utterances")
    if opts.features not in ("fbank", "melspec"):
        raise S2SError(f"unknown features {opts.features!r}: fbank or melspec")
    bad_speeds = [s for s in opts.speed_perturb if s <= 0 or s == 1.0]
    if bad_speeds:
        raise S2SError(f"speed factors must be positive and not 1, got {bad_speeds}")

    settings = FeatureSettings(opts.features, opts.num_mels, opts.sample_rate)
    texts = [u.text for u in manifests["train"]]
    if opts.vocab_from:
        vocab = _reused_vocab(opts, settings)
        log(f"reusing the vocabulary of {opts.vocab_from} ({len(vocab)} symbols)")
    elif opts.chars:
        log("training a character vocabulary ...")
        vocab = train_sentencepiece(texts, vocab_size=10_000, model_type="char")
    else:
        log(f"training SentencePiece (unigram, {opts.vocab_size} pieces) ...")
        vocab = train_sentencepiece(texts, vocab_size=opts.vocab_size, log=log)
    (out / "spm.model").write_bytes(vocab.proto)
    dtype = "uint16" if len(vocab) < 2**16 else "int32"

    cmvn = GlobalCMVN(opts.num_mels)
    stats: dict[str, dict] = {}
    shards: dict[str, dict[str, list[str]]] = {}
    console = Console(stderr=True)
    threads = torch.get_num_threads()
    # Per-utterance tensors are small: more threads only wait on each other (5x
    # slower measured with 2 threads on a busy 2-core machine).
    torch.set_num_threads(1)
    try:
        with Progress(console=console) as progress:
            for split, manifest in splits.items():
                utts = manifests[split]
                speeds = opts.speed_perturb if split == "train" else ()
                task = progress.add_task(
                    f"features {split}", total=len(utts) * (1 + len(speeds))
                )
                stats[split], shards[split] = _write_split(
                    opts,
                    split,
                    _items(manifest, utts, speeds),
                    manifest,
                    out,
                    vocab,
                    dtype,
                    settings,
                    cmvn if split == "train" else None,
                    tick=lambda t=task: progress.advance(t),
                )
    finally:
        torch.set_num_threads(threads)
    if stats["train"]["kept"] == 0:
        raise S2SError(f"{opts.train}: no usable training utterances")
    write_meta(
        out,
        {
            "task": "speech",
            "vocab": {"tgt": "spm.model"},
            "vocab_size": {"tgt": len(vocab)},
            "dtype": dtype,
            "features": settings.to_dict(),
            "cmvn": cmvn.to_dict(),
            "shards": shards,
            "stats": stats,
            "options": {
                "vocab_size": opts.vocab_size,
                "chars": opts.chars,
                "max_seconds": opts.max_seconds,
                "speed_perturb": list(opts.speed_perturb),
                "vocab_from": opts.vocab_from,
                "manifests": splits,
            },
        },
    )
    _report(stats, len(vocab), opts, log)
    return stats


def _write_split(
    opts: SpeechPrepOptions,
    split: str,
    items: Iterator[_Item],
    manifest: str,
    out: Path,
    vocab: Vocab,
    dtype: str,
    settings: FeatureSettings,
    cmvn: GlobalCMVN | None,
    tick: Callable[[], None],
) -> tuple[dict, dict[str, list[str]]]:
    """Features and targets of one split; training utterances over `max_seconds`
    are dropped, and the training set's frames go into `cmvn`."""
    extract = settings.extractor()
    wf = ShardWriter(out, f"{split}.feats", "float16", opts.shard_size)
    wt = ShardWriter(out, f"{split}.tgt", dtype, opts.shard_size)
    counts: Counter = Counter()
    limit = opts.max_seconds if split == "train" else None
    with (
        open(out / f"{split}.ref.txt", "w", encoding="utf-8") as refs,
        open(out / f"{split}.ids.txt", "w", encoding="utf-8") as ids,
    ):
        for item in items:
            tick()
            counts["utterances"] += 1
            if limit and item.utt.duration / item.speed > limit:
                counts["dropped_too_long"] += 1
                continue
            try:
                reader = AudioReader(item.utt.path, settings.sample_rate)
                if limit and reader.seconds / item.speed > limit:  # the header's
                    counts["dropped_too_long"] += 1
                    continue
                blocks = _feature_blocks(item, reader, extract)
                if cmvn is None:  # held out: any length, written as computed
                    frames = wf.add_blocks(blocks)
                else:  # training: at most max_seconds
                    feats = np.concatenate(list(blocks))
                    frames = len(feats)
            except S2SError as e:
                if not opts.skip_bad:
                    raise S2SError(
                        f"{where(manifest, item.line)}: {e} (--skip-bad skips such "
                        f"utterances)"
                    ) from None
                counts["skipped_bad_audio"] += 1
                continue
            seconds = frames * settings.frame_shift_ms / 1000
            if cmvn is not None:
                if limit and seconds > limit:
                    counts["dropped_too_long"] += 1
                    continue
                cmvn.update(torch.from_numpy(feats.astype(np.float32)))
                wf.add(feats)
            (tokens,) = vocab.encode([item.utt.text])
            need = min_ctc_frames(torch.tensor([tokens]), torch.tensor([len(tokens)]))
            if subsampled_length(frames) < int(need):  # conv: the stricter
                counts["too_fast_for_ctc"] += 1
            counts["unk_tokens"] += tokens.count(1)
            wt.add(tokens)
            refs.write(item.utt.text + "\n")
            ids.write(item.id + "\n")
            counts["seconds"] += seconds
    counts.update(kept=wf.items, frames=wf.tokens, tokens=wt.tokens)
    counts["seconds"] = round(counts["seconds"], 1)
    return dict(counts), {"feats": wf.close(), "tgt": wt.close()}


# Features are computed this many frames at a time (60 s of audio): a long
# held-out recording is never whole in memory, as waveform or as features.
_BLOCK_FRAMES = 6000


def _feature_blocks(item: _Item, reader: AudioReader, extract) -> Iterator[np.ndarray]:
    """(t, F) float16 log-mel features of one item, a block of frames at a time
    (each frame depends on its own samples only, so the blocks are exactly the
    whole recording's features); S2SError names the audio."""
    if item.speed != 1.0:  # training only, so at most max_seconds: whole
        wave = reader.read(0, reader.num_samples)
        wave = speed_perturb(wave, reader.sample_rate, item.speed)
        yield _checked(extract, wave, item)
        return
    frames = extract.num_frames(reader.num_samples)
    if frames == 0:  # the extractor's own message
        yield _checked(extract, reader.read(0, reader.num_samples), item)
        return
    for a in range(0, frames, _BLOCK_FRAMES):
        b = min(a + _BLOCK_FRAMES, frames)
        wave = reader.read(a * extract.shift, (b - 1) * extract.shift + extract.window)
        yield _checked(extract, wave, item)


def _checked(extract, wave: torch.Tensor, item: _Item) -> np.ndarray:
    try:
        feats = extract(wave)  # (T, F)
    except S2SError as e:
        raise S2SError(f"{item.utt.path}: {e}") from None
    feats = feats.numpy().astype(np.float16)
    if not np.isfinite(feats).all():
        raise S2SError(f"{item.utt.path}: features out of float16 range")
    return feats


def _reused_vocab(opts: SpeechPrepOptions, settings: FeatureSettings) -> Vocab:
    """`opts.vocab`, once its checkpoint's features are known to be these."""
    if opts.vocab is None:
        raise S2SError(f"{opts.vocab_from}: its vocabulary was not read")
    theirs = opts.vocab_features
    if theirs is not None and theirs != settings.to_dict():
        differ = ", ".join(
            f"{k} {theirs.get(k)} there, {v} here"
            for k, v in settings.to_dict().items()
            if theirs.get(k) != v
        )
        raise S2SError(
            f"--vocab-from {opts.vocab_from}: its features differ ({differ}); "
            f"prepare with its --features, --num-mels and --sample-rate, or its "
            f"weights (train.init_from) would mean something else here"
        )
    return opts.vocab


def _report(stats: dict, vocab_size: int, opts, log) -> None:
    kind = "characters" if opts.chars else "pieces"
    if opts.vocab_from:
        kind = f"from {opts.vocab_from}"
    log(f"vocabulary: {vocab_size} symbols ({kind})")
    for split, s in stats.items():
        problems = ", ".join(
            f"{s[k]} {k.replace('_', ' ')}"
            for k in ("dropped_too_long", "skipped_bad_audio")
            if s.get(k)
        )
        log(
            f"{split}: kept {s['kept']} of {s['utterances']} utterances "
            f"({s['seconds'] / 60:.1f} min, {s['tokens']} tokens)"
            + (f"; {problems}" if problems else "")
        )
        if s.get("too_fast_for_ctc"):
            log(
                f"warning: {split}: {s['too_fast_for_ctc']} utterances have more "
                f"tokens than 4x-subsampled frames; CTC cannot align them and "
                f"training counts them as infinite losses (try --chars or fewer "
                f"pieces)"
            )
        if s.get("unk_tokens"):
            log(f"{split}: {s['unk_tokens']} tokens unknown to the vocabulary")
