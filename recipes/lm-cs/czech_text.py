"""Readers and filters for the Czech LM text (standard library only).

Readers turn one kind of file into raw text segments (one translated message,
one paragraph, one package description ...):

  read_mo          gettext .mo catalogue -> {msgid: msgstr} (a small reader)
  mo_segments      the translations of a .mo file (every plural form)
  ftl_segments     Fluent (.ftl) message values and attributes
  properties_segments  Java-style .properties values
  xpi_segments     the .ftl and .properties files inside a Mozilla language pack
  html_segments    the running text of an HTML page (no scripts, headers, code)
  description_segments  the Description-cs fields of an apt Translation-cs index
  fortune_segments the entries of a fortune file (``%`` lines between them)
  hunspell_words   the stems of a hunspell .dic file (its affix flags cut off)
  hunspell_forms   every form of those stems that the .aff file's affix rules make

Then `strip_markup` removes what is not prose (tags, entities, printf and
LibreOffice placeholders, Fluent placeables, ``~``/``_`` accelerators) and
`split_sentences` cuts a segment into sentences. Normalisation itself is the
asr-cs transcripts' own (`recipes/asr-cs/prepare_data.py`, `normalize`).
"""

from __future__ import annotations

import html
import re
import struct
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser

__all__ = [
    "MoError",
    "description_segments",
    "fortune_segments",
    "ftl_segments",
    "html_segments",
    "hunspell_forms",
    "hunspell_words",
    "mo_segments",
    "properties_segments",
    "read_mo",
    "split_sentences",
    "strip_markup",
    "xpi_segments",
]


class MoError(ValueError):
    """A file is not a readable .mo catalogue."""


# --------------------------------------------------------------------------
# gettext .mo


def read_mo(data: bytes, name: str = "<mo>") -> dict[str, str]:
    """The messages of a .mo catalogue: msgid -> msgstr (decoded as UTF-8).

    A plural entry's msgid is its singular form and its msgstr holds the
    forms separated by NUL; a context is kept as ``ctxt\\x04msgid`` as gettext
    stores it. The header (empty msgid) is included.
    """
    if len(data) < 28:
        raise MoError(f"{name}: too short for a .mo file ({len(data)} bytes)")
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x950412DE:
        end = "<"
    elif magic == 0xDE120495:
        end = ">"
    else:
        raise MoError(f"{name}: not a .mo file (magic {data[:4].hex()})")
    _rev, count, off_ids, off_strs = struct.unpack(end + "4I", data[4:20])
    out = {}
    for i in range(count):
        try:
            ilen, ioff = struct.unpack_from(end + "2I", data, off_ids + 8 * i)
            slen, soff = struct.unpack_from(end + "2I", data, off_strs + 8 * i)
        except struct.error:
            raise MoError(f"{name}: truncated string table (entry {i})") from None
        if ioff + ilen > len(data) or soff + slen > len(data):
            raise MoError(f"{name}: entry {i} points past the end of the file")
        msgid = data[ioff : ioff + ilen].decode("utf-8", "replace")
        out[msgid] = data[soff : soff + slen].decode("utf-8", "replace")
    return out


def mo_segments(data: bytes, name: str = "<mo>") -> Iterator[str]:
    """Each translated form of a .mo catalogue, skipping the header and
    messages left in the original language (msgstr equal to msgid)."""
    for msgid, msgstr in read_mo(data, name).items():
        if not msgid or not msgstr:
            continue
        singular = msgid.split("\x04")[-1].split("\x00")[0]
        for form in msgstr.split("\x00"):
            if form and form != singular:
                yield form


# --------------------------------------------------------------------------
# Mozilla language packs: Fluent and .properties

# Messages that are key names, not text (access keys, shortcuts, sizes).
_KEYISH = re.compile(r"(accesskey|commandkey|\.key|-key|\.width|\.height|style)$", re.I)
_FTL_ENTRY = re.compile(r"^(-?[A-Za-z][\w-]*)\s*=\s*(.*)$")
_FTL_ATTR = re.compile(r"^\s+\.([A-Za-z][\w-]*)\s*=\s*(.*)$")


def _ftl_part(s: str) -> str:
    """One line of a Fluent value without a select expression's opening."""
    s = s.strip()
    return s[: s.rfind("{")] if s.endswith("->") else s


def ftl_segments(text: str) -> Iterator[str]:
    """The values and attribute values of a Fluent file, one message each
    (continuation lines joined), each variant of a select expression on its
    own; the placeables are left for `strip_markup`."""
    msg = ""  # the message name
    key: str | None = None  # the message or "message.attribute" being read
    parts: list[str] = []

    def text_of(parts: list[str]) -> list[str]:
        if key is None or _KEYISH.search(key):
            return []
        joined = " ".join(p for p in parts if p)
        return [joined] if joined.strip() else []

    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _FTL_ENTRY.match(line)
        a = _FTL_ATTR.match(line) if m is None else None
        if m is not None or a is not None:
            yield from text_of(parts)
            if m is not None:
                msg = key = m.group(1)
            else:
                key = f"{msg}.{a.group(1)}"  # type: ignore[union-attr]
            parts = [_ftl_part((m or a).group(2))]  # type: ignore[union-attr]
        elif line[:1].isspace() and key is not None:
            s = line.strip()
            if s.startswith(("*[", "[")):  # a variant: a message of its own
                yield from text_of(parts)
                parts = [s.split("]", 1)[-1].strip()]
            elif s != "}":
                parts.append(_ftl_part(s))
    yield from text_of(parts)


def _unescape_properties(v: str) -> str:
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: (
            chr(int(m.group(1)[1:], 16))
            if m.group(1)[0] == "u" and len(m.group(1)) == 5
            else {"n": "\n", "t": " "}.get(m.group(1), m.group(1))
        ),
        v,
    )


def properties_segments(text: str) -> Iterator[str]:
    """The values of a .properties file; plural forms (``#1 x;#1 y``) split."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#!":
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + lines[i].strip()
            i += 1
        m = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if m is None or _KEYISH.search(m.group(1)):
            continue
        value = _unescape_properties(m.group(2))
        yield from (value.split(";") if "#1" in value else [value])


def xpi_segments(path: str) -> Iterator[str]:
    """The text of the .ftl and .properties files inside a .xpi (zip)."""
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if name.endswith(".ftl"):
                yield from ftl_segments(z.read(name).decode("utf-8", "replace"))
            elif name.endswith(".properties"):
                text = z.read(name).decode("utf-8", "replace")
                yield from properties_segments(text)


# --------------------------------------------------------------------------
# HTML


class _TextParser(HTMLParser):
    SKIP = {"script", "style", "head", "header", "nav", "footer", "pre", "code"}
    SKIP |= {"kbd", "samp", "tt", "var", "noscript", "svg", "math", "select"}
    BREAK = {"p", "div", "br", "li", "td", "th", "tr", "h1", "h2", "h3", "h4"}
    BREAK |= {"h5", "h6", "dt", "dd", "table", "ul", "ol", "title", "section"}
    BREAK |= {"blockquote", "caption", "figcaption", "hr", "body"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.spans = 0  # open <span>s
        self.hidden_at: int | None = None  # the depth of a skipped switch case
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "span":
            self.spans += 1
            a = dict(attrs)
            # LibreOffice help's switches: one hidden <span> per system or
            # module (class="MAC", "CALC" ...) and the default one without a
            # class; the default is kept.
            if self.hidden_at is None and "hidden" in a and a.get("class"):
                self.hidden_at = self.spans
        elif tag in self.SKIP:
            self.skip += 1
        elif tag in self.BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            if self.hidden_at == self.spans:
                self.hidden_at = None
            self.spans = max(0, self.spans - 1)
        elif tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip and self.hidden_at is None:
            self.parts.append(data.replace("\n", " "))


def html_segments(text: str) -> Iterator[str]:
    """The text blocks (paragraphs, list items, cells) of an HTML page."""
    p = _TextParser()
    p.feed(text)
    p.close()
    for block in "".join(p.parts).split("\n"):
        if block.strip():
            yield block


# --------------------------------------------------------------------------
# Debian package descriptions, fortunes, hunspell


def description_segments(text: str) -> Iterator[str]:
    """Each Description-cs of a Translation-cs index: the short description,
    then each paragraph of the long one (`` .`` separates them)."""
    para: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("Description-cs:"):
            inside = True
            yield line.split(":", 1)[1]
            para = []
        elif inside and line.startswith(" "):
            s = line.strip()
            if s == "." or s.startswith(("* ", "- ", "+ ", "o ")):
                if para:
                    yield " ".join(para)
                para = [s[2:]] if s != "." else []
            else:
                para.append(s)
        else:
            if para:
                yield " ".join(para)
            para, inside = [], False
    if para:
        yield " ".join(para)


def fortune_segments(text: str) -> Iterator[str]:
    """The entries of a fortune file; an attribution line (``-- Name`` or
    ``— Name``) and the lines after it are left out (``- `` lines are text:
    dialogue and lists)."""
    for entry in re.split(r"^%\s*$", text, flags=re.M):
        lines = []
        for line in entry.splitlines():
            if re.match(r"\s*(--|—)\s*\S", line) and lines:
                break
            lines.append(line.strip())
        if any(lines):
            yield " ".join(x for x in lines if x)


def _dic_entries(text: str) -> Iterator[tuple[str, str]]:
    """(stem, flags) of each entry of a hunspell .dic (first line: the count;
    ``word/FLAGS``, ``\\/`` a slash in the word, a tab before morphology)."""
    for i, line in enumerate(text.splitlines()):
        if i == 0 and line.strip().isdigit():
            continue
        parts = re.split(r"(?<!\\)/", line.strip(), maxsplit=1)
        word = parts[0].split("\t")[0].replace("\\/", "/")
        flags = (parts[1].split() or [""])[0] if len(parts) > 1 else ""
        if word:
            yield word, flags


def hunspell_words(text: str) -> Iterator[str]:
    """The stems of a hunspell .dic (first line: the count; ``word/FLAGS``)."""
    for word, _ in _dic_entries(text):
        yield word


def _affix_rules(aff: str) -> tuple[dict, set[str]]:
    """The PFX/SFX rules of a hunspell .aff: {flag: (kind, cross, [(strip, add,
    continuation flags, condition regex)])}, and the FORBIDDENWORD flags."""
    rules: dict[str, tuple[str, bool, list]] = {}
    forbidden: set[str] = set()
    for line in aff.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0] == "FORBIDDENWORD":
            forbidden.add(f[1])
        if len(f) < 4 or f[0] not in ("PFX", "SFX"):
            continue
        kind, flag = f[0], f[1]
        if flag not in rules:  # the header: PFX flag cross count
            rules[flag] = (kind, f[2] == "Y", [])
            continue
        strip = "" if f[2] == "0" else f[2]
        add, _, cont = f[3].partition("/")
        add = "" if add == "0" else add
        cond = f[4] if len(f) > 4 else "."
        regex = re.compile(f"({cond})$" if kind == "SFX" else f"^({cond})")
        rules[flag][2].append((strip, add, cont, regex))
    return rules, forbidden


def _suffixed(word: str, flags: str, rules: dict, depth: int = 1) -> Iterator[str]:
    for flag in flags:
        kind, _, entries = rules.get(flag, ("", False, []))
        if kind != "SFX":
            continue
        for strip, add, cont, regex in entries:
            if word.endswith(strip) and regex.search(word):
                form = word[: len(word) - len(strip)] + add
                yield form
                if cont and depth > 0:  # a twofold suffix (e.g. -ův, then its cases)
                    yield from _suffixed(form, cont, rules, depth - 1)


def hunspell_forms(dic: str, aff: str) -> Iterator[str]:
    """Every word form a hunspell dictionary accepts by its affix rules: each stem
    of `dic` with the suffixes and prefixes its flags allow (and their cross
    products, and one level of continuation classes); FORBIDDENWORD stems left
    out. Forms repeat; the caller deduplicates."""
    rules, forbidden = _affix_rules(aff)
    for word, flags in _dic_entries(dic):
        if forbidden & set(flags):
            continue
        forms = [word, *_suffixed(word, flags, rules)]
        yield from forms
        for flag in flags:
            kind, cross, entries = rules.get(flag, ("", False, []))
            if kind != "PFX":
                continue
            for strip, add, _, regex in entries:
                if not (word.startswith(strip) and regex.search(word)):
                    continue
                for form in forms if cross else [word]:
                    if form.startswith(strip):
                        yield add + form[len(strip) :]


# --------------------------------------------------------------------------
# markup and sentences

_MARKUP = [
    (re.compile(r"<[^<>]*>"), " "),  # tags
    (re.compile(r"\{[^{}]*\}"), " "),  # Fluent placeables (innermost first)
    (re.compile(r"\{[^{}]*\}"), " "),
    (
        re.compile(
            r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?[sSdiuoxXfFeEgGcp@]"
        ),
        " ",
    ),
    (re.compile(r"%[A-Za-z_][A-Za-z0-9_]*%?|%\d+|%%"), " "),  # %PRODUCTNAME, %1
    (re.compile(r"\$\([A-Za-z0-9_]+\)|\$[A-Za-z_][A-Za-z0-9_]*\$?"), " "),  # $(ARG1)
    (re.compile(r"#\d+"), " "),  # plural placeholders #1
    (re.compile(r"\\[ntr]"), " "),
    (re.compile(r"~"), ""),  # LibreOffice accelerators: ~Soubor
    (re.compile(r"(?<![\w])_(?=\w)"), ""),  # GTK accelerators: _Soubor
]


def strip_markup(text: str) -> str:
    """`text` without tags, entities, placeholders and accelerator marks."""
    t = html.unescape(text)
    for pattern, repl in _MARKUP:
        t = pattern.sub(repl, t)
    return " ".join(t.split())


# a capital, perhaps after quotes, a bracket or a dialogue dash
_UPPER_START = "[\"'„“‚(«»\\-–— ]*[A-ZÁČĎÉĚÍŇÓŘŠŤÚŮÝŽ]"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=" + _UPPER_START + ")")


def split_sentences(text: str) -> list[str]:
    """`text` cut after ``. ! ? …`` where a capital letter follows."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]
