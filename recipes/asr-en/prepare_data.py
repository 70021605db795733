#!/usr/bin/env python3
"""Prepare an English ASR corpus synthesised with Debian's TTS engines.

Engines (Debian packages; install with
  apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox):
  espeak-ng  8 English accents x 16 voice variants (formant synthesis)
  flite      kal16, awb, rms, slt (built into Debian's flite 2.2)
  festival   kal_diphone, ked_diphone (text2wave)

Sentences come from --sentences FILE (one per line).  Each sentence is first
rewritten into a "spoken form" (numbers spelled out by this script, a few
abbreviations expanded, emphasis capitals lowercased) and THAT text is given
to the TTS engine, so that the transcript matches what the engine says.
Sentences that cannot be rewritten safely (acronyms, URLs, paths, times,
fractions, non-Latin letters, ...) are dropped and counted per reason.

Splits (sentences are disjoint between splits, and so are voices):
  train        train sentences x --voices-per-sentence random training voices
  valid        valid sentences x the held-out valid voice (--valid-voice)
  test         test sentences  x the held-out test voice  (--test-voice)
  test_seen    test sentences  x one random training voice, with the same
               speed/noise/SNR as the `test` utterance: the same text and
               augmentation with a seen voice, to isolate the voice mismatch.
Augmentation: speaking rate (espeak -s, flite duration_stretch, festival
Duration_Stretch) drawn per utterance; on --noise-prob of the utterances
white/pink/brown noise is added at a random SNR in [--snr-min, --snr-max] dB
(active-speech power).  valid/test get the same rate/noise treatment as train.

Output: data/audio/<split>/<id>.wav (16 kHz mono 16-bit), data/<split>.tsv with
columns id, path (relative to data/), duration, text (normalised), engine,
voice, speed, noise, snr_db, raw_text; data/pocketsphinx_test.tsv (real
speech from Debian's pocketsphinx-testdata), data/stats.json.
Resumable: existing wavs are kept (delete data/audio to re-synthesise).

Text normalisation (column text): spoken form, lowercased, hyphens and all
punctuation except word-internal apostrophes removed, whitespace collapsed;
only [a-z' ] remains.

Usage:
  python prepare_data.py --sentences FILE --work work --out data \
      [--num-sentences 2000] [--voices-per-sentence 2] [--seed 1] [--jobs 1]
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor

SR = 16000

# --------------------------------------------------------------------------
# voices

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


# --------------------------------------------------------------------------
# spoken form and normalisation

ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = [
    "",
    "",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
]
ORD_EXC = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def cardinal(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + (" " + cardinal(rest) if rest else "")
    for div, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= div:
            rest = n % div
            return (
                cardinal(n // div) + " " + name + (" " + cardinal(rest) if rest else "")
            )
    raise ValueError(n)


def ordinal(n):
    words = cardinal(n).split()
    last = words[-1]
    if last in ORD_EXC:
        last = ORD_EXC[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join(words[:-1] + [last])


def year(n):
    """1984 -> nineteen eighty four, 2005 -> two thousand five,
    1900 -> nineteen hundred"""
    if 2000 <= n <= 2009:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return cardinal(hi) + " hundred"
    if lo < 10:
        return cardinal(hi) + " oh " + cardinal(lo)
    return cardinal(hi) + " " + cardinal(lo)


def digits_words(s):
    return " ".join(ONES[int(c)] for c in s)


ABBREV = {
    "mr.": "mister",
    "mrs.": "missus",
    "dr.": "doctor",
    "st.": "saint",
    "vs.": "versus",
    "etc.": "et cetera",
    "e.g.": "for example",
    "i.e.": "that is",
}
CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds"}
SUBUNIT = {"$": ("cent", "cents"), "€": ("cent", "cents"), "£": ("penny", "pence")}
SYMBOLS = {
    "&": " and ",
    "%": " percent ",
    "+": " plus ",
    "=": " equals ",
    "@": None,
    "#": None,
    "/": None,
    "\\": None,
    "|": None,
    "<": None,
    ">": None,
    "*": None,
    "_": None,
    "~": None,
    "^": None,
    "[": " ",
    "]": " ",
    "{": None,
    "}": None,
}
MAX_NUMBER = 10**9


def _number_token(m):
    """Spell one numeric token (called from re.sub); raise ValueError to drop."""
    cur, num, suffix = m.group("cur"), m.group("num"), m.group("suf") or ""
    plain = num.replace(",", "")
    if suffix and (suffix.lower() not in ("st", "nd", "rd", "th", "s") or "." in plain):
        raise ValueError("number")
    if "," in num and not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", num):
        raise ValueError("number")
    if "." in plain:
        ip, fp = plain.split(".")
        if len(fp) > 3 or int(ip) >= MAX_NUMBER:
            raise ValueError("number")
        if cur:  # $5.50 -> five dollars fifty cents
            if len(fp) != 2:
                raise ValueError("number")
            unit, sub = CURRENCY[cur], SUBUNIT[cur]
            words = cardinal(int(ip)) + " " + (unit[:-1] if int(ip) == 1 else unit)
            if int(fp):
                words += (
                    " " + cardinal(int(fp)) + " " + (sub[0] if int(fp) == 1 else sub[1])
                )
            return " " + words + " "
        words = cardinal(int(ip)) + " point " + digits_words(fp)
    else:
        n = int(plain)
        if n >= MAX_NUMBER or (len(plain) > 1 and plain[0] == "0"):
            raise ValueError("number")
        low = suffix.lower()
        if low in ("st", "nd", "rd", "th"):
            if cur:
                raise ValueError("number")
            return " " + ordinal(n) + " "
        if low == "s" and len(plain) == 4 and plain.endswith("0"):  # 1960s
            w = year(n)
            return " " + (w[:-1] + "ies" if w.endswith("y") else w + "s") + " "
        if suffix:
            raise ValueError("number")
        if "," not in num and len(plain) == 4 and 1100 <= n <= 2099 and not cur:
            words = year(n)
        else:
            words = cardinal(n)
    if cur:
        words += " " + (CURRENCY[cur][:-1] if plain == "1" else CURRENCY[cur])
    return " " + words + " "


NUM_RE = re.compile(
    r"(?P<cur>[$€£])?(?<![\w.])(?P<num>\d[\d,]*(?:\.\d+)?)(?P<suf>[A-Za-z]+)?(?![\w])"
)


def spoken_form(sentence):
    """Return (tts_text, None) or (None, reason)."""
    s = unicodedata.normalize("NFKC", sentence).strip()
    s = (
        s.replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("`", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
        .replace("\u2014", " - ")
        .replace("\u2013", " - ")
        .replace("\u2026", "...")
    )
    # strip accents (café -> cafe); other scripts -> drop
    s = "".join(
        c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)
    )
    if any(ord(c) > 127 and c not in CURRENCY for c in s):
        return None, "non-ascii"
    if re.search(r"\d[:/]\d|\d-\d|\d\.\d+\.\d", s):
        return None, "time-date-range"
    if re.search(r"https?:|www\.|\S@\S|\.(com|org|net|html?)\b|\w/\w|/\w", s):
        return None, "url-or-path"
    # abbreviations
    for ab, full in ABBREV.items():
        pat = r"(?<![\w.])" + re.escape(ab).replace(r"\.", r"\.") + r"(?=[\s,;:]|$)"
        if re.search(pat, s, flags=re.I):
            s = re.sub(pat, full, s, flags=re.I)
    # a dotted token left (U.S., a.m., 3.x) -> drop
    if re.search(r"\b[A-Za-z]\.[A-Za-z]\.", s):
        return None, "abbreviation"
    if re.search(r"\d", s):
        try:
            s = NUM_RE.sub(_number_token, s)
        except ValueError:
            return None, "number"
        if re.search(r"\d", s):
            return None, "number"
    for sym, rep in SYMBOLS.items():
        if sym in s:
            if rep is None:
                return None, "symbol"
            s = s.replace(sym, rep)
    if re.search(r"[$€£]", s):
        return None, "symbol"
    # capitals: "WOULD" (emphasis) -> would; short acronyms (EU, BBC) -> drop
    toks = []
    for tok in s.split():
        core = re.sub(r"[^A-Za-z']", "", tok)
        letters = core.replace("'", "")
        if len(letters) >= 2 and letters.isupper():
            if (
                re.sub(r"'S$", "", core).isupper()
                and len(letters) >= 4
                and re.search(r"[AEIOUY]", letters)
                and not re.search(r"[^AEIOUY]{4}", letters)
            ):
                tok = tok.lower()
            else:
                return None, "acronym"
        elif len(letters) >= 2 and not re.search(r"[aeiouyAEIOUY]", letters):
            return None, "no-vowel-token"  # gpgsm, dirmngr: engines spell these
        elif re.search(r"[a-z][A-Z]", core) and not re.fullmatch(
            r"(Mc|Mac|O')[A-Z][a-z]+('s)?", core
        ):  # camelCase / iPhone (McDonald is fine)
            return None, "mixed-case"
        toks.append(tok)
    s = " ".join(toks)
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    return s, None


def normalize(text):
    t = text.lower()
    t = re.sub(r"[^a-z']+", " ", t)
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)
    return " ".join(t.split())


def prepare_sentence(sentence, min_words, max_words):
    tts, why = spoken_form(sentence)
    if tts is None:
        return None, None, why
    norm = normalize(tts)
    if not norm:
        return None, None, "empty"
    n = len(norm.split())
    if n < min_words:
        return None, None, "too-short"
    if n > max_words:
        return None, None, "too-long"
    if not re.fullmatch(r"[a-z' ]+", norm):
        return None, None, "charset"
    return tts, norm, None


# --------------------------------------------------------------------------
# synthesis


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
        ],
        check=True,
    )
    x, sr = sf.read(conv, dtype="float64")
    assert sr == SR
    rng = np.random.default_rng(job["noise_seed"])
    if job["noise"] != "clean":
        noise = make_noise(job["noise"], len(x), rng)
        ps = active_power(x)
        noise *= np.sqrt(ps / (10 ** (job["snr_db"] / 10)))
        x = x + noise
    # random peak level between -12 and -1 dBFS, never clipping
    peak = np.abs(x).max() + 1e-9
    x = x * (10 ** (job["peak_db"] / 20) / peak)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    sf.write(out + ".part.wav", x, SR, subtype="PCM_16")
    os.replace(out + ".part.wav", out)
    for p in (txt, raw, conv):
        os.remove(p)
    return time.time() - t0, len(x) / SR


# --------------------------------------------------------------------------
# pocketsphinx-testdata (real speech)

PS_PKG = "pocketsphinx-testdata"
# headerless files documented in pocketsphinx's own tests (16 kHz, 16 bit,
# little-endian, mono); numbers.raw and something.raw have no reference
# transcript in the package and are skipped.
PS_RAW = {
    "goforward.raw": "go forward ten meters",
    "tidigits/dhd.2934z.raw": "two nine three four zero",
}


def fetch_deb(pkg, work):
    deb_dir = os.path.join(work, "debs")
    ext_dir = os.path.join(work, "extracted")
    os.makedirs(deb_dir, exist_ok=True)
    os.makedirs(ext_dir, exist_ok=True)
    debs = sorted(f for f in os.listdir(deb_dir) if f.startswith(pkg + "_"))
    if not debs:
        print("+ apt-get download", pkg, flush=True)
        subprocess.run(["apt-get", "download", pkg], cwd=deb_dir, check=True)
        debs = sorted(f for f in os.listdir(deb_dir) if f.startswith(pkg + "_"))
    deb = debs[-1]
    stamp = os.path.join(ext_dir, ".done-" + deb)
    if not os.path.exists(stamp):
        print("+ dpkg-deb -x", deb, flush=True)
        subprocess.run(
            ["dpkg-deb", "-x", os.path.join(deb_dir, deb), ext_dir], check=True
        )
        open(stamp, "w").close()
    return ext_dir, deb[len(pkg) + 1 :].rsplit("_", 1)[0]


def read_sphinx_transcription(path):
    """Lines like '<s> text </s> (uttid)' -> {uttid: text}."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^(.*)\(([^()]+)\)\s*$", line.strip())
            if m:
                text = re.sub(r"</?s>", " ", m.group(1))
                out[m.group(2).strip()] = " ".join(text.split())
    return out


def prepare_pocketsphinx(work, out):
    import numpy as np
    import soundfile as sf

    ext, version = fetch_deb(PS_PKG, work)
    data = os.path.join(ext, "usr", "share", "pocketsphinx", "test", "data")
    rows = []
    for sub in ("cards", "librivox"):
        d = os.path.join(data, sub)
        tfile = [f for f in os.listdir(d) if f.endswith("transcription")][0]
        for uid, text in sorted(
            read_sphinx_transcription(os.path.join(d, tfile)).items()
        ):
            wav = os.path.join(d, uid + ".wav")
            info = sf.info(wav)
            assert info.samplerate == SR and info.channels == 1, wav
            rows.append(
                (
                    f"{sub}-{uid}",
                    os.path.abspath(wav),
                    info.frames / info.samplerate,
                    normalize(text),
                )
            )
    adir = os.path.join(out, "audio", "pocketsphinx")
    os.makedirs(adir, exist_ok=True)
    for rel, text in PS_RAW.items():
        x = np.fromfile(os.path.join(data, rel), dtype="<i2")
        uid = os.path.basename(rel)[:-4].replace(".", "_")
        wav = os.path.join(adir, uid + ".wav")
        if not os.path.exists(wav):
            sf.write(wav, x, SR, subtype="PCM_16")
        rows.append(("raw-" + uid, os.path.abspath(wav), len(x) / SR, normalize(text)))
    out_abs = os.path.abspath(out)
    with open(os.path.join(out, "pocketsphinx_test.tsv"), "w", encoding="utf-8") as f:
        f.write("id\tpath\tduration\ttext\n")
        for uid, path, dur, text in rows:
            f.write(f"{uid}\t{os.path.relpath(path, out_abs)}\t{dur:.3f}\t{text}\n")
    return dict(
        package_version=version,
        utterances=len(rows),
        minutes=round(sum(r[2] for r in rows) / 60, 3),
        skipped=[
            "numbers.raw",
            "something.raw",
            "tidigits/*.mfc (features only, no audio)",
        ],
    )


# --------------------------------------------------------------------------


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


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--sentences", required=True, help="English sentences, one per line"
    )
    ap.add_argument("--work", default="work")
    ap.add_argument("--out", default="data")
    ap.add_argument(
        "--num-sentences",
        type=int,
        default=0,
        help="use this many usable sentences (0 = all)",
    )
    ap.add_argument(
        "--voices-per-sentence",
        type=int,
        default=2,
        help="training voices per training sentence",
    )
    ap.add_argument("--valid-frac", type=float, default=0.1)
    ap.add_argument("--test-frac", type=float, default=0.1)
    ap.add_argument("--valid-voice", default="festival:ked_diphone")
    ap.add_argument("--test-voice", default="flite:slt")
    ap.add_argument("--engines", default="espeak,flite,festival")
    ap.add_argument("--min-words", type=int, default=2)
    ap.add_argument("--max-words", type=int, default=40)
    ap.add_argument("--speed-min", type=float, default=0.85)
    ap.add_argument("--speed-max", type=float, default=1.2)
    ap.add_argument("--noise-prob", type=float, default=0.3)
    ap.add_argument("--snr-min", type=float, default=10.0)
    ap.add_argument("--snr-max", type=float, default=30.0)
    ap.add_argument("--no-test-seen", action="store_true")
    ap.add_argument("--skip-pocketsphinx", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()

    engines = set(args.engines.split(","))
    voices = [v for v in all_voices() if v.split(":")[0] in engines]
    for hv in (args.valid_voice, args.test_voice):
        if hv not in voices:
            sys.exit(f"held-out voice {hv} not among voices")
    train_voices = [v for v in voices if v not in (args.valid_voice, args.test_voice)]
    check_tools(voices)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    # ---- sentences
    with open(args.sentences, encoding="utf-8", errors="replace") as f:
        raw = [" ".join(line.split()) for line in f]
    seen, usable, reasons = set(), [], {}
    for i, s in enumerate(raw):
        if not s:
            continue
        tts, norm, why = prepare_sentence(s, args.min_words, args.max_words)
        if why is None and norm in seen:
            why = "duplicate"
        if why:
            reasons[why] = reasons.get(why, 0) + 1
            continue
        seen.add(norm)
        usable.append((i, s, tts, norm))
    print(f"sentences: {len(raw)} lines, {len(usable)} usable, dropped {reasons}")
    rng = random.Random(args.seed)
    rng.shuffle(usable)
    if args.num_sentences:
        usable = usable[: args.num_sentences]
    n = len(usable)
    n_test = int(round(n * args.test_frac))
    n_valid = int(round(n * args.valid_frac))
    parts = {
        "test": usable[:n_test],
        "valid": usable[n_test : n_test + n_valid],
        "train": usable[n_test + n_valid :],
    }

    # ---- utterance plan (each utterance's randomness depends only on
    #      seed, sentence line number and voice: resumable and stable)
    by_engine = {}
    for v in train_voices:
        by_engine.setdefault(v.split(":")[0], []).append(v)

    def pick_train_voices(r, k):
        chosen = []
        while len(chosen) < min(k, len(train_voices)):
            engs = [e for e in by_engine if any(v not in chosen for v in by_engine[e])]
            e = r.choices(engs, weights=[ENGINE_WEIGHTS.get(x, 0.1) for x in engs])[0]
            chosen.append(r.choice([v for v in by_engine[e] if v not in chosen]))
        return chosen

    jobs = []

    def add(split, idx, raw_s, tts, norm, voice, like=None):
        r = seeded_rng(args.seed, idx, voice, split)
        speed = round(r.uniform(args.speed_min, args.speed_max), 3)
        noisy = r.random() < args.noise_prob
        vkey = re.sub(r"[^A-Za-z0-9]+", "_", voice)
        uid = f"{split}-{idx:07d}-{vkey}"
        rel = os.path.join("audio", split, uid + ".wav")
        job = dict(
            id=uid,
            split=split,
            voice=voice,
            engine=voice.split(":")[0],
            speed=speed,
            noise=r.choice(["white", "pink", "brown"]) if noisy else "clean",
            snr_db=round(r.uniform(args.snr_min, args.snr_max), 1) if noisy else None,
            peak_db=round(r.uniform(-12, -1), 2),
            noise_seed=r.getrandbits(32),
            tts_text=tts,
            text=norm,
            raw_text=raw_s.replace("\t", " "),
            path=rel,
            abs_path=os.path.join(os.path.abspath(args.out), rel),
        )
        if like is not None:  # same speed / noise / level as another utterance
            for k in ("speed", "noise", "snr_db", "peak_db", "noise_seed"):
                job[k] = like[k]
        jobs.append(job)
        return job

    for idx, s, tts, norm in parts["train"]:
        for v in pick_train_voices(
            seeded_rng(args.seed, idx, "voices"), args.voices_per_sentence
        ):
            add("train", idx, s, tts, norm, v)
    for idx, s, tts, norm in parts["valid"]:
        add("valid", idx, s, tts, norm, args.valid_voice)
    for idx, s, tts, norm in parts["test"]:
        tj = add("test", idx, s, tts, norm, args.test_voice)
        if not args.no_test_seen:
            v = pick_train_voices(seeded_rng(args.seed, idx, "seen"), 1)[0]
            add("test_seen", idx, s, tts, norm, v, like=tj)

    # ---- synthesis
    timing = {}
    errors = []
    tmpdir = tempfile.mkdtemp(prefix="tts-", dir=args.work)
    t_start = time.time()

    def work(job):
        try:
            return job, synthesize(job, tmpdir), None
        except subprocess.CalledProcessError as e:
            return job, (None, None), (e.stderr or b"").decode(errors="replace")[-300:]

    done = 0
    with ThreadPoolExecutor(max(1, args.jobs)) as ex:
        for job, (secs, dur), err in ex.map(work, jobs):
            done += 1
            if err is not None or dur is None:
                errors.append((job["id"], err))
                continue
            job["duration"] = dur
            if secs is not None:
                t = timing.setdefault(job["voice"].split(":")[0], [0, 0.0, 0.0])
                t[0] += 1
                t[1] += secs
                t[2] += dur
            if done % 200 == 0 or done == len(jobs):
                print(
                    f"  {done}/{len(jobs)} utterances ({time.time() - t_start:.0f} s)",
                    flush=True,
                )
    shutil.rmtree(tmpdir, ignore_errors=True)
    for uid, err in errors:
        print("FAILED", uid, err)

    # ---- sanity: speaking rate outliers (chars of text per second of audio)
    ok = [j for j in jobs if j.get("duration")]
    for j in ok:
        j["cps"] = len(j["text"]) / j["duration"]
    cps = sorted(j["cps"] for j in ok)
    med = cps[len(cps) // 2] if cps else 0
    outliers = [j for j in ok if j["cps"] > 2.5 * med or j["cps"] < med / 2.5]
    for j in outliers:
        print(
            "rate outlier: {} {:.2f}s {:.1f} chars/s: {}".format(
                j["id"], j["duration"], j["cps"], j["text"][:60]
            )
        )

    # ---- manifests
    cols = [
        "id",
        "path",
        "duration",
        "text",
        "engine",
        "voice",
        "speed",
        "noise",
        "snr_db",
        "raw_text",
    ]
    stats = dict(
        tools=tool_versions(),
        seed=args.seed,
        args=vars(args),
        sentences_in_file=len(raw),
        sentences_usable=len(usable),
        sentences_dropped=reasons,
        held_out=dict(valid=args.valid_voice, test=args.test_voice),
        train_voices=len(train_voices),
        failed=errors,
        median_chars_per_second=round(med, 2),
        rate_outliers=[j["id"] for j in outliers],
        splits={},
    )
    for split in ("train", "valid", "test", "test_seen"):
        rs = [j for j in ok if j["split"] == split]
        if split == "test_seen" and args.no_test_seen:
            continue
        with open(os.path.join(args.out, split + ".tsv"), "w", encoding="utf-8") as f:
            f.write("\t".join(cols) + "\n")
            for j in rs:
                f.write(
                    "\t".join(
                        [
                            j["id"],
                            j["path"],
                            "{:.3f}".format(j["duration"]),
                            j["text"],
                            j["engine"],
                            j["voice"],
                            "{:.3f}".format(j["speed"]),
                            j["noise"],
                            "" if j["snr_db"] is None else "{:.1f}".format(j["snr_db"]),
                            j["raw_text"],
                        ]
                    )
                    + "\n"
                )
        mins = sum(j["duration"] for j in rs) / 60
        st = dict(
            utterances=len(rs),
            sentences=len({j["text"] for j in rs}),
            minutes=round(mins, 2),
            voices=len({j["voice"] for j in rs}),
            noisy=sum(j["noise"] != "clean" for j in rs),
            per_engine={e: sum(j["engine"] == e for j in rs) for e in ENGINE_WEIGHTS},
        )
        stats["splits"][split] = st
        print(
            f"{split:<9} {st['utterances']:6d} utts {st['sentences']:6d} sents "
            f"{mins:7.1f} min {st['voices']:4d} voices {st['noisy']:5d} noisy "
            f"{st['per_engine']}"
        )
    stats["synthesis_timing"] = {
        e: dict(
            utterances=c,
            seconds_per_utt=round(s / c, 3),
            audio_seconds_per_utt=round(a / c, 3),
            real_time_factor=round(s / a, 4),
        )
        for e, (c, s, a) in timing.items()
        if c
    }
    for e, t in sorted(stats["synthesis_timing"].items()):
        print(
            f"timing {e:<8} {t['utterances']:4d} utts  {t['seconds_per_utt']:.3f} "
            f"s/utt (incl. sox+noise)  RTF {t['real_time_factor']:.3f}"
        )
    if not args.skip_pocketsphinx:
        stats["pocketsphinx_test"] = prepare_pocketsphinx(args.work, args.out)
        print(
            f"pocketsphinx_test: {stats['pocketsphinx_test']['utterances']} utts, "
            f"{stats['pocketsphinx_test']['minutes']:.2f} min"
        )
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    print("wrote manifests and stats.json to", args.out)


if __name__ == "__main__":
    main()
