"""Typed, strict configuration.

Each section is a dataclass whose fields carry their own help text. A config is built
from the defaults, then a YAML file, then dotted `--set section.key=value` overrides;
an unknown or misspelt key, or a value of the wrong type, is an error naming the key.
The resolved config is stored in every checkpoint (`Config.to_dict`), so decoding
never needs the YAML again. The sections, every key with its default, help and
allowed values, are in `s2s.config_sections`; this module loads, overrides and
validates them. Every value passes `check_value` where it enters: YAML
(`config_from_dict`), `--set` (`apply_overrides`) and the decoding commands' options
(`with_options`, `check_option`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from s2s.config_sections import DecodeConfig, ModelConfig, TrainConfig
from s2s.config_yaml import parse_yaml_value, read_yaml, short
from s2s.errors import S2SError

__all__ = [
    "Config",
    "ModelConfig",
    "TrainConfig",
    "DecodeConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "with_options",
    "check_option",
    "check_value",
    "validate",
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
                raise S2SError(
                    f"{key} must be {tp.__name__}, got {short(value)}"
                ) from None
        if origin is not Literal:
            value = parse_yaml_value(value, key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise S2SError(
                f"{key} must be one of {', '.join(map(str, choices))}, "
                f"got {short(value)}"
            )
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise S2SError(
                f"{key} must be a list of {len(args)} values, got {short(value)}"
            )
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
    raise S2SError(f"{key} must be {tp.__name__}, got {short(value)}")


def _bounds(meta: dict[str, Any]) -> str:
    """The allowed range of a number, as an error message says it."""
    lo = ("[", meta["ge"]) if "ge" in meta else ("(", meta.get("gt"))
    hi = ("]", meta["le"]) if "le" in meta else (")", meta.get("lt"))
    if lo[1] is not None and hi[1] is not None:
        return f"in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo[1] is not None:
        return f"{'>=' if lo[0] == '[' else '>'} {_num(lo[1])}"
    return f"{'<=' if hi[0] == ']' else '<'} {_num(hi[1])}"


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def check_value(name: str, value: Any, f: dataclasses.Field) -> None:
    """Check a typed value against the constraints declared on its field (see
    `s2s.config_sections`): finite floats, bounds, patterns. `name` is what the
    error calls it: the key, or the command-line flag it came from."""
    meta = f.metadata
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            raise S2SError(f"{name} must be a finite number, got {short(value)}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            ok = (
                ("ge" not in meta or v >= meta["ge"])
                and ("gt" not in meta or v > meta["gt"])
                and ("le" not in meta or v <= meta["le"])
                and ("lt" not in meta or v < meta["lt"])
            )
            if not ok:
                each = " (each)" if isinstance(value, tuple) else ""
                raise S2SError(
                    f"{name} must be {_bounds(meta)}{each}, got {short(value)}"
                )
        pattern = meta.get("pattern")
        if isinstance(v, str) and pattern and not re.fullmatch(pattern, v):
            raise S2SError(f"{name} must be {meta['means']}, got {short(value)}")


def _set(
    cfg: Config,
    section: str,
    key: str,
    value: Any,
    from_string: bool,
    label: str | None = None,
) -> None:
    if section not in _SECTIONS:
        raise _unknown("section", section, list(_SECTIONS))
    fields = _section_fields(section)
    if key not in fields:
        raise _unknown("key", f"{section}.{key}", [f"{section}.{k}" for k in fields])
    name = label or f"{section}.{key}"
    value = _coerce(name, value, fields[key].type, from_string)
    check_value(name, value, fields[key])
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
    data = _renamed_keys(data, source)
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


def _renamed_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Configs of older s2s: `train.tbptt_steps` (translation's truncated BPTT)
    and `train.bptt` (the LM's) are one key now, `train.bptt`.

    A config that holds both was written whole by s2s (a checkpoint, a run's
    config.yaml): translation and speech take tbptt_steps, the LM keeps bptt. One
    that names tbptt_steps alone was written by a person: it is read as bptt,
    with a warning to rename it."""
    train = data.get("train")
    if not isinstance(train, dict) or "tbptt_steps" not in train:
        return data
    train = dict(train)
    steps = train.pop("tbptt_steps")
    task = (data.get("model") or {}).get("task", "translation")
    if "bptt" not in train:
        _deprecated(f"{source}: train.tbptt_steps", "train.bptt")
        train["bptt"] = steps
    elif task != "lm":
        train["bptt"] = steps
    return {**data, "train": train}


def _deprecated(old: str, new: str) -> None:
    print(f"warning: {old} is deprecated: use {new}", file=sys.stderr)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings (values parsed as YAML scalars)."""
    for item in overrides:
        if "=" not in item:
            raise S2SError(f"--set expects section.key=value, got {item!r}")
        dotted, value = item.split("=", 1)
        if dotted.count(".") != 1:
            raise S2SError(f"--set expects section.key=value, got {item!r}")
        section, key = dotted.strip().split(".")
        if (section, key) == ("train", "tbptt_steps"):
            _deprecated("--set train.tbptt_steps", "train.bptt")
            key = "bptt"
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
        data = read_yaml(path) or {}
    start = None if base is None else config_from_dict(base, source="checkpoint")
    cfg = config_from_dict(data, source=str(path), base=start)
    return apply_overrides(cfg, list(overrides))


def with_options(
    cfg: Config, values: dict[str, Any], labels: dict[str, str] | None = None
) -> Config:
    """A copy of `cfg` with `section.key` values set (None: left as it is), each
    checked as YAML and `--set` values are; errors call a key by its label (the
    command-line flag it came from) where `labels` has one."""
    labels = labels or {}
    cfg = copy.deepcopy(cfg)
    for dotted, value in values.items():
        if value is not None:
            section, key = dotted.split(".")
            _set(cfg, section, key, value, from_string=False, label=labels.get(dotted))
    validate(cfg)
    return cfg


def check_option(key: str, value: Any, label: str) -> Any:
    """Check a command-line option that has the type and allowed values of config
    key `key` (`--device` as `train.device`, `--threads` as `train.threads`) but is
    not stored in the config; returns the value."""
    section, name = key.split(".")
    _set(Config(), section, name, value, from_string=False, label=label)
    return value


def validate(cfg: Config) -> None:
    """Every value against its declared constraints (`check_value`), then the
    checks that involve more than one key."""
    for section in _SECTIONS:
        for name, f in _section_fields(section).items():
            check_value(f"{section}.{name}", getattr(getattr(cfg, section), name), f)
    m, t, d = cfg.model, cfg.train, cfg.decode
    if m.attention == "dot" and 2 * m.enc_hidden_size != m.hidden_size:
        raise S2SError(
            "model.attention=dot needs 2 * model.enc_hidden_size == model.hidden_size "
            f"(got {m.enc_hidden_size} and {m.hidden_size}); use general or mlp"
        )
    if d.max_len_ratio == 0 and d.max_len_a == 0:
        raise S2SError(
            "decode.max_len_ratio and decode.max_len_a are both 0: no output could "
            "be longer than 0 tokens"
        )
    speech = m.task in ("ctc", "joint")
    if speech and m.subsample == "conv" and m.num_mels < 7:
        raise S2SError(
            f"model.subsample=conv needs model.num_mels >= 7, got {m.num_mels}"
        )
    if m.noise_prob and not speech:
        raise S2SError(
            f"model.noise_prob adds noise to speech features: it needs model.task=ctc "
            f"or joint (got {m.task}); set it to 0"
        )
    if m.noise_snr_min > m.noise_snr_max:
        raise S2SError(
            f"model.noise_snr_min ({m.noise_snr_min:g}) is above model.noise_snr_max "
            f"({m.noise_snr_max:g})"
        )
    if m.inter_ctc_weight and not (speech and m.enc_layers >= 2):
        raise S2SError(
            f"model.inter_ctc_weight reads the middle encoder layer of a ctc or joint "
            f"model: it needs model.task=ctc or joint and model.enc_layers >= 2 (got "
            f"{m.task}, {m.enc_layers})"
        )
    if speech and t.bptt:
        raise S2SError(
            f"train.bptt (truncated BPTT) is for translation and lm; set it to 0 for "
            f"{m.task}"
        )
    if t.cooldown and not (t.max_steps or t.max_minutes):
        raise S2SError(
            f"train.cooldown={t.cooldown} ends the learning rate with the run's "
            "budget: it needs train.max_steps or train.max_minutes"
        )
    if m.task == "lm" and t.bptt == 1:
        raise S2SError("train.bptt must be >= 2 for the lm (0: 64), got 1")
    needs = {"bleu": ("translation",), "wer": ("ctc", "joint"), "cer": ("ctc", "joint")}
    needs = needs.get(t.select_by, ())
    if needs and m.task not in needs:
        raise S2SError(
            f"train.select_by={t.select_by} needs model.task={' or '.join(needs)} "
            f"(got {m.task}); use loss"
        )
    if m.task == "ctc" and d.mode in ("joint", "attention"):
        raise S2SError(
            f"decode.mode={d.mode} needs an attention decoder (model.task=joint); "
            "a ctc model has none: use mode ctc (decode.mode=ctc)"
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
            if any(k in f.metadata for k in ("ge", "gt", "le", "lt")):
                kind += f", {_bounds(f.metadata)}"
            elif "means" in f.metadata:
                kind += f": {f.metadata['means']}"
            lines.append(f"  # {f.metadata['help']} [{kind}]")
            dumped = yaml.safe_dump({name: value}, default_flow_style=True).strip()
            lines.append(f"  {dumped[1:-1]}")
        lines.append("")
    return "\n".join(lines)
