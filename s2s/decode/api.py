"""The Python API: translate sentences, transcribe audio files, with a checkpoint.

    from s2s import Translator
    translator = Translator("runs/x/best.pt", beam=5)
    translator.translate(["Öffnet das Dialogfeld.", "Guten Morgen."])

    from s2s import Transcriber
    Transcriber("runs/asr/best.pt").transcribe("a.wav")

`s2s translate` and `s2s transcribe` run through these two classes (via
`s2s.decode.run`): the same option checks and defaults (None keeps the checkpoint's
`decode.*` setting), the same text cleaning, batching by length, search and errors
(`S2SError`, one line naming the value, the sentence or the file). They wrap the
search engines `s2s.decode.translate.Translator` and
`s2s.decode.transcribe.Transcriber`, which take a model object instead of a path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from s2s.data.text import clean_line
from s2s.errors import S2SError

if TYPE_CHECKING:  # torch is imported inside the methods: `import s2s` stays light
    import torch

    from s2s.config import Config, DecodeConfig
    from s2s.data.vocab import Vocab
    from s2s.decode.lexicon import Lexicon
    from s2s.models.lm import LSTMLM

__all__ = ["Translator", "Transcriber"]

Hypotheses = list[tuple[str, float]]  # (text, score) pairs, best first


def _start(device: str, threads: int) -> torch.device:
    """What every decoding run sets up first: torch's threads, the device."""
    from s2s.device import pick_device
    from s2s.memory import keep_freed_memory

    keep_freed_memory()
    if threads:
        import torch

        torch.set_num_threads(threads)
    return pick_device(device)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _check_options(device: str, threads: int, options: dict[str, Any]) -> None:
    """Each option alone, before any work: `device` and `threads` take what
    train.device and train.threads take, the others what their decode.* key takes
    (None: not given); errors name the command-line flag."""
    from s2s.config import check_option

    check_option("train.device", device, "--device")
    check_option("train.threads", threads, "--threads")
    for key, value in options.items():
        if value is not None:
            check_option(f"decode.{key}", value, _flag(key))


def _decode_options(cfg: Config, options: dict[str, Any]) -> DecodeConfig:
    """The checkpoint's decode settings with the options given (None: the
    checkpoint's), checked with the config as a whole; errors name the flag."""
    from s2s.config import with_options

    return with_options(
        cfg,
        {f"decode.{k}": v for k, v in options.items()},
        {f"decode.{k}": _flag(k) for k in options},
    ).decode


def _weighted(option: str, what: str, given: object, weight: float | None) -> bool:
    """Whether `--{option}` is given, with its `--{option}-weight` (no default: the
    best one depends on the models, e.g. recipes/lm-en/RESULTS.md measured 0 for
    its pair, so it is chosen on a validation set)."""
    if given is None:
        if weight is not None:
            raise S2SError(f"--{option}-weight needs --{option} ({what})")
        return False
    if weight is None:
        raise S2SError(
            f"--{option} needs --{option}-weight (choose it on a validation set)"
        )
    if weight < 0:
        raise S2SError(f"--{option}-weight must be >= 0, got {weight}")
    return True


def _fusion_lm(
    lm: str | Path | None,
    lm_weight: float | None,
    vocab: Vocab,
    device: torch.device,
    checkpoint: str | Path,
) -> tuple[LSTMLM | None, float]:
    """(LM, weight) for shallow fusion, or (None, 0.0) without `--lm`."""
    from s2s.decode.fusion import load_lm

    if not _weighted("lm", "a language model checkpoint", lm, lm_weight):
        return None, 0.0
    return load_lm(lm, vocab, device, model_path=checkpoint), lm_weight


def _lexicon(
    path: str | Path | None, weight: float | None, vocab: Vocab
) -> tuple[Lexicon | None, float]:
    """(word list, weight) for `--lexicon`, or (None, 0.0) without it."""
    from s2s.decode.lexicon import load_lexicon

    if not _weighted("lexicon", "a word list", path, weight):
        return None, 0.0
    return load_lexicon(path, vocab), weight


class Translator:
    """A translation checkpoint, ready to translate lists of sentences.

    Keyword arguments are `s2s translate`'s options; None keeps the checkpoint's
    `decode.*` setting. `device`: auto, cpu, cuda or cuda:N; `precision`: fp32,
    bf16, fp16 or int8 (CPU); `threads`: torch's CPU threads (0: torch's default,
    set for the whole process otherwise); `lm` and `lm_weight`: shallow fusion with
    a language model checkpoint; `warn(message)`: an input over `max_input_tokens`
    is cut to it and `warn` hears which (None: such an input is an error).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        beam: int | None = None,
        nbest: int | None = None,
        lenpen: float | None = None,
        batch_tokens: int | None = None,
        max_input_tokens: int | None = None,
        device: str = "auto",
        precision: str = "fp32",
        threads: int = 0,
        lm: str | Path | None = None,
        lm_weight: float | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        from s2s.checkpoint import load_model
        from s2s.decode.translate import Translator as Search

        options = dict(
            beam=beam,
            nbest=nbest,
            lenpen=lenpen,
            batch_tokens=batch_tokens,
            max_input_tokens=max_input_tokens,
        )
        _check_options(device, threads, options)
        self.device = _start(device, threads)
        model, cfg, src_vocab, tgt_vocab = load_model(checkpoint, self.device)
        if beam is not None and nbest is None:  # the checkpoint's nbest, up to beam
            options["nbest"] = min(cfg.decode.nbest, beam)
        width = cfg.decode.beam if beam is None else beam
        if nbest is not None and nbest > width:
            raise S2SError(f"--nbest {nbest} cannot exceed --beam {width}")
        dcfg = _decode_options(cfg, options)
        if dcfg.max_input_tokens < 2:
            raise S2SError(
                f"--max-input-tokens must be >= 2, got {dcfg.max_input_tokens}"
            )
        self.lm, self.lm_weight = lm, lm_weight
        lm_model, weight = _fusion_lm(lm, lm_weight, tgt_vocab, self.device, checkpoint)
        self.config: DecodeConfig = dcfg  # the settings in use
        self.search = Search(
            model,
            src_vocab,
            tgt_vocab,
            dcfg,
            self.device,
            precision,
            lm_model,
            weight,
            warn,
        )

    @overload
    def translate(self, sentences: str) -> str: ...
    @overload
    def translate(self, sentences: Iterable[str]) -> list[str]: ...

    def translate(self, sentences: str | Iterable[str]) -> str | list[str]:
        """The best translation of each sentence (of one sentence: a string)."""
        if isinstance(sentences, str):
            return self.translate_nbest([sentences])[0][0][0]
        return [hyps[0][0] for hyps in self.translate_nbest(sentences)]

    def translate_nbest(self, sentences: Iterable[str]) -> list[Hypotheses]:
        """The `nbest` best (text, score) pairs of each sentence, best first.

        Sentences are cleaned as `s2s translate` cleans input lines (whitespace,
        line breaks included, folded to single spaces; Unicode NFC); an empty one
        translates to an empty string with score 0."""
        return list(self.stream(_checked(sentences), source="<sentences>"))

    def stream(
        self, lines: Iterable[str], source: str = "<input>", block: int = 2000
    ) -> Iterator[Hypotheses]:
        """Translate cleaned `lines` as they come, `block` at a time (sorted by
        length within a block), yielding each line's hypotheses in input order.
        Errors name `source` and the line number."""
        return self.search.translate_stream(lines, block=block, source=source)


def _checked(sentences: Iterable[str]) -> Iterator[str]:
    """Sentences as `s2s translate` reads lines: the same cleaning and errors."""
    if isinstance(sentences, (str, bytes)):
        raise S2SError("give a list of sentences (or one string to translate())")
    for k, s in enumerate(sentences, 1):
        if not isinstance(s, str):
            raise S2SError(f"<sentences>:{k}: a {type(s).__name__}, not a string")
        yield clean_line(s.encode("utf-8", "surrogatepass"), "<sentences>", k)


class Transcriber:
    """A speech checkpoint (model.task ctc or joint), ready to transcribe files.

    Keyword arguments are `s2s transcribe`'s options; None keeps the checkpoint's
    `decode.*` setting. `mode`: joint, attention or ctc (default: joint for joint
    checkpoints, ctc for CTC ones); the rest as for `Translator`.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        beam: int | None = None,
        mode: str | None = None,
        ctc_weight: float | None = None,
        length_bonus: float | None = None,
        chunk_seconds: float | None = None,
        chunk_overlap: float | None = None,
        batch_tokens: int | None = None,
        device: str = "auto",
        precision: str = "fp32",
        threads: int = 0,
        lm: str | Path | None = None,
        lm_weight: float | None = None,
        lexicon: str | Path | None = None,
        lexicon_weight: float | None = None,
    ):
        from s2s.checkpoint import load_speech_model
        from s2s.decode.transcribe import Transcriber as Search

        options = dict(
            beam=beam,
            mode=mode,
            ctc_weight=ctc_weight,
            length_bonus=length_bonus,
            chunk_seconds=chunk_seconds,
            chunk_overlap=chunk_overlap,
            batch_tokens=batch_tokens,
        )
        _check_options(device, threads, options)
        self.device = _start(device, threads)
        model, cfg, vocab, features, cmvn = load_speech_model(checkpoint, self.device)
        seconds, overlap = (
            cfg.decode.chunk_seconds if chunk_seconds is None else chunk_seconds,
            cfg.decode.chunk_overlap if chunk_overlap is None else chunk_overlap,
        )
        if not 0 <= overlap < seconds / 2:
            raise S2SError(
                f"--chunk-seconds {seconds} must be over twice --chunk-overlap "
                f"{overlap} (and the overlap >= 0)"
            )
        dcfg = _decode_options(cfg, options)
        self.lm, self.lm_weight = lm, lm_weight
        lm_model, weight = _fusion_lm(lm, lm_weight, vocab, self.device, checkpoint)
        words, word_weight = _lexicon(lexicon, lexicon_weight, vocab)
        self.lexicon: Lexicon | None = words
        self.lexicon_weight = word_weight
        self.config: DecodeConfig = dcfg
        self.features = features
        self.search = Search(
            model,
            vocab,
            features,
            cmvn,
            dcfg,
            self.device,
            precision,
            lm_model,
            weight,
            words,
            word_weight,
        )

    @property
    def mode(self) -> str:
        """The search in use: joint, attention or ctc."""
        return self.search.mode

    @overload
    def transcribe(self, audio: str | Path) -> str: ...
    @overload
    def transcribe(
        self, audio: Sequence[str | Path], where: Sequence[str] | None = None
    ) -> list[str]: ...

    def transcribe(
        self,
        audio: str | Path | Sequence[str | Path],
        where: Sequence[str] | None = None,
    ) -> str | list[str]:
        """The text of each audio file (WAV, FLAC, Ogg), in order; of one path: a
        string. Headers are read first, so a bad file fails before any decoding;
        `where[i]` (e.g. `test.tsv:5`) then prefixes errors about file i."""
        from s2s.data.audio import AudioReader, Waveform
        from s2s.data.batching import longest_first

        if isinstance(audio, (str, Path)):
            return self.transcribe([audio])[0]
        paths = [Path(a) for a in audio]

        features, cfg = self.features, self.config
        # Headers only: every file is checked before any decoding.
        readers = [
            AudioReader(path, features.sample_rate, where[i] if where else "")
            for i, path in enumerate(paths)
        ]
        for i, r in enumerate(readers):
            if self.search.extract.num_frames(r.num_samples) == 0:
                raise S2SError(
                    f"{paths[i]}: {r.num_samples / features.sample_rate:.3f} s is "
                    f"shorter than one {features.frame_length_ms:g} ms frame"
                )
        texts: list[str] = [""] * len(paths)
        frames_per_second = 1000.0 / features.frame_shift_ms
        # Whole files up to the frame budget (a long file counts as one window: its
        # windows are batched inside the search).
        frames = [
            min(r.seconds, cfg.chunk_seconds) * frames_per_second for r in readers
        ]
        for group in longest_first(frames, cfg.batch_tokens):
            # A file up to one window is decoded whole; a longer one is read a
            # window at a time by the search, so its memory does not grow with it.
            sources = [
                readers[i]
                if readers[i].seconds > cfg.chunk_seconds
                else Waveform(readers[i].read(0, readers[i].num_samples))
                for i in group.tolist()
            ]
            out = self.search.transcribe(sources)
            for i, text in zip(group.tolist(), out, strict=True):
                texts[i] = text
        return texts
