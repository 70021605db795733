"""Typed, strict configuration.

Each section is a dataclass whose fields carry their own help text. A config is built
from the defaults, then a YAML file, then dotted `--set section.key=value` overrides;
an unknown or misspelt key, or a value of the wrong type, is an error naming the key.
The resolved config is stored in every checkpoint (`Config.to_dict`), so decoding
never needs the YAML again. The sections, every key with its default and help, are
in `s2s.config_sections`; this module loads, overrides and validates them.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from s2s.config_sections import DecodeConfig, ModelConfig, TrainConfig
from s2s.errors import S2SError

__all__ = [
    "Config",
    "ModelConfig",
    "TrainConfig",
    "DecodeConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "describe_config",
]


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            f.name: dataclasses.asdict(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }


_SECTIONS = {f.name: f for f in dataclasses.fields(Config)}


def _section_fields(section: str) -> dict[str, dataclasses.Field]:
    cls = _SECTIONS[section].default_factory  # type: ignore[misc]
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        f.type = hints[f.name]
        out[f.name] = f
    return out


def _unknown(kind: str, name: str, choices: list[str]) -> S2SError:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return S2SError(
        f"unknown config {kind} {name!r}{hint}; known: {', '.join(choices)}"
    )


def _coerce(key: str, value: Any, tp: Any, from_string: bool) -> Any:
    """Check `value` against type `tp`; strings from `--set` are parsed first."""
    origin = typing.get_origin(tp)
    if from_string and isinstance(value, str) and tp is not str:
        if tp in (int, float):
            try:
                return tp(value)  # also takes 3e-3, which YAML 1.1 reads as a string
            except ValueError:
                raise S2SError(f"{key} must be {tp.__name__}, got {value!r}") from None
        if origin is not Literal:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise S2SError(f"{key}: cannot parse {value!r}: {e}") from None
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise S2SError(
                f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}"
            )
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise S2SError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(
            _coerce(key, v, a, from_string=False)
            for v, a in zip(value, args, strict=True)
        )
    if origin in (types.UnionType, typing.Union):
        raise AssertionError("union config types are not supported")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise AssertionError(f"unsupported config type {tp}")
    raise S2SError(f"{key} must be {tp.__name__}, got {value!r}")


def _set(cfg: Config, section: str, key: str, value: Any, from_string: bool) -> None:
    if section not in _SECTIONS:
        raise _unknown("section", section, list(_SECTIONS))
    fields = _section_fields(section)
    if key not in fields:
        raise _unknown("key", f"{section}.{key}", [f"{section}.{k}" for k in fields])
    value = _coerce(f"{section}.{key}", value, fields[key].type, from_string)
    setattr(getattr(cfg, section), key, value)


def config_from_dict(
    data: dict[str, Any], source: str = "config", base: Config | None = None
) -> Config:
    """Build a Config from nested dicts (YAML or a checkpoint), strictly: the
    defaults (or a copy of `base`) with the keys of `data` set."""
    cfg = copy.deepcopy(base) if base is not None else Config()
    if data is None:
        return cfg
    if not isinstance(data, dict):
        raise S2SError(f"{source}: expected a mapping of sections, got {type(data)}")
    for section, values in data.items():
        if section not in _SECTIONS:
            raise _unknown("section", str(section), list(_SECTIONS))
        if values is None:
            continue
        if not isinstance(values, dict):
            raise S2SError(f"{source}: section {section!r} must be a mapping")
        for key, value in values.items():
            _set(cfg, section, str(key), value, from_string=False)
    validate(cfg)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings (values parsed as YAML scalars)."""
    for item in overrides:
        if "=" not in item:
            raise S2SError(f"--set expects section.key=value, got {item!r}")
        dotted, value = item.split("=", 1)
        if dotted.count(".") != 1:
            raise S2SError(f"--set expects section.key=value, got {item!r}")
        section, key = dotted.strip().split(".")
        _set(cfg, section, key, value.strip(), from_string=True)
    validate(cfg)
    return cfg


def load_config(
    path: str | Path | None = None,
    overrides: list[str] = (),
    base: dict[str, Any] | None = None,
) -> Config:
    """Defaults (or `base`, a stored config: a resumed checkpoint's), then the YAML
    file at `path` (if any), then `--set` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise S2SError(f"{path}: cannot read config: {e.strerror}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise S2SError(f"{path}: not valid YAML: {e}") from None
    start = None if base is None else config_from_dict(base, source="checkpoint")
    cfg = config_from_dict(data, source=str(path), base=start)
    return apply_overrides(cfg, list(overrides))


def validate(cfg: Config) -> None:
    """Checks that involve more than one key."""
    m, t, d = cfg.model, cfg.train, cfg.decode
    positive = {
        "model.emb_dim": m.emb_dim,
        "model.enc_hidden_size": m.enc_hidden_size,
        "model.hidden_size": m.hidden_size,
        "model.enc_layers": m.enc_layers,
        "model.dec_layers": m.dec_layers,
        "model.num_mels": m.num_mels,
        "train.batch_tokens": t.batch_tokens,
        "train.accum_steps": t.accum_steps,
        "train.valid_every": t.valid_every,
        "train.save_every": t.save_every,
        "train.log_every": t.log_every,
        "decode.beam": d.beam,
        "decode.nbest": d.nbest,
        "decode.batch_tokens": d.batch_tokens,
    }
    for key, value in positive.items():
        if value <= 0:
            raise S2SError(f"{key} must be positive, got {value}")
    if m.attention == "dot" and 2 * m.enc_hidden_size != m.hidden_size:
        raise S2SError(
            "model.attention=dot needs 2 * model.enc_hidden_size == model.hidden_size "
            f"(got {m.enc_hidden_size} and {m.hidden_size}); use general or mlp"
        )
    if not 0.0 <= m.dropout < 1.0:
        raise S2SError(f"model.dropout must be in [0, 1), got {m.dropout}")
    if m.param_init < 0.0:
        raise S2SError(f"model.param_init must be >= 0, got {m.param_init}")
    if not 0.0 <= m.label_smoothing < 1.0:
        raise S2SError(
            f"model.label_smoothing must be in [0, 1), got {m.label_smoothing}"
        )
    for key, value in {
        "model.ctc_weight": m.ctc_weight,
        "decode.ctc_weight": d.ctc_weight,
    }.items():
        if not 0.0 <= value <= 1.0:
            raise S2SError(f"{key} must be in [0, 1], got {value}")
    if d.ctc_candidates < 0:
        raise S2SError(f"decode.ctc_candidates must be >= 0, got {d.ctc_candidates}")
    if t.tbptt_steps < 0:
        raise S2SError(f"train.tbptt_steps must be >= 0, got {t.tbptt_steps}")
    if t.max_bad_steps < 0:
        raise S2SError(f"train.max_bad_steps must be >= 0, got {t.max_bad_steps}")
    for key, value in {
        "model.subsample_channels": m.subsample_channels,
        "model.freq_masks": m.freq_masks,
        "model.freq_width": m.freq_width,
        "model.time_masks": m.time_masks,
        "model.max_time_width": m.max_time_width,
    }.items():
        if value < 0:
            raise S2SError(f"{key} must be >= 0, got {value}")
    if not 0.0 <= m.time_width_ratio <= 1.0:
        raise S2SError(
            f"model.time_width_ratio must be in [0, 1], got {m.time_width_ratio}"
        )
    speech = m.task in ("ctc", "joint")
    if speech and m.subsample == "conv" and m.num_mels < 7:
        raise S2SError(
            f"model.subsample=conv needs model.num_mels >= 7, got {m.num_mels}"
        )
    if m.task != "translation" and t.tbptt_steps:
        hint = " (the lm uses train.bptt)" if m.task == "lm" else ""
        raise S2SError(
            f"train.tbptt_steps is for translation; set it to 0 for {m.task}{hint}"
        )
    if t.bptt < 2:
        raise S2SError(f"train.bptt must be >= 2, got {t.bptt}")
    needs = {"bleu": ("translation",), "wer": ("ctc", "joint")}.get(t.select_by, ())
    if needs and m.task not in needs:
        raise S2SError(
            f"train.select_by={t.select_by} needs model.task={' or '.join(needs)} "
            f"(got {m.task}); use loss"
        )
    if m.task == "ctc" and d.mode in ("joint", "attention"):
        raise S2SError(
            f"decode.mode={d.mode} needs an attention decoder (model.task=joint); "
            "a ctc model decodes with decode.mode=ctc"
        )
    if not 0.0 <= d.chunk_overlap < d.chunk_seconds / 2:
        raise S2SError(
            "decode.chunk_overlap must be >= 0 and under half of "
            f"decode.chunk_seconds, got {d.chunk_overlap} and {d.chunk_seconds}"
        )
    if d.nbest > d.beam:
        raise S2SError(f"decode.nbest ({d.nbest}) cannot exceed decode.beam ({d.beam})")


def describe_config(cfg: Config | None = None) -> str:
    """The config as YAML, every key preceded by its help text."""
    cfg = cfg or Config()
    lines = []
    for section in _SECTIONS:
        lines.append(f"{section}:")
        for name, f in _section_fields(section).items():
            value = getattr(getattr(cfg, section), name)
            if isinstance(value, tuple):
                value = list(value)
            tp = f.type
            kind = (
                "|".join(map(str, typing.get_args(tp)))
                if typing.get_origin(tp) is Literal
                else getattr(tp, "__name__", str(tp))
            )
            lines.append(f"  # {f.metadata['help']} [{kind}]")
            dumped = yaml.safe_dump({name: value}, default_flow_style=True).strip()
            lines.append(f"  {dumped[1:-1]}")
        lines.append("")
    return "\n".join(lines)
