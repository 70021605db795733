#!/usr/bin/env python3
"""Prepare a Czech ASR corpus from the game Fish Fillets NG (Debian packages).

Audio:       fillets-ng-data-cs  usr/share/games/fillets-ng/sound/<level>/cs/<id>.ogg
Transcripts: fillets-ng-data
             usr/share/games/fillets-ng/script/<level>/*dialogs_cs.lua
             as   dialogId("<id>", "<font>", "<English subtitle>")
                  dialogStr("<Czech subtitle>")

The game's own loader (script/share/level_dialog.lua) pairs the Czech
dialogStr(...) following a dialogId(...) with sound/<prefix>/cs/<id>.ogg, where
<prefix> is sound/<level>/ except for the shared dialog files listed in
SHARED_SCRIPTS below.  The Lua files are tokenised with a small Lua lexer
(short strings with escapes, long [[...]] strings, comments, `..`
concatenation), not with regular expressions.

Usage:  python prepare_data.py --work work --out data [--wav16k]

Writes data/{train,valid,test}.tsv  (id, path, duration, text, raw_text, level,
speaker), data/all.tsv, data/stats.json.  path points at the original Ogg
files under work/ (relative to data/), or with --wav16k at 16 kHz mono WAV
copies in data/audio/.  The split is by level (no level in two
splits), deterministic, about 80/10/10 of the utterances.  Resumable: the .deb
downloads and their extraction (recipes/common/debian.py) are skipped
when already done.

Text normalisation (column `text`; `raw_text` keeps the subtitle as written):
  Unicode NFC, lowercase; "&" -> " a "; every character that is not a letter
  (Czech diacritics kept), a digit or an apostrophe becomes a space; apostrophes
  not between two letters are dropped; whitespace collapsed.  Digits are kept
  as digits (there are only a handful; see stats.json `utts_with_digits`).
"""

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata

from lua_dialogs import parse_dialog_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import DebianError, fetch  # noqa: E402  (recipes/ is on the path now)

# The transcripts are in the first package, the Czech audio in the second.
PACKAGES = ["fillets-ng-data", "fillets-ng-data-cs"]
GAME_DIR = os.path.join("usr", "share", "games", "fillets-ng")


# script/share/<prefix>dialogs_cs.lua -> sound/share/<dir>/cs (from the
# dialogLoad(...) calls in script/share/*.lua)
SHARED_SCRIPTS = {
    "bore_": "share/borejokes",
    "black_": "share/blackjokes",
    "border_": "share/border",
    "shout_": "share/border",
    "intro_": "share/intro",
}

SPLIT_FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))


# --------------------------------------------------------------------------
# pairing transcripts with audio


def collect(script_dir, sound_dir):
    """Pair every dialog id with its Czech text and audio file."""
    texts = {}  # (sound_prefix, id) -> (czech, english, script file)
    warnings = []
    n_dialog_ids = 0
    empty_text = []
    dup_ids = []
    for level in sorted(os.listdir(script_dir)):
        ldir = os.path.join(script_dir, level)
        if not os.path.isdir(ldir):
            continue
        for fn in sorted(os.listdir(ldir)):
            if not fn.endswith("dialogs_cs.lua"):
                continue
            prefix = fn[: -len("dialogs_cs.lua")]
            if level == "share":
                if prefix not in SHARED_SCRIPTS:
                    warnings.append("unknown shared dialog file " + fn)
                    continue
                sprefix = SHARED_SCRIPTS[prefix]
            else:
                sprefix = level
            entries, w = parse_dialog_file(os.path.join(ldir, fn))
            warnings.extend(w)
            for did, eng, cz, _line in entries:
                n_dialog_ids += 1
                rel = f"{level}/{fn}"
                if cz is None or not cz.strip():
                    empty_text.append(f"{rel}:{did}")
                    continue
                key = (sprefix, did)
                if key in texts:
                    dup_ids.append(f"{rel}:{did}")
                    if texts[key][0] != cz:
                        warnings.append("conflicting text for {}/{}".format(*key))
                    continue
                texts[key] = (cz, eng, rel)
    audio = {}
    for root, _dirs, files in os.walk(sound_dir):
        if os.path.basename(root) != "cs":
            continue
        sprefix = os.path.relpath(os.path.dirname(root), sound_dir).replace(os.sep, "/")
        for fn in files:
            if fn.endswith(".ogg"):
                audio[(sprefix, fn[:-4])] = os.path.join(root, fn)
    return (
        texts,
        audio,
        dict(
            n_dialog_ids=n_dialog_ids,
            empty_text=empty_text,
            duplicate_ids=dup_ids,
            warnings=warnings,
        ),
    )


def normalize(text):
    t = unicodedata.normalize("NFC", text).lower()
    t = t.replace("\u2019", "'").replace("`", "'").replace("&", " a ")
    t = "".join(ch if (ch.isalpha() or ch.isdigit() or ch == "'") else " " for ch in t)
    # keep apostrophes only inside words (e.g. o'clock); drop quote marks
    t = re.sub(r"(?<![^\W\d_])'|'(?![^\W\d_])", " ", t)
    return " ".join(t.split())


def guess_speaker(did):
    """Heuristic from the id naming convention: m = small fish (female
    voice), v = big fish (male voice), other = anyone else."""
    parts = did.split("-")
    for p in parts:
        if p in ("m", "v"):
            return p
    return "other"


def _is_latin(ch):
    return unicodedata.name(ch, "").startswith("LATIN")


# --------------------------------------------------------------------------
# audio


def soundfile_info(path):
    import soundfile

    info = soundfile.info(path)
    return info.frames / info.samplerate, info.samplerate, info.channels


def convert_wav16k(src, dst):
    """Decode Ogg, downmix to mono, resample to 16 kHz (FFT band-limited
    resampling of the whole clip; clips are <= 30 s), write 16-bit WAV."""
    import numpy as np
    import soundfile

    if os.path.exists(dst):
        info = soundfile.info(dst)
        return info.frames / info.samplerate
    x, sr = soundfile.read(src, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    n = len(x)
    m = int(round(n * 16000 / sr))
    y = np.fft.irfft(np.fft.rfft(x)[: m // 2 + 1], m) * (m / n)
    peak = np.abs(y).max()
    if peak > 0.999:
        y *= 0.999 / peak
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    soundfile.write(dst + ".part.wav", y, 16000, subtype="PCM_16")
    os.replace(dst + ".part.wav", dst)
    return m / 16000


# --------------------------------------------------------------------------
# splitting, writing, the steps of main


def split_levels(level_counts):
    """Deterministic level split with ~80/10/10 utterances.

    Levels are ordered by a hash of their name (stable pseudo-random order)
    and assigned greedily to the split that is furthest below its target.
    """
    total = sum(level_counts.values())
    order = sorted(level_counts, key=lambda lv: hashlib.sha1(lv.encode()).hexdigest())
    assigned = {name: 0 for name, _ in SPLIT_FRACTIONS}
    out = {}
    # valid/test first (small targets), then the rest goes to train
    for name, frac in SPLIT_FRACTIONS[1:]:
        target = frac * total
        for lvl in order:
            if lvl in out:
                continue
            c = level_counts[lvl]
            if (
                assigned[name] + c <= target * 1.1
                or assigned[name] == 0
                and c <= target * 1.5
            ):
                out[lvl] = name
                assigned[name] += c
            if assigned[name] >= target * 0.95:
                break
    for lvl in order:
        out.setdefault(lvl, "train")
    return out


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="work", help="download/extract directory")
    ap.add_argument("--out", default="data", help="output directory")
    ap.add_argument("--min-duration", type=float, default=0.3)
    ap.add_argument("--max-duration", type=float, default=30.0)
    ap.add_argument(
        "--drop-digits",
        action="store_true",
        help="drop the few utterances whose text contains digits "
        "(F1, LC-10, 3Dfx, ...) instead of keeping the digits",
    )
    ap.add_argument(
        "--wav16k",
        action="store_true",
        help="also write 16 kHz mono WAV copies to OUT/audio/ and point "
        "the manifests at them (default: the original Ogg files, "
        "22.05/44.1 kHz, some stereo)",
    )
    return ap.parse_args()


def make_rows(texts, audio, args):
    """One row per utterance with text and audio that passes the filters;
    returns (rows, dropped) with dropped a list of (id, reason)."""
    out_abs = os.path.abspath(args.out)
    rows = []
    dropped = []
    for key in sorted(k for k in audio if k in texts):
        sprefix, did = key
        cz, eng, rel = texts[key]
        path = audio[key]
        dur, sr, ch = soundfile_info(path)
        norm = normalize(cz)
        uid = "{}__{}".format(sprefix.replace("/", "-"), did)
        if not norm:
            dropped.append((uid, "empty after normalisation"))
            continue
        if re.search(r"%\d", cz):
            # "A%1." / "Konkrétně %1 hodin!": the number is a separate clip,
            # so what this clip says is uncertain
            dropped.append((uid, "placeholder %N in text"))
            continue
        if any(c.isalpha() and not _is_latin(c) for c in cz):
            # fdto/semafor-v has a Russian line glued to the Czech subtitle
            dropped.append((uid, "non-Latin script in text"))
            continue
        if args.drop_digits and re.search(r"\d", norm):
            dropped.append((uid, "digits in text"))
            continue
        if not args.min_duration <= dur <= args.max_duration:
            dropped.append((uid, f"duration {dur:.2f}"))
            continue
        speaker = guess_speaker(did)
        if args.wav16k:
            path = os.path.join(out_abs, "audio", uid + ".wav")
            dur = convert_wav16k(audio[key], path)
        rows.append(
            dict(
                id=uid,
                path=os.path.relpath(os.path.abspath(path), out_abs),
                duration=dur,
                text=norm,
                raw_text=" ".join(cz.split()),
                level=sprefix,
                speaker=speaker,
                sr=sr,
                channels=ch,
            )
        )
    return rows, dropped


def rate_outliers(rows):
    """Set each row's chars/s ("cps"); return the median and the rows beyond
    3x or 1/3 of it."""
    for r in rows:
        r["cps"] = len(r["text"]) / r["duration"]
    cps_sorted = sorted(r["cps"] for r in rows)
    med = cps_sorted[len(cps_sorted) // 2]
    outliers = [r for r in rows if r["cps"] > 3 * med or r["cps"] < med / 3]
    return med, outliers


def write_manifest(path, rows):
    cols = ["id", "path", "duration", "text", "raw_text", "level", "speaker"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            vals = [
                r["id"],
                r["path"],
                "{:.3f}".format(r["duration"]),
                r["text"],
                r["raw_text"],
                r["level"],
                r["speaker"],
            ]
            assert not any("\t" in v or "\n" in v for v in vals)
            f.write("\t".join(vals) + "\n")


def main():
    args = parse_args()
    try:
        packages = fetch(PACKAGES, args.work)
    except DebianError as e:
        sys.exit(f"ERROR: {e}")
    versions = {p: packages[p].version for p in PACKAGES}
    texts, audio, info = collect(
        os.path.join(packages["fillets-ng-data"].root, GAME_DIR, "script"),
        os.path.join(packages["fillets-ng-data-cs"].root, GAME_DIR, "sound"),
    )
    for w in info["warnings"]:
        print("WARNING:", w)

    audio_no_text = sorted("{}/{}".format(*k) for k in audio if k not in texts)
    text_no_audio = sorted("{}/{}".format(*k) for k in texts if k not in audio)
    print(
        f"dialog ids in dialogs_cs files: {info['n_dialog_ids']} "
        f"(empty Czech text: {len(info['empty_text'])}, "
        f"duplicates: {len(info['duplicate_ids'])})"
    )
    print(f"Czech audio files: {len(audio)}, ids with Czech text: {len(texts)}")
    print(f"audio without text: {len(audio_no_text)}  {audio_no_text[:20]}")
    print(f"text without audio: {len(text_no_audio)}  (first: {text_no_audio[:10]})")

    os.makedirs(args.out, exist_ok=True)
    rows, dropped = make_rows(texts, audio, args)
    for uid, why in dropped:
        print("dropped", uid, why)
    med, outliers = rate_outliers(rows)
    print(
        f"median chars/s {med:.1f}; {len(outliers)} outliers (cps <1/3 or >3x median):"
    )
    for r in sorted(outliers, key=lambda r: r["cps"]):
        print(
            f"  {r['id']:<45} {r['duration']:6.2f}s {r['cps']:5.1f} c/s  "
            f"{r['text'][:60]}"
        )

    level_counts = {}
    for r in rows:
        level_counts[r["level"]] = level_counts.get(r["level"], 0) + 1
    assign = split_levels(level_counts)

    stats = dict(
        packages=versions,
        normalisation=__doc__.split("Text normalisation")[1].strip(),
        dialog_ids=info["n_dialog_ids"],
        czech_audio_files=len(audio),
        ids_with_czech_text=len(texts),
        empty_czech_text=len(info["empty_text"]),
        duplicate_ids=len(info["duplicate_ids"]),
        audio_without_text=audio_no_text,
        text_without_audio_count=len(text_no_audio),
        text_without_audio=text_no_audio,
        dropped=dropped,
        sample_rates=sorted({r["sr"] for r in rows}),
        channels=sorted({r["channels"] for r in rows}),
        utts_per_sample_rate={
            str(k): sum(r["sr"] == k for r in rows)
            for k in sorted({r["sr"] for r in rows})
        },
        utts_per_channels={
            str(k): sum(r["channels"] == k for r in rows)
            for k in sorted({r["channels"] for r in rows})
        },
        utts_per_speaker={
            k: sum(r["speaker"] == k for r in rows) for k in ("m", "v", "other")
        },
        utts_with_digits=sum(bool(re.search(r"\d", r["text"])) for r in rows),
        median_chars_per_second=round(med, 2),
        cps_outliers=[r["id"] for r in outliers],
        splits={},
    )
    write_manifest(os.path.join(args.out, "all.tsv"), rows)
    print(f"{'split':<6} {'utts':>6} {'minutes':>8} {'levels':>6} {'words':>6}")
    for name, _ in SPLIT_FRACTIONS:
        rs = [r for r in rows if assign[r["level"]] == name]
        write_manifest(os.path.join(args.out, name + ".tsv"), rs)
        levels = sorted({r["level"] for r in rs})
        mins = sum(r["duration"] for r in rs) / 60
        words = sum(len(r["text"].split()) for r in rs)
        print(f"{name:<6} {len(rs):6d} {mins:8.1f} {len(levels):6d} {words:6d}")
        stats["splits"][name] = dict(
            utterances=len(rs),
            minutes=round(mins, 2),
            hours=round(mins / 60, 3),
            words=words,
            levels=levels,
        )
    tot = sum(r["duration"] for r in rows) / 60
    stats["total"] = dict(
        utterances=len(rows), minutes=round(tot, 2), levels=len(level_counts)
    )
    print(f"{'total':<6} {len(rows):6d} {tot:8.1f} {len(level_counts):6d}")
    for name, _ in SPLIT_FRACTIONS:
        assert not (
            set(stats["splits"][name]["levels"])
            & set().union(
                *(stats["splits"][o]["levels"] for o, _ in SPLIT_FRACTIONS if o != name)
            )
        )
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, ensure_ascii=False, indent=1)
    print(
        "wrote",
        ", ".join(
            os.path.join(args.out, n + ".tsv")
            for n in ["train", "valid", "test", "all"]
        ),
        "and stats.json",
    )


if __name__ == "__main__":
    main()
