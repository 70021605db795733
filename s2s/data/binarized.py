"""Binarized token data: shards of concatenated token ids plus offset indexes.

A split/side is written as shards `{split}.{side}.{k:03d}.bin` (the token ids,
uint16 when the vocabulary allows, else int32) with `{...}.idx.npy` offsets beside
each, so readers memory-map the tokens instead of loading them. `meta.json` in the
directory lists the shards, counts and vocabularies.

Speech features use the same files: an item is a (T, F) array written row after
row (float16), the offsets count rows, and the reader is told F (`TokenArray(...,
dim=F)`).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from s2s.errors import S2SError

__all__ = [
    "ShardWriter",
    "TokenArray",
    "check_count",
    "check_vocab_size",
    "read_meta",
    "write_meta",
    "META_FORMAT",
]

META_FORMAT = 1


class ShardWriter:
    """Append token sequences (or (T, F) arrays, T counted); rotates to a new shard
    every `shard_size` items."""

    def __init__(self, directory: Path, name: str, dtype: str, shard_size: int):
        self.directory, self.name = directory, name
        self.dtype, self.shard_size = np.dtype(dtype), shard_size
        self.shards: list[str] = []
        self.items = 0
        self.tokens = 0
        self._file = None

    def _rotate(self) -> None:
        self._close_shard()
        stem = f"{self.name}.{len(self.shards):03d}"
        self.shards.append(stem)
        self._file = open(self.directory / f"{stem}.bin", "wb")  # noqa: SIM115
        self._offsets = array("q", [0])

    def add(self, ids: list[int] | np.ndarray) -> None:
        self.add_blocks([ids])

    def add_blocks(self, blocks: Iterable[list[int] | np.ndarray]) -> int:
        """Append one item given in consecutive pieces (the features of a long
        recording, written as they are computed, never whole in memory); returns
        its length. If `blocks` raises, the part written is removed and the
        error passes on, so the shard holds whole items only."""
        if self._file is None or len(self._offsets) > self.shard_size:
            self._rotate()
        start, n = self._file.tell(), 0
        try:
            for block in blocks:
                self._file.write(np.asarray(block, dtype=self.dtype).tobytes())
                n += len(block)
        except BaseException:
            self._file.seek(start)
            self._file.truncate()
            raise
        self._offsets.append(self._offsets[-1] + n)
        self.items += 1
        self.tokens += n
        return n

    def _close_shard(self) -> None:
        if self._file is not None:
            self._file.close()
            stem = self.shards[-1]
            np.save(
                self.directory / f"{stem}.idx.npy",
                np.frombuffer(self._offsets, dtype=np.int64),
            )
            self._file = None

    def close(self) -> list[str]:
        if self._file is None and not self.shards:
            self._rotate()  # an empty split still gets one (empty) shard
        self._close_shard()
        return self.shards


class TokenArray:
    """Read-only view of one split/side: `arr[i]` is a numpy array of token ids
    (int64), or with `dim` > 1 a (T, dim) float32 array of features."""

    def __init__(self, directory: Path, shards: list[str], dtype: str, dim: int = 1):
        self.dim = dim
        self.data, self.offsets, bases = [], [], [0]
        for stem in shards:
            idx_path, bin_path = (
                directory / f"{stem}.idx.npy",
                directory / f"{stem}.bin",
            )
            try:
                offsets = np.load(idx_path)
                size = bin_path.stat().st_size
                tokens = (
                    np.memmap(bin_path, dtype=dtype, mode="r")
                    if size
                    else np.zeros(0, dtype=dtype)
                )
            except (OSError, ValueError) as e:
                raise S2SError(f"{bin_path}: cannot read binarized data: {e}") from None
            if len(tokens) % dim:
                raise S2SError(f"{bin_path}: size is not a multiple of {dim} features")
            tokens = tokens.reshape(-1, dim) if dim > 1 else tokens
            if offsets[-1] != len(tokens):
                raise S2SError(f"{bin_path}: truncated or corrupt (index disagrees)")
            self.data.append(tokens)
            self.offsets.append(offsets)
            bases.append(bases[-1] + len(offsets) - 1)
        self.bases = np.asarray(bases)
        self.lengths = (
            np.concatenate([np.diff(o) for o in self.offsets])
            if self.offsets
            else np.zeros(0, dtype=np.int64)
        )

    def __len__(self) -> int:
        return int(self.bases[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        shard = int(np.searchsorted(self.bases, i, side="right")) - 1
        j = i - self.bases[shard]
        o = self.offsets[shard]
        out = self.data[shard][o[j] : o[j + 1]]
        if self.dim > 1:
            return np.asarray(out, dtype=np.float32)  # (T, dim)
        return np.asarray(out, dtype=np.int64)


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    meta = {"format": META_FORMAT, **meta}
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def read_meta(directory: str | Path) -> dict[str, Any]:
    """`meta.json` of a prep directory, checked: its fields have the right types
    and every shard and vocabulary file it names is there."""
    directory = Path(directory)
    path = directory / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except OSError:
        raise S2SError(
            f"{path}: not found; is {directory} a directory made by `s2s prep`?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise S2SError(f"{path}: corrupt: {str(e)[:200]}") from None
    if not isinstance(meta, dict):
        raise S2SError(f"{path}: corrupt: not a JSON object")
    if meta.get("format") != META_FORMAT:
        raise S2SError(
            f"{path}: data format {str(meta.get('format'))[:40]} is not "
            f"{META_FORMAT}; run `s2s prep` again"
        )
    for key, kind in (("task", str), ("dtype", str), ("shards", dict), ("vocab", dict)):
        if not isinstance(meta.get(key), kind):
            raise S2SError(f"{path}: corrupt: {key!r} missing or not a {kind.__name__}")
    if meta["dtype"] not in ("uint16", "int32"):
        raise S2SError(f"{path}: corrupt: dtype {meta['dtype'][:40]!r}")
    names = [v for v in meta["vocab"].values()]
    for split, sides in meta["shards"].items():
        if not isinstance(sides, dict) or not all(
            isinstance(stems, list) for stems in sides.values()
        ):
            raise S2SError(f"{path}: corrupt: shards of {split!r}")
        for stems in sides.values():
            names += [f"{stem}{ext}" for stem in stems for ext in (".bin", ".idx.npy")]
    for name in names:
        if not isinstance(name, str) or not name or "/" in name or name[0] == ".":
            raise S2SError(f"{path}: corrupt: file name {str(name)[:80]!r}")
        if not (directory / name).is_file():
            raise S2SError(
                f"{directory / name}: missing (named in {path}); the directory is "
                f"incomplete, run `s2s prep` again"
            )
    return meta


def check_count(meta: dict[str, Any], directory: Path, split: str, n: int) -> None:
    """The shards of `split` must hold the item count `meta.json` recorded."""
    kept = meta.get("stats", {}).get(split, {}).get("kept")
    if isinstance(kept, int) and kept != n:
        raise S2SError(
            f"{directory / 'meta.json'}: records {kept} {split} items but the shards "
            f"hold {n}; the directory is inconsistent, run `s2s prep` again"
        )


def check_vocab_size(meta: dict[str, Any], directory: Path, vocabs: dict) -> None:
    """Each loaded vocabulary (side -> Vocab) must have the size `meta.json`
    recorded: a vocabulary of another preparation would map ids to other pieces."""
    sizes = meta.get("vocab_size", {})
    for side, vocab in vocabs.items():
        want = sizes.get(side) if isinstance(sizes, dict) else None
        if isinstance(want, int) and want != len(vocab):
            raise S2SError(
                f"{directory / meta['vocab'][side]}: {len(vocab)} pieces, but "
                f"{directory / 'meta.json'} records {want}; run `s2s prep` again"
            )
