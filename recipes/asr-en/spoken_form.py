"""English sentences -> the text a TTS engine is given, and the transcript.

spoken_form() rewrites a sentence so that what the engine says is known:
numbers spelled out here (cardinals, ordinals, years, decimals, money), a few
abbreviations expanded, emphasis capitals lowercased; sentences that cannot be
rewritten safely (acronyms, URLs, paths, times, fractions, non-Latin letters,
...) are refused with a reason. normalize() turns the spoken form into the
transcript: lowercase, only [a-z' ], word-internal apostrophes kept.
"""

import re
import unicodedata

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
