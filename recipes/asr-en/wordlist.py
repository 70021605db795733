#!/usr/bin/env python3
"""A word list for `s2s transcribe --lexicon`: Debian's American English word
list (package `wamerican`, /usr/share/dict/american-english; fetched with
`apt-get download` and unpacked, not installed) normalised like the transcripts,
plus the words of the language-model text (data/lm_text.txt, which holds no
valid or test sentence).

Usage: python wordlist.py --work work --lm-text data/lm_text.txt --out data/words.en
"""

import argparse
import os
import re
import sys
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.debian import DebianError, fetch  # noqa: E402  (recipes/ is on the path now)
from spoken_form import normalize  # noqa: E402

PKG = "wamerican"
WORD = re.compile(r"^[a-z]+(?:'[a-z]+)*$")


def dictionary_words(path):
    """The normalised entries of a /usr/share/dict list that are single words
    of a-z and inner apostrophes (accented entries lose their accents first)."""
    out = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            ascii_ = unicodedata.normalize("NFKD", line.strip())
            w = normalize(ascii_.encode("ascii", "ignore").decode())
            if WORD.match(w):
                out.add(w)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="work")
    ap.add_argument("--lm-text", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        package = fetch([PKG], args.work)[PKG]
    except DebianError as e:
        sys.exit(f"ERROR: {e}")
    dict_path = os.path.join(package.root, "usr", "share", "dict", "american-english")
    words = dictionary_words(dict_path)
    n_dict = len(words)
    with open(args.lm_text, encoding="utf-8") as f:
        for line in f:
            words.update(line.split())
    with open(args.out + ".part", "w", encoding="utf-8") as f:
        for w in sorted(words):
            f.write(w + "\n")
    os.replace(args.out + ".part", args.out)
    print(
        f"{args.out}: {len(words)} words ({n_dict} from {PKG} {package.version}, "
        f"{len(words) - n_dict} more from {args.lm_text})"
    )


if __name__ == "__main__":
    main()
