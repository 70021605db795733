"""The sections of the config: model, train and decode, each key with its default
and its help (`s2s config show` prints them). `s2s.config` composes them into
`Config`, reads YAML and `--set` overrides into them and validates them.

Each key's allowed values are declared beside it: `ge`, `gt`, `le`, `lt` bound a
number (each element of a tuple), `pattern` a string (`s2s.config.check_value`
checks them, for YAML, `--set` and the decoding commands' options alike). Every
float must also be finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ModelConfig", "TrainConfig", "DecodeConfig"]


LM_BPTT = 64  # the language model's segment length where train.bptt is 0


def _f(default: Any, help: str, **check: Any) -> Any:
    """A config field: its default, its help and its constraints (`ge`, `gt`,
    `le`, `lt`: bounds of a number; `pattern`: a regular expression a string must
    match whole, with `means`: how to say it in an error)."""
    return field(default=default, metadata={"help": help, **check})


# Widths and depths a model can have at all: beyond these, building it is an error
# before any memory is touched (the trainer also checks what it would allocate).
_WIDTH = dict(ge=1, le=1 << 20)
_DEPTH = dict(ge=1, le=1000)
_DEVICE = dict(pattern=r"auto|cpu|cuda(:[0-9]+)?", means="auto, cpu, cuda or cuda:N")


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
        **_WIDTH,
    )
    enc_hidden_size: int = _f(
        256, "encoder LSTM size per direction; encoder outputs are twice this", **_WIDTH
    )
    hidden_size: int = _f(
        512,
        "decoder LSTM size (and attentional vector size) for translation and joint; "
        "the LSTM size of an lm",
        **_WIDTH,
    )
    enc_layers: int = _f(2, "bidirectional LSTM layers in the encoder", **_DEPTH)
    dec_layers: int = _f(
        1,
        "LSTM layers in the decoder (translation, joint) or the language model (lm)",
        **_DEPTH,
    )
    attention: Literal["dot", "general", "mlp", "location"] = _f(
        "general",
        "dot and general: Luong; mlp: Bahdanau; location: Bahdanau plus a "
        "convolution over the previous step's weights (Chorowski et al., 2015; "
        "for speech: keeps the decoder moving along the audio). dot needs "
        "2*enc_hidden_size == hidden_size",
    )
    att_conv_channels: int = _f(
        10, "location attention: channels of the convolution", ge=1, le=1024
    )
    att_conv_width: int = _f(
        50,
        "location attention: the convolution reaches this many encoder steps on "
        "each side of a step (speech: 4x subsampled frames, 25 a second)",
        ge=0,
        le=1000,
    )
    input_feed: bool = _f(
        False,
        "feed the previous attentional vector into the decoder LSTM (Luong). Off, "
        "the whole target runs through one LSTM call: much faster training",
    )
    dropout: float = _f(
        0.3, "dropout on embeddings, between LSTM layers and outputs", ge=0, lt=1
    )
    tie_embeddings: bool = _f(
        True,
        "share the target (lm: input) embedding with the output layer (a "
        "projection to emb_dim is added when emb_dim != hidden_size)",
    )
    label_smoothing: float = _f(
        0.1, "label smoothing of the cross-entropy loss", ge=0, lt=1
    )
    param_init: float = _f(
        0.1,
        "initialise every parameter uniformly in [-b, b], b = max(param_init, the "
        "layer's own scale: 1/sqrt(fan-in), embeddings sqrt(3/emb_dim)). At 256-512 "
        "units b is param_init, OpenNMT-py's init, which learns far faster early on "
        "than the per-layer defaults (benchmarks/peers/README.md); smaller layers "
        "keep their own scale, without which small models barely learn "
        "(benchmarks/toy_tasks.py). 0: PyTorch's per-layer defaults, embeddings "
        "N(0, 1/emb_dim) and LSTM forget-gate biases summing to 1",
        ge=0,
    )
    ctc_weight: float = _f(
        0.3,
        "joint: training loss = ctc_weight * CTC + (1 - ctc_weight) * attention "
        "cross-entropy, both summed over the batch and divided by the same count",
        ge=0,
        le=1,
    )
    inter_ctc_weight: float = _f(
        0.0,
        "ctc, joint: intermediate CTC (Lee and Watanabe, 2021), a regulariser: the "
        "CTC head also reads encoder layer enc_layers // 2 in training, and the CTC "
        "loss is (1 - w) * last layer's + w * that layer's (no parameters added, "
        "decoding unchanged; needs enc_layers >= 2)",
        ge=0,
        lt=1,
    )
    num_mels: int = _f(
        80,
        "speech: log-mel bins per frame; must match `s2s prep speech --num-mels`",
        **_WIDTH,
    )
    subsample: Literal["conv", "stack"] = _f(
        "conv",
        "speech: 4x frame-rate reduction before the encoder: two stride-2 3x3 "
        "convolutions, or 4 stacked frames and a linear layer (cheapest)",
    )
    subsample_channels: int = _f(
        0,
        "speech: channels of the conv subsampler (0: emb_dim); they cost much on CPUs",
        ge=0,
        le=1 << 20,
    )
    specaugment: bool = _f(
        True, "speech: SpecAugment frequency and time masks on training batches"
    )
    freq_masks: int = _f(2, "speech SpecAugment: frequency masks per utterance", ge=0)
    freq_width: int = _f(
        27, "speech SpecAugment: widest frequency mask, in mel bins", ge=0
    )
    time_masks: int = _f(2, "speech SpecAugment: time masks per utterance", ge=0)
    time_width_ratio: float = _f(
        0.05,
        "speech SpecAugment: widest time mask as a fraction of the utterance",
        ge=0,
        le=1,
    )
    max_time_width: int = _f(
        40, "speech SpecAugment: widest time mask in frames (0: no cap)", ge=0
    )
    noise_prob: float = _f(
        0.0,
        "speech: the fraction of training utterances that get stationary noise added "
        "(to their mel power, before the log and CMVN; s2s.data.speech.add_noise): "
        "its spectrum drawn between flat across the mel bins and the utterance's own "
        "average spectrum, at an SNR uniform in [noise_snr_min, noise_snr_max] dB "
        "(0: none)",
        ge=0,
        le=1,
    )
    noise_snr_min: float = _f(10.0, "speech noise: lowest SNR in dB", ge=-30, le=100)
    noise_snr_max: float = _f(30.0, "speech noise: highest SNR in dB", ge=-30, le=100)


@dataclass
class TrainConfig:
    max_steps: int = _f(0, "stop after this many optimizer steps (0: no limit)", ge=0)
    max_epochs: int = _f(0, "stop after this many epochs (0: no limit)", ge=0)
    max_minutes: float = _f(
        0.0, "stop after this much wall-clock time (0: no limit)", ge=0
    )
    batch_tokens: int = _f(
        4096,
        "tokens per batch, counted with padding on the longer side (ctc: input "
        "feature frames, 100 a second)",
        ge=1,
    )
    accum_steps: int = _f(1, "batches whose gradients add up into one step", ge=1)
    lr: float = _f(1e-3, "peak learning rate (AdamW)", gt=0)
    betas: tuple[float, float] = _f((0.9, 0.98), "AdamW betas", ge=0, lt=1)
    weight_decay: float = _f(0.0, "AdamW decoupled weight decay", ge=0)
    schedule: Literal["inverse_sqrt", "plateau", "constant"] = _f(
        "inverse_sqrt",
        "after warmup: decay as 1/sqrt(step), halve on validation plateaus, or hold",
    )
    warmup_steps: int = _f(500, "linear warmup from 0 to lr over this many steps", ge=0)
    plateau_factor: float = _f(0.5, "plateau schedule: multiply lr by this", gt=0, le=1)
    plateau_patience: int = _f(2, "plateau schedule: validations without gain", ge=1)
    min_lr: float = _f(1e-5, "the learning rate never falls below this", ge=0)
    cooldown: float = _f(
        0.0,
        "the last fraction of the run's budget (train.max_steps or train.max_minutes, "
        "whichever runs out first) over which lr falls linearly from what "
        "train.schedule gives to train.min_lr (0: off; 1: from the first step)",
        ge=0,
        le=1,
    )
    clip_norm: float = _f(1.0, "clip the global gradient norm to this (0: off)", ge=0)
    max_bad_steps: int = _f(
        20,
        "stop with an error after this many steps in a row were skipped for "
        "non-finite gradients, or for running out of memory (0: never)",
        ge=0,
    )
    bptt: int = _f(
        0,
        "truncated BPTT, steps per segment; the state is carried (and detached) "
        "from one segment to the next. translation: the target runs in chunks of "
        "this many steps, every chunk's gradient accumulated (0: off); lm: the "
        "token stream's segment length (0: 64), batch_tokens // bptt streams "
        "wide; ctc and joint: 0 (was train.tbptt_steps for translation)",
        ge=0,
    )
    bptt_random: bool = _f(
        False,
        "lm: vary the segment length (AWD-LSTM): bptt, or bptt / 2 with probability "
        "0.05, plus normal jitter (sd 5), drawn from (seed, epoch)",
    )
    precision: Literal["fp32", "bf16", "fp16", "auto"] = _f(
        "fp32",
        "bf16: autocast on CPU or CUDA; fp16: autocast plus grad scaler, CUDA; auto: "
        "bf16 on a CPU with AVX-512 BF16, else fp32",
    )
    device: str = _f("auto", "auto (cuda if available), cpu, cuda or cuda:N", **_DEVICE)
    seed: int = _f(
        1, "seed for initialisation, batch order and dropout", ge=0, le=2**32 - 1
    )
    init_from: str = _f(
        "",
        "a checkpoint whose weights a fresh run starts from wherever names and "
        "shapes match, e.g. a CTC model's for a joint model's encoder and CTC head "
        "(same vocabulary and features; --resume ignores it)",
    )
    deterministic: bool = _f(
        False,
        "GPU: deterministic algorithms where torch has them (slower; cuDNN LSTMs "
        "and CTC backward may still vary, see docs/distributed.md)",
    )
    valid_every: int = _f(1000, "validate every this many steps (and at the end)", ge=1)
    valid_bleu: bool = _f(
        True,
        "also decode the validation set greedily: BLEU and chrF (translation), "
        "WER and CER (ctc)",
    )
    valid_bleu_sents: int = _f(
        0,
        "at most this many validation sentences (utterances) decoded (0: all; a "
        "few hundred sentences' BLEU can pick an earlier, worse checkpoint: "
        "recipes/mt-de-en/RESULTS.md, 'Which checkpoint to keep')",
        ge=0,
    )
    select_by: Literal["loss", "bleu", "wer", "cer"] = _f(
        "loss",
        "which validation number picks best.pt and drives early stopping (bleu: "
        "translation; wer, cer: ctc and joint)",
    )
    patience: int = _f(
        0, "stop after this many validations without improvement (0: never)", ge=0
    )
    save_every: int = _f(
        1000, "write last.pt and a numbered checkpoint this often", ge=1
    )
    keep_last: int = _f(
        5,
        "numbered checkpoints kept (for `s2s average`; 0: none are written)",
        ge=0,
    )
    log_every: int = _f(
        50,
        "write a metrics.jsonl record and a train.log line every this many steps "
        "(the line also to stderr when it is not a terminal)",
        ge=1,
    )
    tensorboard: bool = _f(
        False,
        "also write the metrics as TensorBoard scalars to OUT/tensorboard (needs "
        "the tensorboard package: pip install 's2s[tensorboard]')",
    )
    threads: int = _f(0, "CPU threads for torch (0: torch's default)", ge=0)

    def decoded(self, available: int) -> int:
        """How many of `available` validation items are decoded (valid_bleu_sents,
        0: all)."""
        n = self.valid_bleu_sents
        return available if n == 0 else min(available, n)


@dataclass
class DecodeConfig:
    beam: int = _f(5, "beam size (1: greedy)", ge=1)
    nbest: int = _f(1, "hypotheses printed per input", ge=1)
    lenpen: float = _f(
        1.0,  # 0.6 shortened beam output (brevity penalty 0.92 on mt-de-en valid)
        "translation: GNMT length penalty alpha, ((5 + len) / 6) ** alpha (speech: "
        "decode.length_bonus); at most 10, where the penalty of a long output "
        "stays a finite number",
        ge=0,
        le=10,
    )
    max_len_ratio: float = _f(
        2.0,
        "translation: output at most ratio * source length + max_len_a tokens "
        "(speech: at most one token per encoder frame)",
        ge=0,
        le=1000,
    )
    max_len_a: int = _f(
        10, "translation: constant term of the maximum output length", ge=0
    )
    batch_tokens: int = _f(
        6000,
        "source tokens per decoding batch (ctc: feature frames, 100 a second)",
        ge=1,
    )
    max_input_tokens: int = _f(
        1024, "inputs longer than this (in subword tokens) are an error", ge=1
    )
    chunk_seconds: float = _f(
        30.0,
        "speech: audio longer than this is encoded in windows of at most this "
        "length, so memory stays bounded on long files (see chunk_overlap)",
        gt=0,
    )
    chunk_overlap: float = _f(
        4.0,
        "ctc: seconds shared by neighbouring windows; stitched at the middle. "
        "joint, attention: audio is cut at the quietest point of this many seconds "
        "before each window's end, and the pieces are decoded one by one",
        ge=0,
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
        ge=0,
        le=1,
    )
    length_bonus: float = _f(
        0.0,
        "speech searches: added to a hypothesis's score for every token it emits "
        "(counters the preference for short outputs of the joint and attention "
        "searches, and the deletions a language model causes in CTC prefix search)",
    )
    ctc_candidates: int = _f(
        0,
        "joint search: tokens per hypothesis and step scored by CTC, the decoder's "
        "best (0: 1.5 * beam, at least 2; all tokens when ctc_weight is 1); the end "
        "of the sentence is always scored",
        ge=0,
    )
