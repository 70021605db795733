#!/usr/bin/env python3
"""Czech text for the LM of recipes/lm-cs, from Debian packages (bookworm).

Sources (DATA.md says why these): Czech fortunes, the Czech package
descriptions of the archive (its ``Translation-cs`` index, fetched by an
``apt-get update -o Acquire::Languages=cs`` into WORK/lists), the Czech help
of LibreOffice and aptitude (HTML; GIMP's with --sources), and the Czech
program messages of LibreOffice (.mo), Firefox ESR and Thunderbird
(.ftl/.properties in their language packs). Never the game's text
(fillets-ng-data*): the speech data's own transcripts must not leak into the LM.

Usage:  python prepare_text.py --work work --out data --asr-data ../asr-cs/data

Writes (atomically)
  OUT/extra.cs          one normalised sentence a line, deduplicated
  OUT/lexicon.cs        the hunspell-cs stems that fit the character set, in
                        code-point order
  OUT/forms.cs          every form of those stems by hunspell-cs's affix rules
                        (cases, persons, ne-/nej- ...), the same way
  OUT/extra.stats.json  packages and versions, lines and characters per source,
                        drops by reason, the characters that caused drops

A sentence is normalised exactly as the asr-cs transcripts (their
``normalize``: NFC, lower case, punctuation to spaces, whitespace collapsed)
after markup is stripped, then dropped (the first reason counts) if empty,
if it is a validation or test transcript of asr-cs (a leak), if it has digits
(--drop-digits), a character outside the asr-cs training transcripts' set,
fewer than --min-words words, no Czech letter with a diacritic (English and
code; 95% of the training transcripts of 3+ words have one), or if an earlier
source or line gave it already (a duplicate). Resumable: downloads and unpacking are
done once (recipes/common/debian.py).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import czech_text as ct  # noqa: E402  (this directory is on the path now)
from apt_index import (  # noqa: E402
    index_version,
    read_list_file,
    translation_files,
    update_translations,
)
from common.debian import DebianError, fetch  # noqa: E402

ASR_DIR = os.path.join(HERE, "..", "asr-cs")
CZECH_LETTER = re.compile("[áéíóúýčďěňřšťůž]")
LEXICON_PACKAGE = "hunspell-cs"
LEXICON_FILE = "usr/share/hunspell/cs_CZ.dic"
LEXICON_AFF = "usr/share/hunspell/cs_CZ.aff"

# name, package (None: the archive's Translation-cs index), reader, file glob.
# Earlier sources win duplicates, so the most speech-like text comes first.
SOURCES: list[tuple[str, str | None, str, str]] = [
    ("fortunes", "fortunes-cs", "fortune", "usr/share/games/fortunes/cs/*"),
    ("descriptions", None, "description", ""),
    (
        "aptitude-doc",
        "aptitude-doc-cs",
        "html",
        "usr/share/doc/aptitude/html/cs/*.html",
    ),
    ("gimp-help", "gimp-help-cs", "html", "usr/share/gimp/2.0/help/cs/**/*.html"),
    (
        "libreoffice-help",
        "libreoffice-help-cs",
        "html",
        "usr/share/libreoffice/help/cs/**/*.html",
    ),
    (
        "libreoffice-ui",
        "libreoffice-l10n-cs",
        "mo",
        "usr/lib/libreoffice/program/resource/cs/LC_MESSAGES/*.mo",
    ),
    (
        "firefox-ui",
        "firefox-esr-l10n-cs",
        "xpi",
        "usr/lib/firefox-esr/browser/extensions/*.xpi",
    ),
    (
        "thunderbird-ui",
        "thunderbird-l10n-cs",
        "xpi",
        "usr/lib/thunderbird/extensions/*.xpi",
    ),
]


# gimp-help-cs is 49 MB (mostly images) for 0.18M characters of kept text:
# only with --sources.
DEFAULT_SOURCES = [s[0] for s in SOURCES if s[0] != "gimp-help"]


def load_normalize(asr_dir: str = ASR_DIR) -> Callable[[str], str]:
    """The asr-cs transcripts' own `normalize` (prepare_data.py), not a copy."""
    sys.path.insert(0, asr_dir)  # prepare_data imports lua_dialogs from there
    path = os.path.join(asr_dir, "prepare_data.py")
    spec = importlib.util.spec_from_file_location("asr_cs_prepare_data", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.normalize


def read_texts(tsv: str) -> list[str]:
    """The `text` column of an asr-cs manifest (header line first)."""
    with open(tsv, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if "text" not in header:
            raise ValueError(f"{tsv}:1: no 'text' column in the header")
        col = header.index("text")
        return [line.rstrip("\n").split("\t")[col] for line in f if line.strip()]


class Filter:
    """Normalises sentences and keeps the clean, new, non-leaked ones.

    `counts[source]` gathers, per source, the segments read and the drops by
    reason; `outside` counts the characters that made sentences drop, `leaked`
    the validation and test lines found.
    """

    def __init__(
        self,
        normalize: Callable[[str], str],
        charset: set[str],
        leaks: set[str],
        min_words: int = 3,
        drop_digits: bool = False,
        need_czech_letter: bool = True,
    ) -> None:
        self.normalize = normalize
        self.charset = charset
        self.leaks = leaks
        self.min_words = min_words
        self.drop_digits = drop_digits
        self.need_czech_letter = need_czech_letter
        self.seen: set[str] = set()
        self.counts: dict[str, Counter[str]] = {}
        self.outside: Counter[str] = Counter()
        self.leaked: Counter[str] = Counter()

    def reason(self, line: str) -> str | None:
        """Why the normalised `line` is dropped, or None to keep it."""
        if not line:
            return "empty"
        if line in self.leaks:  # first, so that every leaked line is counted
            self.leaked[line] += 1
            return "leak"
        if self.drop_digits and re.search(r"\d", line):
            return "digits"
        bad = set(line) - self.charset
        if bad:
            self.outside.update(bad)
            return "characters"
        if len(line.split()) < self.min_words:
            return "short"
        if self.need_czech_letter and not CZECH_LETTER.search(line):
            return "no_czech_letter"
        if line in self.seen:
            return "duplicate"
        return None

    def __call__(self, source: str, segments: Iterable[str]) -> Iterator[str]:
        """The kept sentences of `segments`, in order."""
        c = self.counts.setdefault(source, Counter())
        for seg in segments:
            c["segments"] += 1
            for sentence in ct.split_sentences(ct.strip_markup(seg)):
                line = self.normalize(sentence)
                why = self.reason(line)
                if why is not None:
                    c["drop_" + why] += 1
                    continue
                self.seen.add(line)
                c["lines"] += 1
                c["chars"] += len(line)
                yield line


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def source_segments(kind: str, files: list[str]) -> Iterator[str]:
    """The raw segments of `files` read as `kind`."""
    for path in files:
        if kind == "mo":
            with open(path, "rb") as f:
                yield from ct.mo_segments(f.read(), path)
        elif kind == "xpi":
            yield from ct.xpi_segments(path)
        elif kind == "html":
            yield from ct.html_segments(_read_text(path))
        elif kind == "fortune":
            yield from ct.fortune_segments(_read_text(path))
        elif kind == "description":
            yield from ct.description_segments(read_list_file(path))
        else:
            raise ValueError(f"unknown source kind {kind!r}")


def fortune_files(root: str, pattern: str) -> list[str]:
    """The Czech fortune files: no index (.dat), links (.u8) or Slovak (-sk)."""
    return [
        p
        for p in sorted(glob.glob(os.path.join(root, pattern)))
        if os.path.isfile(p)
        and not os.path.islink(p)
        and not p.endswith((".dat", ".u8"))
        and not os.path.basename(p).endswith("-sk")
    ]


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same directory; a file
    that already holds `text` is left alone (its time too, so make does not
    rebuild what depends on it)."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except (OSError, UnicodeDecodeError):
        pass
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what users expect
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="work", help="downloads and unpacked packages")
    ap.add_argument("--out", default="data", help="where extra.cs etc. go")
    ap.add_argument(
        "--asr-data",
        default=os.path.join(ASR_DIR, "data"),
        help="asr-cs data/ (train.tsv gives the characters; valid/test the leaks)",
    )
    ap.add_argument("--min-words", type=int, default=3)
    ap.add_argument("--drop-digits", action="store_true", help="drop lines with digits")
    ap.add_argument(
        "--any-line",
        action="store_true",
        help="keep lines without a Czech letter with a diacritic",
    )
    ap.add_argument(
        "--sources",
        default=",".join(DEFAULT_SOURCES),
        help="comma-separated subset of: " + ", ".join(s[0] for s in SOURCES),
    )
    ap.add_argument("--refresh-lists", action="store_true")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except (DebianError, OSError, ValueError, zipfile.BadZipFile) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """prepare_text.py's work, on parsed arguments."""
    wanted = [s for s in args.sources.split(",") if s]
    known = {s[0]: s for s in SOURCES}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)} (--sources)")
    train = read_texts(os.path.join(args.asr_data, "train.tsv"))
    charset = set("".join(train))
    leaks = set()
    for split in ("valid", "test"):
        leaks.update(read_texts(os.path.join(args.asr_data, f"{split}.tsv")))
    os.makedirs(args.work, exist_ok=True)
    skipped = {}
    if "descriptions" in wanted:
        why = update_translations(args.work, args.refresh_lists)
        if why:
            print(f"  no Czech package descriptions ({why}); skipped", file=sys.stderr)
            skipped["descriptions"] = why
    pkgs = [known[s][1] for s in wanted if known[s][1]]
    got = fetch([p for p in dict.fromkeys(pkgs + [LEXICON_PACKAGE]) if p], args.work)

    keep = Filter(
        load_normalize(),
        charset,
        leaks,
        min_words=args.min_words,
        drop_digits=args.drop_digits,
        need_czech_letter=not args.any_line,
    )
    lines: list[str] = []
    sources = {}
    for name in wanted:
        if name in skipped:
            continue
        _, pkg, kind, pattern = known[name]
        if pkg is None:
            files = translation_files(args.work)
            version = ", ".join(index_version(p) for p in files)
        else:
            root = got[pkg].root
            if kind == "fortune":
                files = fortune_files(root, pattern)
            else:
                files = sorted(glob.glob(os.path.join(root, pattern), recursive=True))
            version = got[pkg].version
        print(f"  {name}: {len(files)} files", file=sys.stderr, flush=True)
        lines.extend(keep(name, source_segments(kind, files)))
        c = keep.counts.get(name, Counter())
        sources[name] = {"package": pkg or "Translation-cs", "version": version}
        sources[name].update(files=len(files), **dict(sorted(c.items())))

    lex = got[LEXICON_PACKAGE]

    def lexicon(entries: Iterable[str]) -> tuple[set[str], Counter[str]]:
        """Normalised words that fit the character set, and why others did not."""
        kept, why = set(), Counter()
        for w in entries:
            n = keep.normalize(w)
            if not n or " " in n or set(n) - charset:
                why["characters_or_split"] += 1
            elif args.drop_digits and re.search(r"\d", n):
                why["digits"] += 1
            else:
                kept.add(n)
        return kept, why

    dic = _read_text(os.path.join(lex.root, LEXICON_FILE))
    words, lex_drops = lexicon(ct.hunspell_words(dic))
    aff = _read_text(os.path.join(lex.root, LEXICON_AFF))
    forms, _ = lexicon(ct.hunspell_forms(dic, aff))

    reasons = ["empty", "leak", "digits", "characters", "short", "no_czech_letter"]
    drops: Counter[str] = Counter(dict.fromkeys(reasons + ["duplicate"], 0))
    for c in keep.counts.values():
        drops.update({k[5:]: v for k, v in c.items() if k.startswith("drop_")})
    stats = {
        "options": {
            "min_words": args.min_words,
            "drop_digits": args.drop_digits,
            "need_czech_letter": not args.any_line,
            "charset": "".join(sorted(charset)),
            "leak_lines": len(leaks),
        },
        "sources": sources,
        "skipped": skipped,
        "total": {
            "lines": len(lines),
            "chars": sum(len(x) for x in lines),
            "words": sum(len(x.split()) for x in lines),
        },
        "drops": dict(sorted(drops.items())),
        "leaked": dict(sorted(keep.leaked.items())),
        "outside_chars": dict(keep.outside.most_common(40)),
        "lexicon": {
            "package": LEXICON_PACKAGE,
            "version": lex.version,
            "words": len(words),
            "drops": dict(lex_drops),
            "forms": len(forms),
        },
    }
    write_atomic(os.path.join(args.out, "extra.cs"), "".join(x + "\n" for x in lines))
    write_atomic(
        os.path.join(args.out, "lexicon.cs"), "".join(w + "\n" for w in sorted(words))
    )
    write_atomic(
        os.path.join(args.out, "forms.cs"), "".join(w + "\n" for w in sorted(forms))
    )
    write_atomic(
        os.path.join(args.out, "extra.stats.json"),
        json.dumps(stats, ensure_ascii=False, indent=1) + "\n",
    )
    t = stats["total"]
    print(
        f"  {args.out}/extra.cs: {t['lines']} lines, {t['chars']} characters; "
        f"lexicon {len(words)} words, {len(forms)} forms; drops {dict(drops)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
