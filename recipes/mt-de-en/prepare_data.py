#!/usr/bin/env python3
"""Build a X<->English parallel corpus from Debian packages (standard library only).

Sources (Debian binary packages, fetched and unpacked by ../common/debian.py, read
by corpus_sources.py):

  help  LibreOffice offline help (libreoffice-help-en-us + libreoffice-help-<xx>),
        paragraphs joined on (page, element id).                      MPL-2.0
  ui    LibreOffice UI strings (libreoffice-l10n-<xx>, gettext .mo catalogues),
        English msgid -> translated msgstr.                           MPL-2.0
  ding  Ding German-English dictionary (trans-de-en), whole example
        sentences only; used only for the de<->en pair.               GPL-2+

Usage:
  python prepare_data.py --src de --tgt en --work WORKDIR --out DATADIR [--sample DIR]

Every step is resumable: downloaded .deb files, extracted packages and the
per-source extraction caches under WORKDIR are reused when present.
Outputs: DATADIR/{train,valid,test}.{src,tgt}, DATADIR/{split}.meta.tsv
(source and document of each line) and DATADIR/stats.json.
See DATA.md next to this script for the rules and caveats.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata
from collections import Counter, OrderedDict, defaultdict

from corpus_sources import WS, clean_ui, extract_ding, extract_help, extract_ui, log

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import (  # noqa: E402  (recipes/ is on the path only now)
    DebianError,
    deb_version,
    download,
    extract,
    find_deb,
)

SEED = "s2s-mt-v1"
SPLITS = ("train", "valid", "test")
SOURCES = ("help", "ui", "ding")

# Held-out sizes (pairs, after cleaning and de-duplication), per source.
HELDOUT_TARGET = {"help": 1200, "ding": 200, "ui": 0}

MAX_WORDS = 200  # drop pairs longer than this (either side)
MAX_RATIO = 3.0  # drop pairs whose character-length ratio exceeds this ...
RATIO_MIN_CHARS = 15  # ... when the longer side has at least this many chars


def stable_hash(*parts: str, split_seed: int = 0) -> int:
    """The document order of the split. split_seed 0 is the recipe's split; any
    other number draws another one from the same sources (a second held-out
    sample, to check that a choice made on one split holds on another)."""
    seed = SEED if not split_seed else f"{SEED}-split{split_seed}"
    h = hashlib.sha256("\x1f".join((seed,) + parts).encode("utf-8")).hexdigest()
    return int(h[:16], 16)


# --------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------

# Any tag-like text in help paragraphs (after parsing) is literal HTML/XML
# example code; in UI strings "<None>" etc. are real placeholders, so there
# only real HTML tags count. Character references must all be resolved.
TAG_RESIDUE = re.compile(r"</?[a-zA-Z][^<>]*>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
HTML_RESIDUE = re.compile(
    r"</?(a|b|i|u|p|br|span|div|em|strong|sub|sup|tt|big|small|font|html|body)\b[^<>]*>"
    r"|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);",
    re.IGNORECASE,
)
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def normalize(s: str, collapse_newlines: bool) -> str | None:
    """NFC, strip, collapse whitespace. Returns None for texts with a tab or
    newline when those are significant (UI strings, Ding)."""
    s = unicodedata.normalize("NFC", s)
    s = ZERO_WIDTH.sub("", s).replace("\u00a0", " ").replace("\u202f", " ")
    s = s.strip()
    if not collapse_newlines and ("\t" in s or "\n" in s or "\r" in s):
        return None
    return WS.sub(" ", s)


def clean_pair(source: str, rec: dict) -> tuple[str | None, str | None, str | None]:
    """Return (xx, en, None) or (None, None, drop_reason)."""
    en, xx = rec["en"], rec["xx"]
    if source == "ui":
        en, xx = clean_ui(en, xx, rec["id"])
    collapse = source == "help"  # whitespace in HTML is markup, not content
    en_n, xx_n = normalize(en, collapse), normalize(xx, collapse)
    if en_n is None or xx_n is None:
        return None, None, "tab_or_newline"
    en, xx = en_n, xx_n
    if not en or not xx:
        return None, None, "empty"
    residue = TAG_RESIDUE if source == "help" else HTML_RESIDUE
    if residue.search(en) or residue.search(xx):
        return None, None, "markup_residue"
    ne, nx = len(en.split()), len(xx.split())
    if ne > MAX_WORDS or nx > MAX_WORDS:
        return None, None, "too_long"
    le, lx = len(en), len(xx)
    if max(le, lx) >= RATIO_MIN_CHARS and max(le, lx) > MAX_RATIO * min(le, lx):
        return None, None, "length_ratio"
    if en == xx and ne >= 4:
        return None, None, "untranslated"
    if not re.search(r"[^\W\d_]", en) or not re.search(r"[^\W\d_]", xx):
        return None, None, "no_letters"
    return xx, en, None


# --------------------------------------------------------------------------
# Splitting, writing, the steps of main
# --------------------------------------------------------------------------


def cached(work: str, name: str, key: str, fn):
    path = os.path.join(work, "cache", name + ".json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("key") == key:
            log(f"  using cache {path}")
            return data["records"], Counter(data["drops"])
    records, drops = fn()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(
            {"key": key, "records": records, "drops": drops}, f, ensure_ascii=False
        )
    os.replace(tmp, path)
    return records, drops


def split_pairs(pairs: list[dict], stats: dict, split_seed: int = 0):
    """Split by whole documents.

    For each source, documents are visited in seeded-hash order and assigned
    to test, then valid, until each split holds HELDOUT_TARGET[source] unique
    pairs. Documents with more than 3/4 of the target are never held out.
    Within a split exact duplicate pairs are removed; valid loses pairs whose
    source or target sentence occurs in test, train loses pairs whose source or
    target sentence occurs in valid or test."""
    by_doc = defaultdict(list)
    for p in pairs:
        by_doc[(p["source"], p["doc"])].append(p)
    final = {s: [] for s in SPLITS}
    split_drops = {s: Counter() for s in SPLITS}
    seen = {s: set() for s in SPLITS}
    blocked_src, blocked_tgt = set(), set()
    assign = {}

    def add(p, split):
        k = (p["src"], p["tgt"])
        drops = stats["sources"][p["source"]]["dropped"]
        if k in seen[split]:
            split_drops[split]["duplicate"] += 1
            drops["duplicate_in_" + split] += 1
            return
        seen[split].add(k)
        if p["src"] in blocked_src or p["tgt"] in blocked_tgt:
            reason = "overlaps_test" if split == "valid" else "overlaps_valid_or_test"
            split_drops[split][reason] += 1
            drops[reason] += 1
            return
        final[split].append(p)

    sources = list(OrderedDict.fromkeys(p["source"] for p in pairs))
    for split in ("test", "valid"):
        for source in sources:
            target = HELDOUT_TARGET.get(source, 0)
            docs = sorted(
                (d for (so, d) in by_doc if so == source and (so, d) not in assign),
                key=lambda d: stable_hash(source, d, split_seed=split_seed),
            )
            n0 = len(final[split])
            for d in docs:
                if len(final[split]) - n0 >= target:
                    break
                if len(by_doc[(source, d)]) > 0.75 * target:
                    continue
                assign[(source, d)] = split
                for p in by_doc[(source, d)]:
                    add(p, split)
        blocked_src.update(p["src"] for p in final[split])
        blocked_tgt.update(p["tgt"] for p in final[split])
    for p in pairs:
        if (p["source"], p["doc"]) not in assign:
            add(p, "train")
    return final, split_drops, assign


def write_lines(path: str, lines: list[str]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for s in lines:
            f.write(s + "\n")
    os.replace(tmp, path)


def make_sample(splits: dict, sample_dir: str, src: str, tgt: str, sizes: dict) -> dict:
    os.makedirs(sample_dir, exist_ok=True)
    counts = {}
    for split, n in sizes.items():
        cands = []
        for p in splits[split]:
            if p["source"] not in ("help", "ding"):
                continue
            if not all(4 <= len(p[k].split()) <= 30 for k in ("src", "tgt")):
                continue
            cands.append(p)
        cands.sort(key=lambda p: stable_hash("sample", split, p["src"], p["tgt"]))
        chosen = cands[:n]
        write_lines(
            os.path.join(sample_dir, f"{split}.{src}"), [p["src"] for p in chosen]
        )
        write_lines(
            os.path.join(sample_dir, f"{split}.{tgt}"), [p["tgt"] for p in chosen]
        )
        # per-line provenance (source, document): needed to honour each line's licence
        write_lines(
            os.path.join(sample_dir, f"{split}.meta.tsv"),
            ["{}\t{}".format(p["source"], p["doc"]) for p in chosen],
        )
        counts[split] = dict(Counter(p["source"] for p in chosen), total=len(chosen))
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked; adds src, tgt, xx (the non-English side),
    wanted (sources to read) and notes (why a source was skipped)."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--src", required=True, help="source language (e.g. de, fr, es, or en)"
    )
    ap.add_argument(
        "--tgt", required=True, help="target language (one of src/tgt must be en)"
    )
    ap.add_argument(
        "--work", required=True, help="work directory (downloads, extraction, caches)"
    )
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument(
        "--sources",
        default="help,ui,ding",
        help="comma-separated subset of help,ui,ding",
    )
    ap.add_argument(
        "--sample", metavar="DIR", help="also write a small sample corpus to DIR"
    )
    ap.add_argument(
        "--sample-sizes",
        default="3000,200,200",
        help="train,valid,test sizes of the sample",
    )
    ap.add_argument(
        "--split-seed",
        type=int,
        default=0,
        metavar="N",
        help="0 (default): the recipe's train/valid/test split; another number: "
        "another split of the same documents (DATA.md)",
    )
    ap.add_argument(
        "--refresh-lists",
        action="store_true",
        help="re-run apt-get update into WORK/lists",
    )
    args = ap.parse_args(argv)

    src, tgt = args.src.lower(), args.tgt.lower()
    if "en" not in (src, tgt) or src == tgt:
        ap.error("one of --src/--tgt must be 'en' and the other a different language")
    xx = tgt if src == "en" else src
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z]{2,4})?", xx):
        ap.error(f"bad language code {xx!r}")
    wanted = [s.strip() for s in args.sources.split(",") if s.strip()]
    for s in wanted:
        if s not in SOURCES:
            ap.error(f"unknown source {s!r}")
    notes = []
    if "ding" in wanted and xx != "de":
        notes.append(
            "source 'ding' skipped: the Ding dictionary exists only for German-English"
        )
        wanted.remove("ding")
    args.src, args.tgt, args.xx, args.wanted, args.notes = src, tgt, xx, wanted, notes
    return args


def source_packages(wanted: list[str], xx: str) -> OrderedDict[str, list[str]]:
    """The Debian packages each wanted source is read from."""
    pkgs = OrderedDict()
    if "help" in wanted:
        pkgs["help"] = ["libreoffice-help-en-us", "libreoffice-help-" + xx]
    if "ui" in wanted:
        pkgs["ui"] = ["libreoffice-l10n-" + xx]
    if "ding" in wanted:
        pkgs["ding"] = ["trans-de-en"]
    return pkgs


def read_sources(
    pkgs: OrderedDict[str, list[str]], dirs: dict[str, str], work: str, xx: str
) -> dict[str, tuple[list[dict], Counter]]:
    """Each source's (records, drops), from WORK/cache when its .debs are the same."""
    debdir = os.path.join(work, "debs")
    raw = {}
    for source, ps in pkgs.items():
        key = json.dumps([os.path.basename(find_deb(debdir, p)) for p in ps] + [xx, 3])
        if source == "help":

            def fn(ps=ps):
                return extract_help(dirs[ps[0]], dirs[ps[1]])
        elif source == "ui":

            def fn(ps=ps):
                return extract_ui(dirs[ps[0]])
        else:

            def fn(ps=ps):
                return extract_ding(dirs[ps[0]])

        log(f"  {source}")
        raw[source] = cached(work, f"{source}-{xx}", key, fn)
    return raw


def clean_all(
    raw: dict[str, tuple[list[dict], Counter]], src: str, stats: OrderedDict
) -> list[dict]:
    """Cleaned pairs (dicts: source, doc, src, tgt); per-source counts into stats."""
    pairs = []
    for source, (records, drops) in raw.items():
        st = OrderedDict(extracted=len(records), dropped=Counter(drops))
        for rec in records:
            xx_t, en_t, why = clean_pair(source, rec)
            if why:
                st["dropped"][why] += 1
                continue
            s, t = (en_t, xx_t) if src == "en" else (xx_t, en_t)
            pairs.append({"source": source, "doc": rec["doc"], "src": s, "tgt": t})
        stats["sources"][source] = st
    return pairs


def count_kept(
    stats: OrderedDict,
    final: dict[str, list[dict]],
    split_drops: dict[str, Counter],
    assign: dict[tuple[str, str], str],
    tgt: str,
) -> None:
    """Add what each split kept, per source, and the held-out documents to stats."""
    for source, st in stats["sources"].items():
        st["kept"] = OrderedDict(
            (s, sum(1 for p in final[s] if p["source"] == source)) for s in SPLITS
        )
        st["kept"]["total"] = sum(st["kept"][s] for s in SPLITS)
        st["kept_5plus_en_words"] = sum(
            1
            for s in SPLITS
            for p in final[s]
            if p["source"] == source
            and len(p["tgt" if tgt == "en" else "src"].split()) >= 5
        )
        st["heldout_documents"] = OrderedDict(
            (s, sorted(d for (so, d), sp in assign.items() if so == source and sp == s))
            for s in ("valid", "test")
        )
        st["dropped"] = OrderedDict(sorted(st["dropped"].items()))
    stats["splits"] = OrderedDict(
        (
            s,
            OrderedDict(
                pairs=len(final[s]),
                by_source=dict(Counter(p["source"] for p in final[s])),
                dropped=dict(split_drops[s]),
            ),
        )
        for s in SPLITS
    )


def print_summary(stats: dict) -> None:
    pk = ", ".join(f"{p} {v}" for p, v in stats["packages"].items())
    print("\nPackages: " + pk)
    for n in stats["notes"]:
        print("Note: " + n)
    hdr = "source extracted    train   valid    test      kept"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for source, st in stats["sources"].items():
        k = st["kept"]
        print(
            f"{source:<6} {st['extracted']:>9} {k['train']:>8} {k['valid']:>7} "
            f"{k['test']:>7} {k['total']:>9}"
        )
    tot = {s: stats["splits"][s]["pairs"] for s in SPLITS}
    print(
        f"{'total':<6} {'':>9} {tot['train']:>8} {tot['valid']:>7} "
        f"{tot['test']:>7} {sum(tot.values()):>9}"
    )
    print("\nDropped (source: reason=count)")
    for source, st in stats["sources"].items():
        reasons = ", ".join(f"{r}={n}" for r, n in st["dropped"].items())
        print(f"  {source:<5} {reasons}")
    if "sample" in stats:
        counts = json.dumps(stats["sample"]["counts"])
        print(f"\nSample in {stats['sample']['dir']}: {counts}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src, tgt, xx = args.src, args.tgt, args.xx
    work, out = os.path.abspath(args.work), os.path.abspath(args.out)
    os.makedirs(work, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    pkgs = source_packages(args.wanted, xx)
    allpkgs = list(OrderedDict.fromkeys(p for ps in pkgs.values() for p in ps))

    log("[1/4] downloading {}".format(", ".join(allpkgs)))
    try:
        download(allpkgs, work, args.refresh_lists)
        debdir = os.path.join(work, "debs")
        versions = OrderedDict((p, deb_version(find_deb(debdir, p))) for p in allpkgs)
        log("[2/4] extracting")
        dirs = {p: extract(p, work) for p in allpkgs}
    except DebianError as e:
        log(f"ERROR: {e}")
        return 2

    log("[3/4] reading sources")
    raw = read_sources(pkgs, dirs, work, xx)

    log("[4/4] cleaning and splitting")
    stats = OrderedDict()
    stats["command"] = "python prepare_data.py " + " ".join(
        a if not os.path.isabs(a) else os.path.relpath(a)
        for a in (argv if argv is not None else sys.argv[1:])
    )
    stats["languages"] = {"src": src, "tgt": tgt}
    stats["packages"] = versions
    stats["notes"] = args.notes
    stats["sources"] = OrderedDict()
    pairs = clean_all(raw, src, stats)
    final, split_drops, assign = split_pairs(pairs, stats, args.split_seed)
    for split in SPLITS:
        write_lines(
            os.path.join(out, f"{split}.{src}"), [p["src"] for p in final[split]]
        )
        write_lines(
            os.path.join(out, f"{split}.{tgt}"), [p["tgt"] for p in final[split]]
        )
        write_lines(
            os.path.join(out, f"{split}.meta.tsv"),
            ["{}\t{}".format(p["source"], p["doc"]) for p in final[split]],
        )
    count_kept(stats, final, split_drops, assign, tgt)
    if args.sample:
        sizes = dict(
            zip(SPLITS, (int(x) for x in args.sample_sizes.split(",")), strict=False)
        )
        stats["sample"] = {
            "dir": os.path.relpath(os.path.abspath(args.sample)),
            "counts": make_sample(final, args.sample, src, tgt, sizes),
        }
    with open(os.path.join(out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print_summary(stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
