"""The three sources of the X<->English corpus, read from unpacked Debian packages.

Each reader returns (records, drops): records are dicts with doc, id, en, xx
(the non-English side); drops counts what was skipped, by reason.

  extract_help  LibreOffice offline help, paragraphs joined on (page, element id)
  extract_ui    LibreOffice UI strings (gettext .mo), English msgid -> msgstr;
                clean_ui removes their accelerator marks
  extract_ding  Ding dictionary (trans-de-en), whole example sentences only
"""

from __future__ import annotations

import gettext
import glob
import html.parser
import os
import re
import sys
from collections import Counter, OrderedDict

DING_BLOCK = 100  # Ding "documents" are blocks of 100 consecutive lines.
WS = re.compile(r"\s+")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
