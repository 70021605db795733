"""`load_task`: the task object of `model.task` for a prep directory."""

from __future__ import annotations

from pathlib import Path

from s2s.config import Config
from s2s.data.binarized import read_meta
from s2s.errors import S2SError
from s2s.train.ctc_task import CTCTask
from s2s.train.joint_task import JointTask
from s2s.train.lm_task import LMTask
from s2s.train.tasks import Task
from s2s.train.translation_task import TranslationTask

__all__ = ["load_task"]

# Which `s2s prep` output each model.task trains on, and the task to suggest for it.
_DATA_FOR_TASK = {
    "translation": "translation",
    "ctc": "speech",
    "joint": "speech",
    "lm": "monolingual",
}
_TASK_FOR_DATA = {
    "translation": "translation",
    "speech": "ctc (or joint)",
    "monolingual": "lm",
}


def load_task(cfg: Config, data_dir: str | Path) -> Task:
    """The task of `cfg.model.task`, reading the prep directory `data_dir`."""
    kind = read_meta(data_dir).get("task")
    task = cfg.model.task
    if kind != _DATA_FOR_TASK[task]:
        other = _TASK_FOR_DATA.get(kind)
        hint = f"; set model.task={other}" if other else ""
        raise S2SError(
            f"{data_dir} holds {kind} data (s2s prep), but model.task={task} needs "
            f"{_DATA_FOR_TASK[task]} data{hint}"
        )
    if task == "translation":
        return TranslationTask(cfg, data_dir)
    if task == "joint":
        return JointTask(cfg, data_dir)
    if task == "lm":
        return LMTask(cfg, data_dir)
    return CTCTask(cfg, data_dir)
