"""Read the dialog files of Fish Fillets NG (Lua) with a minimal Lua lexer.

parse_dialog_file() understands the calls dialogId(<id>, <font>, <English>)
and dialogStr(<Czech>) whose arguments are string literals (short strings with
escapes, long [[...]] strings, `..` concatenation); comments are skipped and
anything else is reported as a warning. No regular expressions over the file.
"""

import re

_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "\n": "\n",
}


class LuaSyntaxError(Exception):
    pass


def _read_short_string(src, i):
    """src[i] is the opening quote; return (decoded str, index after close)."""
    quote = src[i]
    i += 1
    out = []
    raw = bytearray()  # pending bytes from \ddd / \xXX escapes

    def flush():
        if raw:
            out.append(raw.decode("utf-8", errors="replace"))
            raw.clear()

    while True:
        if i >= len(src):
            raise LuaSyntaxError("unterminated string")
        c = src[i]
        if c == quote:
            flush()
            return "".join(out), i + 1
        if c == "\n":
            raise LuaSyntaxError("newline in short string")
        if c == "\\":
            n = src[i + 1]
            if n in _ESCAPES:
                flush()
                out.append(_ESCAPES[n])
                i += 2
            elif n.isdigit():
                m = re.match(r"\d{1,3}", src[i + 1 :])
                raw.append(int(m.group()) & 0xFF)
                i += 1 + len(m.group())
            elif n == "x":
                raw.append(int(src[i + 2 : i + 4], 16))
                i += 4
            elif n == "z":
                flush()
                i += 2
                while i < len(src) and src[i].isspace():
                    i += 1
            else:
                raise LuaSyntaxError(f"bad escape \\{n}")
            continue
        flush()
        out.append(c)
        i += 1


def _long_bracket(src, i):
    """If src[i:] opens a long bracket [==[, return its level, else None."""
    m = re.match(r"\[(=*)\[", src[i:])
    return len(m.group(1)) if m else None


def lua_tokens(src):
    """Yield (kind, value, line) with kind in name/string/number/op."""
    i, n = 0, len(src)
    line = 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace() or c == "\ufeff":
            i += 1
        elif src.startswith("--", i):
            lvl = _long_bracket(src, i + 2)
            if lvl is not None:
                close = "]" + "=" * lvl + "]"
                j = src.find(close, i)
                if j < 0:
                    raise LuaSyntaxError("unterminated long comment")
                line += src.count("\n", i, j)
                i = j + len(close)
            else:
                j = src.find("\n", i)
                i = n if j < 0 else j
        elif c in "\"'":
            s, j = _read_short_string(src, i)
            yield "string", s, line
            i = j
        elif c == "[" and _long_bracket(src, i) is not None:
            lvl = _long_bracket(src, i)
            close = "]" + "=" * lvl + "]"
            start = i + lvl + 2
            j = src.find(close, start)
            if j < 0:
                raise LuaSyntaxError("unterminated long string")
            s = src[start:j]
            if s.startswith("\r\n"):
                s = s[2:]
            elif s.startswith("\n"):
                s = s[1:]
            yield "string", s, line
            line += src.count("\n", i, j)
            i = j + len(close)
        elif c.isalpha() or c == "_":
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", src[i:])
            yield "name", m.group(), line
            i += len(m.group())
        elif c.isdigit():
            m = re.match(r"[0-9][0-9A-Za-z_.]*", src[i:])
            yield "number", m.group(), line
            i += len(m.group())
        elif src.startswith("...", i):
            yield "op", "...", line
            i += 3
        elif src.startswith("..", i):
            yield "op", "..", line
            i += 2
        else:
            yield "op", c, line
            i += 1


def parse_dialog_file(path):
    """Return [(id, english, czech_or_None, line)] and a list of warnings.

    Understands calls  dialogId(<str>, <str>, <str>)  and  dialogStr(<str>)
    where <str> is a string literal or a `..` concatenation of literals;
    the parenthesis-less call forms f"..." are accepted too.  Anything else
    in the file is reported as a warning.
    """
    with open(path, encoding="utf-8") as f:
        src = f.read()
    toks = list(lua_tokens(src))
    warnings = []
    entries = []
    pos = 0

    def expr(p):
        if toks[p][0] != "string":
            raise LuaSyntaxError(
                f"{path}:{toks[p][2]}: expected string, got {toks[p][1]!r}"
            )
        parts = [toks[p][1]]
        p += 1
        while p < len(toks) and toks[p] == ("op", "..", toks[p][2]):
            if toks[p + 1][0] != "string":
                raise LuaSyntaxError(f"{path}:{toks[p][2]}: non-literal concatenation")
            parts.append(toks[p + 1][1])
            p += 2
        return "".join(parts), p

    while pos < len(toks):
        kind, val, line = toks[pos]
        if kind == "name" and val in ("dialogId", "dialogStr"):
            args = []
            p = pos + 1
            if toks[p][0] == "string":  # f"..." call form
                args.append(toks[p][1])
                p += 1
            else:
                if toks[p][1] != "(":
                    raise LuaSyntaxError(f"{path}:{line}: expected (")
                p += 1
                while toks[p][1] != ")":
                    a, p = expr(p)
                    args.append(a)
                    if toks[p][1] == ",":
                        p += 1
                p += 1
            if val == "dialogId":
                if len(args) != 3:
                    warnings.append(f"{path}:{line}: dialogId with {len(args)} args")
                entries.append([args[0], args[2] if len(args) > 2 else "", None, line])
            else:
                if not entries:
                    warnings.append(f"{path}:{line}: dialogStr before dialogId")
                elif entries[-1][2] is not None:
                    warnings.append(
                        f"{path}:{line}: second dialogStr for "
                        f"{entries[-1][0]} (kept first)"
                    )
                else:
                    entries[-1][2] = args[0] if args else ""
            pos = p
        else:
            if kind != "op" or val not in (";",):
                warnings.append(f"{path}:{line}: unexpected token {val!r}")
            pos += 1
    return [tuple(e) for e in entries], warnings
