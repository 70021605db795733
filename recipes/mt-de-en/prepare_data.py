#!/usr/bin/env python3
"""Build a X<->English parallel corpus from Debian packages (standard library only).

Sources (all taken from Debian binary packages, fetched with ``apt-get download``):

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
import gettext
import glob
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections import Counter, OrderedDict, defaultdict

SEED = "s2s-mt-v1"
SPLITS = ("train", "valid", "test")
SOURCES = ("help", "ui", "ding")

# Held-out sizes (pairs, after cleaning and de-duplication), per source.
HELDOUT_TARGET = {"help": 1200, "ding": 200, "ui": 0}
DING_BLOCK = 100  # Ding "documents" are blocks of 100 consecutive lines.

MAX_WORDS = 200  # drop pairs longer than this (either side)
MAX_RATIO = 3.0  # drop pairs whose character-length ratio exceeds this ...
RATIO_MIN_CHARS = 15  # ... when the longer side has at least this many chars


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stable_hash(*parts: str) -> int:
    h = hashlib.sha256("\x1f".join((SEED,) + parts).encode("utf-8")).hexdigest()
    return int(h[:16], 16)


# --------------------------------------------------------------------------
# Downloading and extracting Debian packages
# --------------------------------------------------------------------------


class AptError(RuntimeError):
    pass


def find_deb(debdir: str, pkg: str) -> str | None:
    hits = sorted(glob.glob(os.path.join(debdir, glob.escape(pkg) + "_*.deb")))
    return hits[-1] if hits else None


def _apt(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    log("  $ " + " ".join(args))
    return subprocess.run(args, cwd=cwd, text=True, capture_output=True)


def _lists_present(listdir: str) -> bool:
    return bool(glob.glob(os.path.join(listdir, "*_Packages*")))


def apt_download(pkgs: list[str], work: str, refresh_lists: bool = False) -> None:
    """Download the .deb files of `pkgs` into WORK/debs (skip those present).

    Package lists: a private lists directory WORK/lists is preferred (created
    with ``apt-get update`` into it, which needs no root and leaves the system
    lists alone); if that fails, the system lists are used.
    """
    debdir = os.path.join(work, "debs")
    os.makedirs(debdir, exist_ok=True)
    missing = [p for p in pkgs if not find_deb(debdir, p)]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise AptError(
            "apt-get not found: this recipe needs a Debian/Ubuntu system "
            "(or place the .deb files of {} into {} by hand).".format(
                ", ".join(missing), debdir
            )
        )
    listdir = os.path.abspath(os.path.join(work, "lists"))
    cachedir = os.path.abspath(os.path.join(work, "aptcache"))
    private = ["-o", "Dir::State::Lists=" + listdir, "-o", "Dir::Cache=" + cachedir]
    attempts = []
    if refresh_lists or not _lists_present(listdir):
        os.makedirs(os.path.join(listdir, "partial"), exist_ok=True)
        os.makedirs(os.path.join(cachedir, "archives", "partial"), exist_ok=True)
        r = _apt(["apt-get", "-q"] + private + ["update"], cwd=work)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            log(
                f"  private 'apt-get update' failed ({last}); "
                "falling back to the system package lists"
            )
    if _lists_present(listdir):
        attempts.append(("private lists " + listdir, private))
    attempts.append(("system lists", []))
    errors = []
    for what, opts in attempts:
        todo = [p for p in pkgs if not find_deb(debdir, p)]
        if not todo:
            break
        r = _apt(["apt-get", "-q"] + opts + ["download"] + todo, cwd=debdir)
        if r.returncode == 0:
            break
        errors.append(f"{what}: {r.stderr.strip()}")
    todo = [p for p in pkgs if not find_deb(debdir, p)]
    if todo:
        msg = "\n".join(errors)
        hint = ""
        if re.search(
            r"Unable to locate package|has no installation candidate|No packages found",
            msg,
        ):
            hint = (
                "\nThe package lists do not know these packages. "
                "Run `sudo apt-get update` (or check that the packages exist "
                "for your release: {}).".format(", ".join(todo))
            )
        raise AptError("could not download {}\n{}{}".format(", ".join(todo), msg, hint))
    # partial downloads and apt's cache are not needed anymore
    for p in glob.glob(os.path.join(debdir, "*.FAILED")):
        os.remove(p)


def deb_version(deb: str) -> str:
    r = subprocess.run(
        ["dpkg-deb", "-f", deb, "Version"], text=True, capture_output=True
    )
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip()
    # fall back to the file name: pkg_version_arch.deb (epoch ':' is '%3a')
    return os.path.basename(deb).split("_")[1].replace("%3a", ":")


def extract(pkg: str, work: str) -> str:
    """Extract WORK/debs/<pkg>_*.deb into WORK/extract/<pkg>/ (once)."""
    deb = find_deb(os.path.join(work, "debs"), pkg)
    if deb is None:
        raise AptError("no .deb for {} in {}".format(pkg, os.path.join(work, "debs")))
    dest = os.path.join(work, "extract", pkg)
    stamp = os.path.join(dest, ".extracted-from")
    if os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as f:
            done = f.read().strip() == os.path.basename(deb)
    else:
        done = False
    if done:
        return dest
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    log(f"  extracting {os.path.basename(deb)}")
    subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(os.path.basename(deb) + "\n")
    return dest


# --------------------------------------------------------------------------
# Source A: LibreOffice help (HTML)
# --------------------------------------------------------------------------

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
}
BLOCK = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "table",
    "tr",
    "td",
    "th",
    "pre",
    "br",
    "section",
}
TEXT_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
# Content of a paragraph with one of these inside is not a sentence.
COMPLEX = {"table", "ul", "ol", "pre", "code"}


class Node:
    __slots__ = ("tag", "attrs", "children")

    def __init__(self, tag, attrs):
        self.tag = tag
        self.attrs = attrs
        self.children = []


class TreeBuilder(html.parser.HTMLParser):
    """Tiny DOM builder; the help pages are generated and well formed."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v or "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: (v or "") for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def choose_case(switch: Node) -> Node | None:
    """Pick one variant of a <span class="switch(inline)">.

    The cases are hidden spans with ids "MAC...", "WIN...", "UNIX...", "WRITER...",
    ... and "default...". We take the default (non-Mac, application-neutral) one;
    without a default the UNIX one, else the first case. Both languages are
    generated from the same source, so the choice is consistent."""
    cases = [c for c in switch.children if isinstance(c, Node)]
    if not cases:
        return None
    for c in cases:
        if c.attrs.get("id", "").startswith("default"):
            return c
    for c in cases:
        if c.attrs.get("class", "") == "UNIX":
            return c
    return cases[0]


def node_text(node: Node, out: list, flags: set) -> None:
    for c in node.children:
        if isinstance(c, str):
            out.append(c)
            continue
        tag = c.tag
        if tag in ("script", "style", "img", "meta", "link", "input", "button"):
            continue
        if tag in COMPLEX:
            flags.add("complex")
        cls = c.attrs.get("class", "")
        if tag == "span" and cls in ("switchinline", "switch"):
            chosen = choose_case(c)
            if chosen is not None:
                node_text(chosen, out, flags)
            continue
        if tag in BLOCK:
            out.append(" ")
        node_text(c, out, flags)
        if tag in BLOCK:
            out.append(" ")


def page_paragraphs(path: str) -> OrderedDict[str, tuple[str, set]]:
    """Map element key -> (text, flags) for all p/h* elements with an id.

    Ids can occur several times in a page (block switches repeat a paragraph
    for each platform, embedded sections); the n-th occurrence gets key
    'id#n'."""
    tb = TreeBuilder()
    with open(path, encoding="utf-8", errors="replace") as f:
        tb.feed(f.read())
    tb.close()
    res = OrderedDict()
    seen = Counter()

    def walk(node: Node):
        for c in node.children:
            if not isinstance(c, Node):
                continue
            ident = c.attrs.get("id", "")
            if c.tag in TEXT_TAGS and ident and not ident.startswith("bm_"):
                seen[ident] += 1
                key = ident if seen[ident] == 1 else f"{ident}#{seen[ident]}"
                out, flags = [], set()
                node_text(c, out, flags)
                res[key] = ("".join(out), flags)
            # also descend (a paragraph never contains another one here, but
            # block switches and divs do)
            walk(c)

    walk(tb.root)
    return res


def help_root(extract_dir: str) -> str:
    base = os.path.join(extract_dir, "usr", "share", "libreoffice", "help")
    langs = [
        d
        for d in sorted(os.listdir(base))
        if d != "media" and os.path.isdir(os.path.join(base, d, "text"))
    ]
    if len(langs) != 1:
        raise RuntimeError(
            f"expected one help language directory in {base}, found {langs}"
        )
    return os.path.join(base, langs[0])


def extract_help(en_dir: str, xx_dir: str) -> tuple[list[dict], Counter]:
    en_root, xx_root = help_root(en_dir), help_root(xx_dir)
    drops = Counter()
    records = []
    pages = sorted(
        os.path.relpath(p, en_root)
        for p in glob.glob(
            os.path.join(en_root, "text", "**", "*.html"), recursive=True
        )
    )
    for i, rel in enumerate(pages):
        if i % 500 == 0:
            log(f"  help pages {i}/{len(pages)}")
        xx_path = os.path.join(xx_root, rel)
        en = page_paragraphs(os.path.join(en_root, rel))
        if not os.path.exists(xx_path):
            drops["help_page_missing"] += len(en)
            continue
        xx = page_paragraphs(xx_path)
        for key, (en_text, en_flags) in en.items():
            if key not in xx:
                drops["id_unmatched"] += 1
                continue
            xx_text, xx_flags = xx[key]
            if en_flags or xx_flags:
                drops["complex_markup"] += 1
                continue
            records.append({"doc": rel, "id": key, "en": en_text, "xx": xx_text})
        drops["id_unmatched"] += sum(1 for k in xx if k not in en)
    return records, drops


# --------------------------------------------------------------------------
# Source B: LibreOffice UI strings (gettext .mo)
# --------------------------------------------------------------------------


def extract_ui(l10n_dir: str) -> tuple[list[dict], Counter]:
    base = os.path.join(l10n_dir, "usr", "lib", "libreoffice", "program", "resource")
    langs = sorted(os.listdir(base))
    if len(langs) != 1:
        raise RuntimeError(f"expected one language in {base}, found {langs}")
    drops = Counter()
    records = []
    for mo in sorted(glob.glob(os.path.join(base, langs[0], "LC_MESSAGES", "*.mo"))):
        with open(mo, "rb") as f:
            cat = gettext.GNUTranslations(f)._catalog
        name = os.path.basename(mo)
        for key, msgstr in cat.items():
            if isinstance(key, tuple):  # plural forms
                drops["plural"] += 1
                continue
            if key == "":  # header
                continue
            ctx, _, msgid = key.rpartition("\x04")
            if not msgstr:
                drops["empty"] += 1
                continue
            records.append({"doc": name, "id": ctx, "en": msgid, "xx": msgstr})
    return records, drops


TILDE = re.compile(r"(?<!~)~(?!~)")
UNDERSCORE_WORD = re.compile(r"\S*_\S*")


def _drop_underscore(s: str, other: str, ui_context: bool) -> str:
    """Remove a GTK-style mnemonic underscore ("_Delete", "H_inzufügen").

    Only a single '_' is treated as a mnemonic. In .ui dialog strings (context
    "dialog|widget") and stock button labels it always is one; elsewhere only
    when the word holding it does not recur in the other language (identifiers
    such as %AVERAGE_VALUE or OPT_BARRIER appear on both sides)."""
    if s.count("_") != 1:
        return s
    word = UNDERSCORE_WORD.search(s).group(0)
    if not ui_context and word in other:
        return s
    return s.replace("_", "", 1)


def clean_ui(en: str, xx: str, ctx: str) -> tuple[str, str]:
    # '~' marks the accelerator in resource strings ("~Delete"); '~~' is kept
    # (literal in Math options). '_' marks it in .ui dialog strings.
    en, xx = TILDE.sub("", en), TILDE.sub("", xx)
    ui_context = "|" in ctx or ctx == "stock"
    en, xx = _drop_underscore(en, xx, ui_context), _drop_underscore(xx, en, ui_context)
    return en, xx


# --------------------------------------------------------------------------
# Source C: Ding dictionary (trans-de-en)
# --------------------------------------------------------------------------

DING_ANNOT = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>)")
# sth./sb./jdn./etw. placeholders mark dictionary phrases, not sentences
DING_PLACEHOLDER = re.compile(
    r"(?<![\w.])(sth|sb|sb's|jdn|jdm|jds|etw|jd|jmd|jmdn|jmdm|s\.o|s\.th)\.",
    re.IGNORECASE,
)
SENT_END = re.compile(r"[.!?][\"'“”‘’»«]?$")
DING_MIN_WORDS = 3


def ding_side(seg: str) -> str:
    """First alternative of a Ding segment ("a; b"), annotations ({f}, [ugs.],
    <...>) removed, optional parts "(...)" unwrapped (brackets dropped, words kept)."""
    alt = seg.split(";")[0]
    alt = DING_ANNOT.sub("", alt)
    alt = re.sub(r"\(([^()]*)\)", r"\1", alt)
    return WS.sub(" ", alt).strip()


def is_sentence(s: str) -> bool:
    if not s or not SENT_END.search(s):
        return False
    first = s.lstrip("\"'„“‚‘»«¡¿")[:1]
    if not first or not (first.isupper() or first.isdigit()):
        return False
    if DING_PLACEHOLDER.search(s):
        return False
    # '/' marks alternatives ("pleased/thrilled") whose span is ambiguous
    if "..." in s or "…" in s or "/" in s or "(" in s or ")" in s:
        return False
    return len(s.split()) >= DING_MIN_WORDS


def extract_ding(ding_dir: str) -> tuple[list[dict], Counter]:
    path = os.path.join(ding_dir, "usr", "share", "trans", "de-en")
    drops = Counter()
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split(" :: ")
            if len(parts) != 2:
                drops["malformed_line"] += 1
                continue
            de_segs, en_segs = parts[0].split(" | "), parts[1].split(" | ")
            if len(de_segs) != len(en_segs):
                drops["segments_unaligned"] += 1
                continue
            for j, (d, e) in enumerate(zip(de_segs, en_segs, strict=False)):
                d2, e2 = ding_side(d), ding_side(e)
                if not (is_sentence(d2) and is_sentence(e2)):
                    drops["not_a_sentence"] += (
                        1  # the dictionary is mostly words/phrases
                    )
                    continue
                block = (lineno - 1) // DING_BLOCK * DING_BLOCK + 1
                records.append(
                    {
                        "doc": f"lines-{block:06d}",
                        "id": f"{lineno}.{j}",
                        "en": e2,
                        "xx": d2,
                    }
                )
    return records, drops


# --------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------

WS = re.compile(r"\s+")
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
# Main
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


def split_pairs(pairs: list[dict], stats: dict):
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
                key=lambda d: stable_hash(source, d),
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


def main(argv=None) -> int:
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

    work, out = os.path.abspath(args.work), os.path.abspath(args.out)
    os.makedirs(work, exist_ok=True)
    os.makedirs(out, exist_ok=True)

    pkgs = OrderedDict()
    if "help" in wanted:
        pkgs["help"] = ["libreoffice-help-en-us", "libreoffice-help-" + xx]
    if "ui" in wanted:
        pkgs["ui"] = ["libreoffice-l10n-" + xx]
    if "ding" in wanted:
        pkgs["ding"] = ["trans-de-en"]
    allpkgs = list(OrderedDict.fromkeys(p for ps in pkgs.values() for p in ps))

    log("[1/4] downloading {}".format(", ".join(allpkgs)))
    try:
        apt_download(allpkgs, work, args.refresh_lists)
    except AptError as e:
        log(f"ERROR: {e}")
        return 2
    debdir = os.path.join(work, "debs")
    versions = OrderedDict((p, deb_version(find_deb(debdir, p))) for p in allpkgs)
    log("[2/4] extracting")
    dirs = {p: extract(p, work) for p in allpkgs}

    log("[3/4] reading sources")
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

    log("[4/4] cleaning and splitting")
    stats = OrderedDict()
    stats["command"] = "python prepare_data.py " + " ".join(
        a if not os.path.isabs(a) else os.path.relpath(a)
        for a in (argv if argv is not None else sys.argv[1:])
    )
    stats["languages"] = {"src": src, "tgt": tgt}
    stats["packages"] = versions
    stats["notes"] = notes
    stats["sources"] = OrderedDict()
    pairs = []  # dicts: source, doc, src, tgt
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

    final, split_drops, assign = split_pairs(pairs, stats)

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


if __name__ == "__main__":
    sys.exit(main())
