"""Starting a fresh run from another checkpoint's weights (`train.init_from`).

Every parameter whose name and shape match is copied; the rest keep their fresh
initialisation. The use it was made for: a joint CTC/attention model whose
subsampler, encoder and CTC head start from a trained CTC model, so that the
attention decoder learns over an encoder that already follows the audio instead of
learning the transcripts' text first (recipes/asr-cs/RESULTS.md). A checkpoint of
another vocabulary or other features would copy weights that mean something else,
so those are errors, not silent loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2s.checkpoint import load_checkpoint
from s2s.errors import S2SError

__all__ = ["init_from_checkpoint"]

# Checkpoint entries that must equal the run's for its weights to mean the same
# (the CMVN statistics may differ: other data normalises a little differently).
_MUST_MATCH = (("vocab", "vocabulary"), ("features", "feature settings"))


def _groups(names: list[str]) -> str:
    """['decoder.a', 'decoder.b', 'head.w'] -> 'decoder.* (2), head.w'."""
    tops: dict[str, int] = {}
    for n in names:
        tops[n.split(".")[0]] = tops.get(n.split(".")[0], 0) + 1
    return ", ".join(
        f"{top}.* ({k})" if k > 1 else next(n for n in names if n.split(".")[0] == top)
        for top, k in tops.items()
    )


def init_from_checkpoint(
    model: nn.Module, path: str | Path, extras: dict[str, Any], data_dir: str | Path
) -> str:
    """Copy into `model` every parameter and buffer of checkpoint `path` with the
    same name and shape; `extras` is the run's `task.checkpoint_extras()`. Returns
    one line saying what was copied and what was not; raises `S2SError` when the
    vocabulary or features differ or nothing fits."""
    ckpt = load_checkpoint(path)
    for key, what in _MUST_MATCH:
        if key in extras and ckpt.get(key) != extras[key]:
            raise S2SError(
                f"train.init_from={path} was trained with a different {what} than "
                f"{data_dir}; its weights would mean something else here (prepare "
                f"the data as that checkpoint's was)"
            )
    theirs: dict[str, torch.Tensor] = ckpt["model"]
    mine = model.state_dict()
    copied = [k for k, v in mine.items() if k in theirs and theirs[k].shape == v.shape]
    reshaped = [k for k in mine if k in theirs and k not in copied]
    if not copied:
        raise S2SError(
            f"train.init_from={path}: none of its weights fits this model (no "
            f"parameter with the same name and shape)"
        )
    with torch.no_grad():
        for k in copied:
            mine[k].copy_(theirs[k])  # state_dict() tensors share the parameters
    fresh = [k for k in mine if k not in copied]
    line = f"initialised {len(copied)} of {len(mine)} weight tensors from {path}"
    if fresh:
        line += f"; fresh: {_groups(fresh)}"
    if reshaped:
        line += f" ({len(reshaped)} of them had another shape there)"
    return line
