"""The archive's Czech package descriptions in a private apt lists directory.

``apt-get update -o Acquire::Languages=cs`` into WORK/lists (the directory
recipes/common/debian.py uses) fetches the ``Translation-cs`` index beside the
package lists; apt keeps it compressed (lz4 on Debian), which `read_list_file`
undoes with ``apt-helper cat-file`` or the standard library.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
import shutil
import subprocess
import sys

__all__ = [
    "index_version",
    "read_list_file",
    "translation_files",
    "update_translations",
]

APT_HELPER = "/usr/lib/apt/apt-helper"


def translation_files(work: str) -> list[str]:
    """The Translation-cs indexes in WORK/lists."""
    return sorted(glob.glob(os.path.join(work, "lists", "*_i18n_Translation-cs*")))


def index_version(path: str) -> str:
    """An index's file name, with the Date of its release's InRelease file."""
    name = os.path.basename(path)
    release = path.split("_main_")[0] + "_InRelease"
    if "_main_" in path and os.path.isfile(release):
        with open(release, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Date:"):
                    return f"{name} ({line.split(':', 1)[1].strip()})"
    return name


def update_translations(work: str, refresh: bool = False) -> str | None:
    """``apt-get update`` into WORK/lists with the Czech descriptions, unless
    they are there (or `refresh`); returns why they could not be had, or None.

    Runs before `fetch`, which then finds the lists present: its own update
    (without Acquire::Languages) would drop the Translation-cs files again.
    """
    if translation_files(work) and not refresh:
        return None
    if shutil.which("apt-get") is None:
        return "apt-get not found"
    listdir = os.path.abspath(os.path.join(work, "lists"))
    cachedir = os.path.abspath(os.path.join(work, "aptcache"))
    os.makedirs(os.path.join(listdir, "partial"), exist_ok=True)
    os.makedirs(os.path.join(cachedir, "archives", "partial"), exist_ok=True)
    args = ["apt-get", "-q", "-o", "Dir::State::Lists=" + listdir]
    args += ["-o", "Dir::Cache=" + cachedir, "-o", "Acquire::Languages=cs", "update"]
    print("  $ " + " ".join(args), file=sys.stderr, flush=True)
    r = subprocess.run(args, cwd=work, text=True, capture_output=True)
    if r.returncode != 0 or not translation_files(work):
        last = (r.stderr.strip().splitlines() or ["no Translation-cs index"])[-1]
        return f"apt-get update with Acquire::Languages=cs: {last}"
    return None


def read_list_file(path: str) -> str:
    """An apt list file, decompressed (apt-helper knows lz4 and zstd too)."""
    openers = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
    ext = os.path.splitext(path)[1]
    if ext in openers:
        with openers[ext](path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    if ext in (".lz4", ".zst"):
        r = subprocess.run([APT_HELPER, "cat-file", path], capture_output=True)
        if r.returncode != 0:
            raise OSError(f"{path}: apt-helper cat-file failed")
        return r.stdout.decode("utf-8", "replace")
    return _read_text(path)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
