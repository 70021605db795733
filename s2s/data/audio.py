"""Reading audio files and speech manifests.

Audio is decoded with `soundfile` (libsndfile ships its own WAV, FLAC, Ogg/Vorbis and
MP3 codecs, so no ffmpeg is needed), mixed down to mono and resampled with
`torchaudio.functional.resample`.

A manifest is a UTF-8 TSV file whose header line is ``id path duration text``
(more columns may follow; they are ignored)
(tab-separated); relative audio paths are resolved against the manifest's directory.
A manifest for transcription only may leave the text empty or drop the column.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import soundfile
import torch
import torchaudio

from s2s.errors import S2SError, where

__all__ = [
    "AudioReader",
    "AudioSource",
    "Utterance",
    "Waveform",
    "audio_seconds",
    "load_audio",
    "read_manifest",
    "speed_perturb",
]

_COLUMNS = ("id", "path", "duration", "text")


@dataclass(frozen=True)
class Utterance:
    """One manifest row: the audio `path`, its `duration` in seconds, and its
    transcript (`None` when the manifest has none)."""

    id: str
    path: Path
    duration: float
    text: str | None


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    max_seconds: float | None = None,
) -> torch.Tensor:
    """Decode an audio file into a mono float32 waveform at `sample_rate`.

    Args:
        path: a WAV, FLAC or Ogg/Vorbis file (anything libsndfile reads).
        sample_rate: the rate of the returned waveform; other rates are resampled.
        max_seconds: if given, files longer than this raise instead of being loaded.

    Returns:
        waveform: (N,) float32, channels averaged, samples in [-1, 1] for integer files.

    Raises:
        S2SError: the file is missing, empty, cannot be decoded, holds non-finite
            samples or samples beyond +-1e5 (float files), is longer than
            `max_seconds`, or its header gives a rate that is implausible or too
            costly to resample from; the message names the file.
    """
    reader = AudioReader(path, sample_rate)
    # The header is read first so an overlong file fails before it is decoded.
    if max_seconds is not None and reader.seconds > max_seconds:
        raise S2SError(
            f"{where(reader.path)}: {reader.seconds:.1f} s is longer than the limit "
            f"of {max_seconds:.1f} s (raise the max_seconds limit or remove the file)"
        )
    return reader.read(0, reader.num_samples)


class AudioSource:
    """Mono audio at a fixed rate that is read a stretch at a time: `num_samples`
    and `read(start, stop)` (sample indices at that rate). Long recordings are
    decoded window by window through this, so memory does not grow with length."""

    num_samples: int

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) as (stop - start,) float32."""
        raise NotImplementedError


class Waveform(AudioSource):
    """An `AudioSource` over a waveform already in memory, (N,)."""

    def __init__(self, wave: torch.Tensor):
        if wave.dim() != 1:
            raise ValueError(f"expected a 1-D waveform, got shape {tuple(wave.shape)}")
        self.wave, self.num_samples = wave, wave.numel()

    def read(self, start: int, stop: int) -> torch.Tensor:
        return self.wave[start:stop]


class AudioReader(AudioSource):
    """An audio file as an `AudioSource` at `sample_rate`: only the header is read
    when it is opened; `read` decodes just the stretch asked for (plus, when the
    file's rate differs, the resampling filter's reach on each side, so that a
    stretch equals the same samples of the whole file resampled at once, up to
    float rounding). Channels are averaged. Every stretch read is checked as
    `load_audio` checks a whole file; errors name the file.
    """

    def __init__(
        self, path: str | os.PathLike[str], sample_rate: int, context: str = ""
    ):
        # context (e.g. "test.tsv:5") comes first in every error message.
        self._context = f"{context}: " if context else ""
        try:
            self.path = _check_file(path)
            info = _header(self.path)
            _check_resampling(self.path, info.samplerate, sample_rate)
        except S2SError as e:
            raise S2SError(f"{self._context}{e}") from None
        self.file_rate, self.sample_rate = info.samplerate, sample_rate
        self.file_samples = info.frames
        self.seconds = info.frames / info.samplerate
        g = math.gcd(self.file_rate, sample_rate)
        self._orig, self._new = self.file_rate // g, sample_rate // g
        # torchaudio's output length, ceil(N * new / orig).
        self.num_samples = -(-self.file_samples * self._new // self._orig)
        # The sinc filter's half width in input samples (torchaudio's formula for
        # lowpass_filter_width 6, rolloff 0.99), rounded up to whole input blocks.
        width = math.ceil(6 * self._orig / (min(self._orig, self._new) * 0.99))
        self._margin = (width // self._orig + 2) * self._orig

    def read(self, start: int, stop: int) -> torch.Tensor:
        start, stop = max(0, start), min(stop, self.num_samples)
        if stop <= start:
            return torch.zeros(0)
        if self.file_rate == self.sample_rate:
            return self._decode(start, stop)
        o, n = self._orig, self._new
        # Output block k (n samples) is computed from input block k (o samples) and
        # the filter's reach around it; a stretch that starts on an input block
        # boundary gives the whole file's output blocks from there on.
        a = max(0, start // n * o - self._margin)
        b = min(self.file_samples, -(-stop // n) * o + self._margin + o)
        out = torchaudio.functional.resample(
            self._decode(a, b), self.file_rate, self.sample_rate
        )
        base = a // o * n
        return out[start - base : stop - base].contiguous()

    def _decode(self, a: int, b: int) -> torch.Tensor:
        """File samples [a, b), mono float32, checked."""
        try:
            return self._decode_checked(a, b)
        except S2SError as e:
            raise S2SError(f"{self._context}{e}") from None

    def _decode_checked(self, a: int, b: int) -> torch.Tensor:
        try:
            with soundfile.SoundFile(str(self.path)) as f:
                if a:
                    f.seek(a)
                data = f.read(b - a, dtype="float32", always_2d=True)
        except _DECODE_ERRORS as err:
            raise _decode_error(self.path, err) from err
        if data.shape[0] == 0:
            raise S2SError(
                f"{where(self.path)}: empty audio (0 samples)"
                if a == 0
                else f"{where(self.path)}: cannot decode audio (no samples at "
                f"{a / self.file_rate:.2f} s, {self.seconds:.2f} s in the header)"
            )
        wave = torch.from_numpy(data).mean(dim=1)  # (N, C) -> (N,)
        if not torch.isfinite(wave).all():
            raise S2SError(
                f"{where(self.path)}: audio contains NaN or infinite samples"
            )
        peak = float(wave.abs().max())
        if peak > _MAX_PEAK:
            # Float files hold [-1, 1] (some tools write int16-scaled floats); 1e15
            # overflows the features' float32 power spectrum into inf and NaN.
            raise S2SError(
                f"{where(self.path)}: samples reach {peak:.3g}, beyond "
                f"+-{_MAX_PEAK:g}: not audio as stored (corrupt or mis-scaled float "
                "file)"
            )
        return wave


def audio_seconds(path: str | os.PathLike[str]) -> float:
    """The duration of an audio file from its header, without decoding it.

    Raises:
        S2SError: as `load_audio` does for missing, empty or unreadable files.
    """
    info = _header(_check_file(path))
    return info.frames / info.samplerate


_DECODE_ERRORS = (RuntimeError, soundfile.SoundFileError, OSError, ValueError)
# Header rates outside this range are corrupt, not audio: resampling 1 Hz "audio" to
# 16 kHz would allocate 16000 samples per stored one.
_MIN_RATE, _MAX_RATE = 1000, 768_000
_MAX_RESAMPLE_TERMS = 1_000_000
_MAX_PEAK = 1e5


def _header(path: Path) -> soundfile._SoundFileInfo:
    """The file's header, checked for a usable sample rate and at least one frame."""
    try:
        info = soundfile.info(str(path))
    except _DECODE_ERRORS as err:
        raise _decode_error(path, err) from err
    if not _MIN_RATE <= info.samplerate <= _MAX_RATE:
        raise S2SError(
            f"{where(path)}: sample rate {info.samplerate} Hz in the header is outside "
            f"{_MIN_RATE}-{_MAX_RATE} Hz (corrupt header?)"
        )
    if info.frames <= 0:
        raise S2SError(f"{where(path)}: empty audio (0 samples)")
    return info


def _check_resampling(path: Path, file_rate: int, sample_rate: int) -> None:
    # The sinc kernel has about (file_rate / g) * (sample_rate / g) entries for
    # g = gcd: 441 * 160 from 44.1 to 16 kHz, but 16001 * 16000 from 16001 Hz.
    g = math.gcd(file_rate, sample_rate)
    if (file_rate // g) * (sample_rate // g) > _MAX_RESAMPLE_TERMS:
        raise S2SError(
            f"{where(path)}: cannot resample {file_rate} Hz to {sample_rate} Hz "
            f"(the rates share no large common factor; convert the file to "
            f"{sample_rate} Hz first)"
        )


def _check_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            reason = "is a directory"
        elif path.exists():
            reason = "not a regular file"
        else:
            reason = "file not found"
        raise S2SError(f"{where(path)}: {reason}")
    if path.stat().st_size == 0:
        raise S2SError(f"{where(path)}: empty file (0 bytes)")
    return path


def _decode_error(path: Path, err: Exception) -> S2SError:
    # libsndfile's message repeats the path: "Error opening 'x.ogg': <reason>".
    reason = re.sub(r"^Error opening .*?: ", "", str(err))
    return S2SError(f"{where(path)}: cannot decode audio ({reason})")


def read_manifest(
    path: str | os.PathLike[str], require_text: bool = True
) -> list[Utterance]:
    """Read a TSV speech manifest.

    Args:
        path: the manifest; its first line must be ``id\\tpath\\tduration\\ttext``
            plus any further columns, which are ignored (or exactly
            ``id\\tpath\\tduration`` when `require_text` is false).
        require_text: whether every row needs a non-empty transcript (training and
            scoring); pass false for transcription-only manifests.

    Returns:
        One `Utterance` per row, in file order. Audio paths are made absolute relative
        to the manifest's directory; the audio files themselves are not opened.

    Raises:
        S2SError: naming the manifest and line, for a missing file, a wrong header,
            a wrong number of columns, an empty id or path, a duration that is not a
            positive number, a duplicate id, bytes that are not UTF-8, a NUL byte, a
            blank line, or an empty transcript when `require_text` is true.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise S2SError(f"{where(path)}: cannot read manifest ({err.strerror})") from err
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline
    if not lines:
        raise S2SError(f"{where(path)}: empty manifest (no header line)")

    header = _decode(lines[0], path, 1).removeprefix("\ufeff").rstrip("\r")
    header = header.split("\t")
    if header[:4] == list(_COLUMNS) or (
        not require_text and header == list(_COLUMNS[:3])
    ):
        num_columns = len(header)
    else:
        expected = " <TAB> ".join(_COLUMNS)
        raise S2SError(
            f"{where(path, 1)}: header must be '{expected}', found columns {header!r}"
        )

    base = path.parent
    seen: dict[str, int] = {}
    utterances = []
    for lineno, line_bytes in enumerate(lines[1:], start=2):
        line = _decode(line_bytes, path, lineno).removesuffix("\r")
        loc = where(path, lineno)
        if not line.strip():
            raise S2SError(f"{loc}: blank line (remove it)")
        if "\x00" in line:
            raise S2SError(f"{loc}: contains a NUL byte")
        fields = line.split("\t")
        if len(fields) == 3 and num_columns == 4 and not require_text:
            fields.append("")
        if len(fields) != num_columns:
            raise S2SError(
                f"{loc}: expected {num_columns} tab-separated columns "
                f"({', '.join(header)}), found {len(fields)}"
            )
        utt_id, audio, duration_str = (f.strip() for f in fields[:3])
        text = fields[3].strip() if num_columns >= 4 else ""
        if not utt_id:
            raise S2SError(f"{loc}: empty id")
        if utt_id in seen:
            raise S2SError(
                f"{loc}: duplicate id '{utt_id}' (first used on line {seen[utt_id]})"
            )
        seen[utt_id] = lineno
        if not audio:
            raise S2SError(f"{loc}: empty audio path")
        duration = _parse_duration(duration_str, loc)
        if require_text and not text:
            raise S2SError(f"{loc}: empty transcript for '{utt_id}'")
        utterances.append(Utterance(utt_id, base / audio, duration, text or None))
    return utterances


def _decode(line: bytes, path: Path, lineno: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise S2SError(
            f"{where(path, lineno)}: not valid UTF-8 (byte {line[err.start]:#04x} "
            f"at column {err.start + 1})"
        ) from err


def _parse_duration(text: str, loc: str) -> float:
    try:
        duration = float(text)
    except ValueError:
        duration = math.nan
    if not math.isfinite(duration) or duration <= 0:
        raise S2SError(
            f"{loc}: duration must be a positive number of seconds, got {text!r}"
        )
    return duration


def speed_perturb(wave: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """Play `wave` `factor` times faster (pitch shifts too, as in Kaldi's recipes).

    The waveform is treated as if recorded at
    ``source_rate = round(sample_rate * factor)`` Hz and resampled to `sample_rate`,
    giving about ``N / factor`` samples. Use factors with few digits (0.9, 1.0, 1.1):
    the resampling kernel grows with the reduced ratio of the two rates.

    Shapes:
        wave (..., N) -> (..., N'), N' = ceil(N * sample_rate / source_rate).
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    source_rate = round(sample_rate * factor)
    if source_rate == sample_rate:
        return wave
    return torchaudio.functional.resample(wave, source_rate, sample_rate)
