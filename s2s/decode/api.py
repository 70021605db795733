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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, overload

from s2s.data.text import clean_line
from s2s.errors import S2SError

if TYPE_CHECKING:  # torch is imported inside the methods: `import s2s` stays light
    import torch

    from s2s.config import DecodeConfig
    from s2s.data.vocab import Vocab
    from s2s.models.lm import LSTMLM

__all__ = ["Translator", "Transcriber"]

Hypotheses = list[tuple[str, float]]  # (text, score) pairs, best first


def _start(device: str, threads: int) -> torch.device:
    """What every decoding run sets up first: torch's threads, the device."""
    from s2s.memory import keep_freed_memory
    from s2s.train.trainer import pick_device

    keep_freed_memory()
    if threads < 0:
        raise S2SError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    return pick_device(device)


def _given(decode: DecodeConfig, **options: object) -> DecodeConfig:
    """`decode` with the options given (None keeps the checkpoint's setting)."""
    return replace(decode, **{k: v for k, v in options.items() if v is not None})


def _fusion_lm(
    lm: str | Path | None,
    lm_weight: float | None,
    vocab: Vocab,
    device: torch.device,
    checkpoint: str | Path,
) -> tuple[LSTMLM | None, float]:
    """(LM, weight) for shallow fusion, or (None, 0.0) without `--lm`. The weight
    has no default: the best one depends on both models (recipes/lm-en/RESULTS.md
    measured 0 for its pair), so it is chosen on a validation set."""
    from s2s.decode.fusion import load_lm

    if lm is None:
        if lm_weight is not None:
            raise S2SError("--lm-weight needs --lm (a language model checkpoint)")
        return None, 0.0
    if lm_weight is None:
        raise S2SError("--lm needs --lm-weight (choose it on a validation set)")
    if lm_weight < 0:
        raise S2SError(f"--lm-weight must be >= 0, got {lm_weight}")
    return load_lm(lm, vocab, device, model_path=checkpoint), lm_weight


class Translator:
    """A translation checkpoint, ready to translate lists of sentences.

    Keyword arguments are `s2s translate`'s options; None keeps the checkpoint's
    `decode.*` setting. `device`: auto, cpu, cuda or cuda:N; `precision`: fp32,
    bf16, fp16 or int8 (CPU); `threads`: torch's CPU threads (0: torch's default,
    set for the whole process otherwise); `lm` and `lm_weight`: shallow fusion with
    a language model checkpoint.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        beam: int | None = None,
        nbest: int | None = None,
        lenpen: float | None = None,
        batch_tokens: int | None = None,
        device: str = "auto",
        precision: str = "fp32",
        threads: int = 0,
        lm: str | Path | None = None,
        lm_weight: float | None = None,
    ):
        from s2s.decode.translate import Translator as Search
        from s2s.train.checkpoint import load_model

        self.device = _start(device, threads)
        model, cfg, src_vocab, tgt_vocab = load_model(checkpoint, self.device)
        dcfg = _given(
            cfg.decode, beam=beam, nbest=nbest, lenpen=lenpen, batch_tokens=batch_tokens
        )
        if beam is not None and nbest is None:
            dcfg.nbest = min(dcfg.nbest, dcfg.beam)
        if dcfg.nbest > dcfg.beam:
            raise S2SError(f"--nbest {dcfg.nbest} cannot exceed --beam {dcfg.beam}")
        self.lm, self.lm_weight = lm, lm_weight
        lm_model, weight = _fusion_lm(lm, lm_weight, tgt_vocab, self.device, checkpoint)
        self.config: DecodeConfig = dcfg  # the settings in use
        self.search = Search(
            model, src_vocab, tgt_vocab, dcfg, self.device, precision, lm_model, weight
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
    ):
        from s2s.decode.transcribe import Transcriber as Search
        from s2s.train.checkpoint import load_speech_model

        self.device = _start(device, threads)
        model, cfg, vocab, features, cmvn = load_speech_model(checkpoint, self.device)
        dcfg = _given(
            cfg.decode,
            beam=beam,
            mode=mode,
            ctc_weight=ctc_weight,
            length_bonus=length_bonus,
            chunk_seconds=chunk_seconds,
            chunk_overlap=chunk_overlap,
            batch_tokens=batch_tokens,
        )
        if dcfg.beam < 1 or dcfg.batch_tokens < 1:
            raise S2SError("--beam and --batch-tokens must be positive")
        if not 0.0 <= dcfg.ctc_weight <= 1.0:
            raise S2SError(f"--ctc-weight must be in [0, 1], got {dcfg.ctc_weight}")
        if not 0 <= dcfg.chunk_overlap < dcfg.chunk_seconds / 2:
            raise S2SError(
                f"--chunk-seconds {dcfg.chunk_seconds} must be over twice "
                f"--chunk-overlap {dcfg.chunk_overlap} (and the overlap >= 0)"
            )
        self.lm, self.lm_weight = lm, lm_weight
        lm_model, weight = _fusion_lm(lm, lm_weight, vocab, self.device, checkpoint)
        self.config: DecodeConfig = dcfg
        self.features = features
        self.search = Search(
            model, vocab, features, cmvn, dcfg, self.device, precision, lm_model, weight
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
        from s2s.data.audio import audio_seconds, load_audio

        if isinstance(audio, (str, Path)):
            return self.transcribe([audio])[0]
        paths = [Path(a) for a in audio]

        def located(i: int, read, *args):
            try:
                return read(paths[i], *args)
            except S2SError as e:
                raise S2SError(f"{where[i]}: {e}" if where else str(e)) from None

        seconds = [located(i, audio_seconds) for i in range(len(paths))]
        features, cfg = self.features, self.config
        texts: list[str] = [""] * len(paths)
        frames_per_second = 1000.0 / features.frame_shift_ms
        order = sorted(range(len(paths)), key=lambda i: -seconds[i])
        start = 0
        while start < len(order):
            # Whole files up to the frame budget; a long file goes alone (its
            # windows are batched inside the search).
            longest = min(seconds[order[start]], cfg.chunk_seconds) * frames_per_second
            size = max(1, int(cfg.batch_tokens // max(longest, 1)))
            group = order[start : start + size]
            waves = [located(i, load_audio, features.sample_rate) for i in group]
            for i, wave in zip(group, waves, strict=True):
                if self.search.extract.num_frames(wave.numel()) == 0:
                    raise S2SError(
                        f"{paths[i]}: {wave.numel() / features.sample_rate:.3f} s is "
                        f"shorter than one {features.frame_length_ms:g} ms frame"
                    )
            for i, text in zip(group, self.search.transcribe(waves), strict=True):
                texts[i] = text
            start += size
        return texts
