"""Typed, strict configuration.

Each section is a dataclass whose fields carry their own help text. A config is built
from the defaults, then a YAML file, then dotted `--set section.key=value` overrides;
an unknown or misspelt key, or a value of the wrong type, is an error naming the key.
The resolved config is stored in every checkpoint (`Config.to_dict`), so decoding
never needs the YAML again.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

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


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    task: Literal["translation", "ctc", "joint", "lm"] = _f(
        "translation",
        "what the model learns: translation (text to text, attention decoder), "
        "ctc (speech to text, CTC output layer over the encoder), joint (speech to "
        "text, a CTC output layer and the attention decoder over one encoder) or "
        "lm (an LSTM language model over monolingual text, for `s2s score ppl` and "
        "fusion)",
    )
    emb_dim: int = _f(
        256,
        "encoder input size: token embeddings (translation, source and target) or "
        "the subsampled speech frames' projection (ctc, joint); also the decoder's "
        "target embeddings (translation, joint)",
    )
    enc_hidden_size: int = _f(
        256, "encoder LSTM size per direction; encoder outputs are twice this"
    )
    hidden_size: int = _f(
        512,
        "decoder LSTM size (and attentional vector size) for translation and joint; "
        "the LSTM size of an lm",
    )
    enc_layers: int = _f(2, "bidirectional LSTM layers in the encoder")
    dec_layers: int = _f(
        1, "LSTM layers in the decoder (translation, joint) or the language model (lm)"
    )
    attention: Literal["dot", "general", "mlp"] = _f(
        "general",
        "dot and general: Luong; mlp: Bahdanau. dot needs "
        "2*enc_hidden_size == hidden_size",
    )
    input_feed: bool = _f(
        False,
        "feed the previous attentional vector into the decoder LSTM (Luong). Off, "
        "the whole target runs through one LSTM call: much faster training",
    )
    dropout: float = _f(0.3, "dropout on embeddings, between LSTM layers and outputs")
    tie_embeddings: bool = _f(
        True,
        "share the target (lm: input) embedding with the output layer (a "
        "projection to emb_dim is added when emb_dim != hidden_size)",
    )
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy loss")
    ctc_weight: float = _f(
        0.3,
        "joint: training loss = ctc_weight * CTC + (1 - ctc_weight) * attention "
        "cross-entropy, both summed over the batch and divided by the same count",
    )
    num_mels: int = _f(
        80, "speech: log-mel bins per frame; must match `s2s prep speech --num-mels`"
    )
    subsample: Literal["conv", "stack"] = _f(
        "conv",
        "speech: 4x frame-rate reduction before the encoder: two stride-2 3x3 "
        "convolutions, or 4 stacked frames and a linear layer (cheapest)",
    )
    subsample_channels: int = _f(
        0,
        "speech: channels of the conv subsampler (0: emb_dim); they cost much on CPUs",
    )
    specaugment: bool = _f(
        True, "speech: SpecAugment frequency and time masks on training batches"
    )
    freq_masks: int = _f(2, "speech SpecAugment: frequency masks per utterance")
    freq_width: int = _f(27, "speech SpecAugment: widest frequency mask, in mel bins")
    time_masks: int = _f(2, "speech SpecAugment: time masks per utterance")
    time_width_ratio: float = _f(
        0.05, "speech SpecAugment: widest time mask as a fraction of the utterance"
    )
    max_time_width: int = _f(
        40, "speech SpecAugment: widest time mask in frames (0: no cap)"
    )


@dataclass
class TrainConfig:
    max_steps: int = _f(0, "stop after this many optimizer steps (0: no limit)")
    max_epochs: int = _f(0, "stop after this many epochs (0: no limit)")
    max_minutes: float = _f(0.0, "stop after this much wall-clock time (0: no limit)")
    batch_tokens: int = _f(
        4096,
        "tokens per batch, counted with padding on the longer side (ctc: input "
        "feature frames, 100 a second)",
    )
    accum_steps: int = _f(1, "batches whose gradients add up into one step")
    lr: float = _f(1e-3, "peak learning rate (AdamW)")
    betas: tuple[float, float] = _f((0.9, 0.98), "AdamW betas")
    weight_decay: float = _f(0.0, "AdamW decoupled weight decay")
    schedule: Literal["inverse_sqrt", "plateau", "constant"] = _f(
        "inverse_sqrt",
        "after warmup: decay as 1/sqrt(step), halve on validation plateaus, or hold",
    )
    warmup_steps: int = _f(500, "linear warmup from 0 to lr over this many steps")
    plateau_factor: float = _f(0.5, "plateau schedule: multiply lr by this")
    plateau_patience: int = _f(2, "plateau schedule: validations without gain")
    min_lr: float = _f(1e-5, "the learning rate never falls below this")
    clip_norm: float = _f(1.0, "clip the global gradient norm to this (0: off)")
    max_bad_steps: int = _f(
        20,
        "stop with an error after this many steps in a row were skipped for "
        "non-finite gradients, or for running out of memory (0: never)",
    )
    tbptt_steps: int = _f(
        0,
        "truncated BPTT: run the target in chunks of this many steps, carrying the "
        "decoder state and accumulating every chunk's gradient (0: off)",
    )
    bptt: int = _f(
        64,
        "lm: tokens per truncated-BPTT segment; the hidden state is carried (and "
        "detached) from one segment to the next, batch_tokens // bptt streams wide",
    )
    bptt_random: bool = _f(
        False,
        "lm: vary the segment length (AWD-LSTM): bptt, or bptt / 2 with probability "
        "0.05, plus normal jitter (sd 5), drawn from (seed, epoch)",
    )
    precision: Literal["fp32", "bf16", "fp16"] = _f(
        "fp32", "bf16: autocast on CPU or CUDA; fp16: autocast plus grad scaler, CUDA"
    )
    device: str = _f("auto", "auto (cuda if available), cpu, cuda or cuda:N")
    seed: int = _f(1, "seed for initialisation, batch order and dropout")
    deterministic: bool = _f(
        False,
        "GPU: deterministic algorithms where torch has them (slower; cuDNN LSTMs "
        "and CTC backward may still vary, see docs/distributed.md)",
    )
    valid_every: int = _f(1000, "validate every this many steps (and at the end)")
    valid_bleu: bool = _f(
        True,
        "also decode the validation set greedily: BLEU and chrF (translation), "
        "WER and CER (ctc)",
    )
    valid_bleu_sents: int = _f(
        500, "at most this many validation sentences (utterances) decoded"
    )
    select_by: Literal["loss", "bleu", "wer"] = _f(
        "loss",
        "which validation number picks best.pt and drives early stopping (bleu: "
        "translation, wer: ctc)",
    )
    patience: int = _f(
        0, "stop after this many validations without improvement (0: never)"
    )
    save_every: int = _f(1000, "write last.pt and a numbered checkpoint this often")
    keep_last: int = _f(5, "numbered checkpoints kept (for `s2s average`)")
    log_every: int = _f(50, "write a metrics line this often")
    threads: int = _f(0, "CPU threads for torch (0: torch's default)")


@dataclass
class DecodeConfig:
    beam: int = _f(5, "beam size (1: greedy)")
    nbest: int = _f(1, "hypotheses printed per input")
    lenpen: float = _f(
        0.6,
        "translation: GNMT length penalty alpha, ((5 + len) / 6) ** alpha (speech: "
        "decode.length_bonus)",
    )
    max_len_ratio: float = _f(
        2.0,
        "translation: output at most ratio * source length + max_len_a tokens "
        "(speech: at most one token per encoder frame)",
    )
    max_len_a: int = _f(10, "translation: constant term of the maximum output length")
    batch_tokens: int = _f(
        6000, "source tokens per decoding batch (ctc: feature frames, 100 a second)"
    )
    max_input_tokens: int = _f(
        1024, "inputs longer than this (in subword tokens) are an error"
    )
    chunk_seconds: float = _f(
        30.0,
        "speech: audio longer than this is encoded in windows of at most this "
        "length, so memory stays bounded on long files (see chunk_overlap)",
    )
    chunk_overlap: float = _f(
        4.0,
        "ctc: seconds shared by neighbouring windows; stitched at the middle. "
        "joint, attention: audio is cut at the quietest point of this many seconds "
        "before each window's end, and the pieces are decoded one by one",
    )
    mode: Literal["auto", "joint", "attention", "ctc"] = _f(
        "auto",
        "speech search: joint (attention beam search, each hypothesis also scored "
        "by its CTC prefix probability), attention (the decoder alone) or ctc (prefix "
        "beam search over the CTC head); auto: joint for model.task=joint, ctc for "
        "model.task=ctc",
    )
    ctc_weight: float = _f(
        0.3,
        "joint search: score = (1 - ctc_weight) * attention + ctc_weight * CTC prefix "
        "log-probabilities (0: attention alone, 1: CTC alone)",
    )
    length_bonus: float = _f(
        0.0,
        "joint, attention search: added to a hypothesis's score for every token it "
        "emits (counters the search's preference for short outputs)",
    )
    ctc_candidates: int = _f(
        0,
        "joint search: tokens per hypothesis and step scored by CTC, the decoder's "
        "best (0: 1.5 * beam, at least 2; all tokens when ctc_weight is 1); the end "
        "of the sentence is always scored",
    )


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


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from nested dicts (YAML or a checkpoint), strictly."""
    cfg = Config()
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


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults, then the YAML file at `path` (if any), then `--set` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise S2SError(f"{path}: cannot read config: {e.strerror}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise S2SError(f"{path}: not valid YAML: {e}") from None
    cfg = config_from_dict(data, source=str(path))
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
