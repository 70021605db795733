"""Debian's TTS engines: the voices, one utterance's synthesis, the tools' check.

Engines (Debian packages; install with
  apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox):
  espeak-ng  8 English accents x 16 voice variants (formant synthesis)
  flite      kal16, awb, rms, slt (built into Debian's flite 2.2)
  festival   kal_diphone, ked_diphone (text2wave)
synthesize() runs one engine, converts to 16 kHz mono with sox (shifting the
pitch there when the job asks), then, each only when the job asks: reverberation
(a synthetic room impulse response), noise at a given SNR, a telephone band
(300 to 3,400 Hz); finally it sets the peak level. Everything random comes from
the job.
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time

SR = 16000

ESPEAK_ACCENTS = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
ESPEAK_VARIANTS = [
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
]
FLITE_VOICES = ["kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone"]
# probability of picking an engine for a training utterance (espeak has many
# more voices, so voices are not drawn uniformly)
ENGINE_WEIGHTS = {"espeak": 0.5, "flite": 0.3, "festival": 0.2}


def all_voices():
    v = [
        "espeak:{}{}".format(a, "+" + var if var else "")
        for a in ESPEAK_ACCENTS
        for var in ESPEAK_VARIANTS
    ]
    v += ["flite:" + x for x in FLITE_VOICES]
    v += ["festival:" + x for x in FESTIVAL_VOICES]
    return v


def seeded_rng(*parts):
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def synth_cmd(voice, speed, text_file, wav):
    engine, name = voice.split(":", 1)
    if engine == "espeak":
        # default rate 175 words/min
        return [
            "espeak-ng",
            "-v",
            name,
            "-s",
            str(int(round(175 * speed))),
            "-w",
            wav,
            "-f",
            text_file,
        ]
    if engine == "flite":
        return [
            "flite",
            "-voice",
            name,
            "--setf",
            "duration_stretch=%.3f" % (1.0 / speed),
            "-f",
            text_file,
            "-o",
            wav,
        ]
    if engine == "festival":
        return [
            "text2wave",
            "-o",
            wav,
            "-eval",
            f"(voice_{name})",
            "-eval",
            "(Parameter.set 'Duration_Stretch %.3f)" % (1.0 / speed),
            text_file,
        ]
    raise ValueError(voice)


def make_noise(kind, n, rng_np):
    import numpy as np

    w = rng_np.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1] if n > 1 else 1.0
    spec = spec / (np.sqrt(f) if kind == "pink" else f)
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def room_impulse_response(rt60, drr_db, rng_np):
    """A synthetic room: a unit direct path, then exponentially decaying Gaussian
    noise that falls by 60 dB in `rt60` seconds, its energy `drr_db` dB below the
    direct path's (the direct-to-reverberant ratio)."""
    import numpy as np

    n = max(2, int(rt60 * SR))
    t = np.arange(n) / SR
    tail = rng_np.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / (tail**2).sum())
    tail[0] = 1.0
    return tail


def reverberate(x, rt60, drr_db, rng_np):
    """`x` heard in a synthetic room (room_impulse_response), with the reverberant
    tail that runs past the end of the speech kept (at most rt60 / 2 seconds)."""
    import numpy as np

    h = room_impulse_response(rt60, drr_db, rng_np)
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return y[: len(x) + int(rt60 * SR / 2)]


def telephone_band(x, low=300.0, high=3400.0):
    """The telephone band: everything outside [low, high] Hz removed (an FFT mask
    with 100 Hz raised-cosine edges)."""
    import numpy as np

    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / SR)
    gain = np.clip(np.minimum((f - low + 100) / 100, (high + 100 - f) / 100), 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spec * gain, len(x))


def active_power(x):
    """Mean power over 20 ms frames within 40 dB of the loudest frame."""
    fl = SR // 50
    nfr = max(1, len(x) // fl)
    fr = x[: nfr * fl].reshape(nfr, -1) if len(x) >= fl else x.reshape(1, -1)
    p = (fr**2).mean(axis=1)
    keep = p > p.max() * 1e-4
    return float(p[keep].mean()) if keep.any() else float(p.mean())


def synthesize(job, tmpdir):
    """Synthesise one utterance; return (seconds spent, duration)."""
    import numpy as np
    import soundfile as sf

    out = job["abs_path"]
    if os.path.exists(out):
        try:
            info = sf.info(out)
            return None, info.frames / info.samplerate
        except Exception:
            os.remove(out)
    t0 = time.time()
    base = os.path.join(tmpdir, job["id"])
    txt = base + ".txt"
    with open(txt, "w", encoding="utf-8") as f:
        f.write(job["tts_text"] + "\n")
    raw = base + ".raw.wav"
    conv = base + ".16k.wav"
    subprocess.run(
        synth_cmd(job["voice"], job["speed"], txt, raw),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    subprocess.run(
        [
            "sox",
            "-V1",
            raw,
            "-r",
            str(SR),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            conv,
        ]
        + (["pitch", str(job["pitch_cents"])] if job.get("pitch_cents") else []),
        check=True,
    )
    x, sr = sf.read(conv, dtype="float64")
    assert sr == SR
    if job.get("rt60"):
        # its own generator, so that the noise below stays what it was
        rir_rng = np.random.default_rng([job["noise_seed"], 1])
        x = reverberate(x, job["rt60"], job["drr_db"], rir_rng)
    rng = np.random.default_rng(job["noise_seed"])
    if job["noise"] != "clean":
        noise = make_noise(job["noise"], len(x), rng)
        ps = active_power(x)
        noise *= np.sqrt(ps / (10 ** (job["snr_db"] / 10)))
        x = x + noise
    if job.get("telephone"):
        x = telephone_band(x)
    # random peak level between -12 and -1 dBFS, never clipping
    peak = np.abs(x).max() + 1e-9
    x = x * (10 ** (job["peak_db"] / 20) / peak)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    sf.write(out + ".part.wav", x, SR, subtype="PCM_16")
    os.replace(out + ".part.wav", out)
    for p in (txt, raw, conv):
        os.remove(p)
    return time.time() - t0, len(x) / SR


def check_tools(voices):
    need = {"sox": "sox"}
    engines = {v.split(":")[0] for v in voices}
    if "espeak" in engines:
        need["espeak-ng"] = "espeak-ng"
    if "flite" in engines:
        need["flite"] = "flite"
    if "festival" in engines:
        need["text2wave"] = "festival festvox-kallpc16k festvox-kdlpc16k"
    missing = [pkg for tool, pkg in need.items() if shutil.which(tool) is None]
    if missing:
        sys.exit(
            "missing tools; install with:  apt-get install -y " + " ".join(missing)
        )
    if "flite" in engines:
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        for v in voices:
            if v.startswith("flite:") and v.split(":")[1] not in listed.split():
                sys.exit(f"flite voice {v} not built in (flite -lv: {listed.strip()})")
    if "festival" in engines:
        for v in voices:
            if v.startswith("festival:"):
                d = "/usr/share/festival/voices/english/" + v.split(":")[1]
                if not os.path.isdir(d):
                    sys.exit(
                        f"festival voice missing: {d} (apt-get install -y "
                        "festvox-kallpc16k festvox-kdlpc16k)"
                    )


def tool_versions():
    out = {}
    for pkg in (
        "espeak-ng",
        "flite",
        "festival",
        "festvox-kallpc16k",
        "festvox-kdlpc16k",
        "sox",
    ):
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True
        )
        out[pkg] = r.stdout.strip() or None
    return out
