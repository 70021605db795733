"""Where a run stands: progress, validation history and what went wrong so far.

It travels in every checkpoint (`state`), so a resumed run also remembers how many
steps in a row it had to skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["RunState", "selection_score"]


def selection_score(result: dict, select_by: str) -> float:
    """The number a validation result (`valid_loss`, `valid_bleu`, ...) is ranked by
    for best.pt and `s2s average --best`, lower is better: `valid_<select_by>`, BLEU
    negated; the loss where the result lacks that number."""
    key = f"valid_{select_by}"
    if key not in result:
        return result["valid_loss"]
    return -result[key] if key == "valid_bleu" else result[key]


@dataclass
class RunState:
    step: int = 0  # optimizer steps taken (skipped ones included)
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # next batch of the epoch's batch list
    epoch_batches: int = 0  # the length of that list (0: not known yet)
    best: float | None = None  # best validation score so far (lower is better)
    bad_evals: int = 0  # validations since the best one
    # the numbers of the best validation: step, valid_loss, valid_bleu, ...
    best_valid: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # training time of earlier runs of this job
    skipped_steps: int = 0  # steps dropped for non-finite gradients
    # ... the latest of them in a row; fp16 overflows, which the grad scaler
    # answers by lowering its scale, do not count
    nonfinite_in_a_row: int = 0
    oom_skipped: int = 0  # steps dropped because a batch ran out of memory
    oom_in_a_row: int = 0
    scale_drops: int = 0  # fp16: times the grad scaler lowered its scale

    def bad_run(self, limit: int, batch_tokens: int, device: torch.device) -> str:
        """Why to give up after too many skipped steps in a row ("": go on)."""
        if limit and self.nonfinite_in_a_row >= limit:
            return (
                f"{self.nonfinite_in_a_row} steps in a row (to step {self.step}) had "
                f"non-finite gradients (train.max_bad_steps={limit}): lower "
                f"train.lr, raise train.warmup_steps, or train.precision=fp32"
            )
        if limit and self.oom_in_a_row >= limit:
            return (
                f"{self.oom_in_a_row} steps in a row (to step {self.step}) ran out of "
                f"memory on {device}: lower train.batch_tokens (now {batch_tokens})"
            )
        return ""
