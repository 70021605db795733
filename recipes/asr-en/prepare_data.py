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
Training utterances only, each with its own probability (all 0 by default):
a pitch shift of up to +-`--pitch-cents` (sox pitch: tempo kept, formants move
with the pitch, a different-sounding speaker), reverberation (a synthetic room,
RT60 in [--rt60-min, --rt60-max] s, direct-to-reverberant ratio in
[--drr-min, --drr-max] dB), and a telephone band (300 to 3,400 Hz) after the
noise. They draw from each utterance's generator after everything above, so
valid, test and test_seen are the same audio with or without them.
--extra-train-sentences N adds N more sentences to train only, taken after the
first --num-sentences of the shuffled list: valid and test stay as they are.

Output: data/audio/<split>/<id>.wav (16 kHz mono 16-bit), data/<split>.tsv with
columns id, path (relative to data/), duration, text (normalised), engine,
voice, speed, noise, snr_db, raw_text, pitch_cents, rt60, telephone;
data/pocketsphinx_test.tsv (real speech from Debian's pocketsphinx-testdata),
data/stats.json.
data/lm_text.txt: the normalised text of every usable sentence of --sentences
that is not in valid or test (train's and those never synthesised), for a
language model. Resumable: existing wavs are kept (delete data/audio to re-synthesise).

Text normalisation (column text): spoken form, lowercased, hyphens and all
punctuation except word-internal apostrophes removed, whitespace collapsed;
only [a-z' ] remains.

Usage:
  python prepare_data.py --sentences FILE --work work --out data \
      [--num-sentences 2000] [--voices-per-sentence 2] [--seed 1] [--jobs 1]
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from spoken_form import normalize, prepare_sentence
from tts import (
    ENGINE_WEIGHTS,
    SR,
    all_voices,
    check_tools,
    seeded_rng,
    synthesize,
    tool_versions,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import DebianError, fetch  # noqa: E402  (recipes/ is on the path now)

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

    package = fetch([PS_PKG], work)[PS_PKG]
    ext, version = package.root, package.version
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
# the steps of main


def parse_args():
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
    ap.add_argument(
        "--extra-train-sentences",
        type=int,
        default=0,
        help="this many more sentences, for train only (after --num-sentences)",
    )
    ap.add_argument("--pitch-prob", type=float, default=0.0)
    ap.add_argument("--pitch-cents", type=float, default=300.0)
    ap.add_argument("--reverb-prob", type=float, default=0.0)
    ap.add_argument("--rt60-min", type=float, default=0.2)
    ap.add_argument("--rt60-max", type=float, default=0.8)
    ap.add_argument("--drr-min", type=float, default=0.0)
    ap.add_argument("--drr-max", type=float, default=12.0)
    ap.add_argument("--telephone-prob", type=float, default=0.0)
    ap.add_argument("--no-test-seen", action="store_true")
    ap.add_argument("--skip-pocketsphinx", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    return ap.parse_args()


def read_sentences(args):
    """Every line of --sentences; the usable ones as (line number, sentence,
    tts text, transcript), in file order; the drop count per reason."""
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
    return raw, usable, reasons


def write_lm_text(usable, parts, out):
    """OUT/lm_text.txt: the transcripts of all usable sentences except those of
    valid and test (never their text: the LM would have read the answers)."""
    held_out = {norm for split in ("valid", "test") for *_, norm in parts[split]}
    path = os.path.join(out, "lm_text.txt")
    with open(path + ".part", "w", encoding="utf-8") as f:
        for _, _, _, norm in sorted(usable):
            if norm not in held_out:
                f.write(norm + "\n")
    os.replace(path + ".part", path)


def plan_utterances(parts, train_voices, args):
    """One job per utterance to synthesise. Each utterance's randomness depends
    only on seed, sentence line number and voice: resumable and stable."""
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
            pitch_cents=0,
            rt60=None,
            drr_db=None,
            telephone=False,
        )
        if split == "train":  # drawn last: the draws above stay as they were
            if r.random() < args.pitch_prob:
                job["pitch_cents"] = int(round(r.uniform(-1, 1) * args.pitch_cents))
            if r.random() < args.reverb_prob:
                job["rt60"] = round(r.uniform(args.rt60_min, args.rt60_max), 3)
                job["drr_db"] = round(r.uniform(args.drr_min, args.drr_max), 1)
            job["telephone"] = r.random() < args.telephone_prob
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
    return jobs


def synthesize_all(jobs, args):
    """Synthesise the jobs (--jobs threads), setting each one's duration;
    return per-engine timing [count, seconds, audio seconds] and the failures."""
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
    return timing, errors


def rate_outliers(jobs):
    """The synthesised jobs with their chars/s ("cps"), the median, and the
    jobs beyond 2.5x or 1/2.5 of it (speaking-rate sanity check)."""

    ok = [j for j in jobs if j.get("duration")]
    for j in ok:
        j["cps"] = len(j["text"]) / j["duration"]
    cps = sorted(j["cps"] for j in ok)
    med = cps[len(cps) // 2] if cps else 0
    outliers = [j for j in ok if j["cps"] > 2.5 * med or j["cps"] < med / 2.5]
    return ok, med, outliers


def write_manifests(ok, args, stats):
    """OUT/<split>.tsv for each split, and its counts into stats["splits"]."""
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
        "pitch_cents",
        "rt60",
        "telephone",
    ]
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
                            str(j["pitch_cents"]),
                            "" if j["rt60"] is None else "{:.3f}".format(j["rt60"]),
                            "1" if j["telephone"] else "0",
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
            pitch_shifted=sum(bool(j["pitch_cents"]) for j in rs),
            reverberant=sum(j["rt60"] is not None for j in rs),
            telephone=sum(j["telephone"] for j in rs),
            per_engine={e: sum(j["engine"] == e for j in rs) for e in ENGINE_WEIGHTS},
        )
        stats["splits"][split] = st
        print(
            f"{split:<9} {st['utterances']:6d} utts {st['sentences']:6d} sents "
            f"{mins:7.1f} min {st['voices']:4d} voices {st['noisy']:5d} noisy "
            f"{st['per_engine']}"
        )


def main():
    args = parse_args()
    engines = set(args.engines.split(","))
    voices = [v for v in all_voices() if v.split(":")[0] in engines]
    for hv in (args.valid_voice, args.test_voice):
        if hv not in voices:
            sys.exit(f"held-out voice {hv} not among voices")
    train_voices = [v for v in voices if v not in (args.valid_voice, args.test_voice)]
    check_tools(voices)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    raw, usable, reasons = read_sentences(args)
    print(f"sentences: {len(raw)} lines, {len(usable)} usable, dropped {reasons}")
    rng = random.Random(args.seed)
    rng.shuffle(usable)
    everything = list(usable)
    extra = []
    if args.num_sentences:
        extra = usable[args.num_sentences :][: args.extra_train_sentences]
        usable = usable[: args.num_sentences]
    elif args.extra_train_sentences:
        sys.exit("--extra-train-sentences needs --num-sentences")
    n = len(usable)
    n_test = int(round(n * args.test_frac))
    n_valid = int(round(n * args.valid_frac))
    parts = {
        "test": usable[:n_test],
        "valid": usable[n_test : n_test + n_valid],
        "train": usable[n_test + n_valid :] + extra,
    }
    if args.extra_train_sentences and len(extra) < args.extra_train_sentences:
        print(f"only {len(extra)} usable sentences for --extra-train-sentences")
    write_lm_text(everything, parts, args.out)
    jobs = plan_utterances(parts, train_voices, args)
    timing, errors = synthesize_all(jobs, args)
    for uid, err in errors:
        print("FAILED", uid, err)
    ok, med, outliers = rate_outliers(jobs)
    for j in outliers:
        print(
            "rate outlier: {} {:.2f}s {:.1f} chars/s: {}".format(
                j["id"], j["duration"], j["cps"], j["text"][:60]
            )
        )

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
    write_manifests(ok, args, stats)
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
        try:
            stats["pocketsphinx_test"] = prepare_pocketsphinx(args.work, args.out)
        except DebianError as e:
            sys.exit(f"ERROR: {e}")
        print(
            f"pocketsphinx_test: {stats['pocketsphinx_test']['utterances']} utts, "
            f"{stats['pocketsphinx_test']['minutes']:.2f} min"
        )
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    print("wrote manifests and stats.json to", args.out)


if __name__ == "__main__":
    main()
