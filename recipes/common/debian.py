"""Fetch and unpack Debian binary packages without root (standard library only).

The recipes take their data from Debian packages. Nothing is installed:

  WORK/debs/<pkg>_<version>_<arch>.deb   ``apt-get download``, once per package
  WORK/extract/<pkg>/                    ``dpkg-deb -x``, once per .deb (a stamp
                                         file names the .deb it came from)
  WORK/src/<pkg>_<version>.orig.tar.*    ``apt-get source --download-only``
                                         (`fetch_source`), once per source package

Package lists: a private lists directory WORK/lists, filled by
``apt-get update`` pointed at it (needs no root and leaves the system lists
alone); if that update fails, the system lists are used. Every failure is a
`DebianError` whose message names the packages and says what to do.

A recipe script imports this module after putting ``recipes/`` on its path::

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from common.debian import DebianError, fetch
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

__all__ = [
    "DebianError",
    "Package",
    "deb_version",
    "download",
    "extract",
    "fetch",
    "fetch_source",
    "find_deb",
]

STAMP = ".extracted-from"
SYSTEM_SOURCES = "/etc/apt/sources.list"
SYSTEM_SOURCE_PARTS = "/etc/apt/sources.list.d"
# apt-get's words for "the lists don't know this package".
UNKNOWN_PACKAGE = re.compile(
    r"Unable to locate package|has no installation candidate|No packages found"
)


class DebianError(RuntimeError):
    """A package could not be downloaded or unpacked; the message says why."""


@dataclass(frozen=True)
class Package:
    """One fetched package: its .deb, the directory it is unpacked in, its version."""

    name: str
    deb: str
    root: str
    version: str


def fetch(
    pkgs: list[str], work: str, refresh_lists: bool = False
) -> dict[str, Package]:
    """Download (once) and unpack (once) each of `pkgs` under WORK; by name."""
    download(pkgs, work, refresh_lists)
    out = {}
    for pkg in pkgs:
        root = extract(pkg, work)
        deb = find_deb(os.path.join(work, "debs"), pkg)
        assert deb is not None  # extract() checked
        out[pkg] = Package(pkg, deb, root, deb_version(deb))
    return out


def find_deb(debdir: str, pkg: str) -> str | None:
    """The .deb of `pkg` in `debdir` (the last by name if several), or None."""
    hits = sorted(glob.glob(os.path.join(debdir, glob.escape(pkg) + "_*.deb")))
    return hits[-1] if hits else None


def download(pkgs: list[str], work: str, refresh_lists: bool = False) -> None:
    """Download the .deb files of `pkgs` into WORK/debs, skipping those present.

    Tries the private lists WORK/lists (``apt-get update`` into them first if
    they are empty or `refresh_lists`), then the system lists.
    """
    debdir = os.path.join(work, "debs")
    os.makedirs(debdir, exist_ok=True)
    missing = [p for p in pkgs if not find_deb(debdir, p)]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise DebianError(
            "apt-get not found: this recipe needs a Debian/Ubuntu system "
            f"(or place the .deb files of {', '.join(missing)} into {debdir} by hand)"
        )
    listdir = os.path.abspath(os.path.join(work, "lists"))
    cachedir = os.path.abspath(os.path.join(work, "aptcache"))
    private = ["-o", "Dir::State::Lists=" + listdir, "-o", "Dir::Cache=" + cachedir]
    if refresh_lists or not _lists_present(listdir):
        os.makedirs(os.path.join(listdir, "partial"), exist_ok=True)
        os.makedirs(os.path.join(cachedir, "archives", "partial"), exist_ok=True)
        r = _apt(["apt-get", "-q", *private, "update"], cwd=work)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            _log(
                f"  private 'apt-get update' failed ({last}); "
                "falling back to the system package lists"
            )
    attempts = []
    if _lists_present(listdir):
        attempts.append(("private lists " + listdir, private))
    attempts.append(("system lists", []))
    errors = []
    for what, opts in attempts:
        todo = [p for p in pkgs if not find_deb(debdir, p)]
        if not todo:
            break
        r = _apt(["apt-get", "-q", *opts, "download", *todo], cwd=debdir)
        if r.returncode == 0:
            break
        errors.append(f"{what}: {r.stderr.strip()}")
    for p in glob.glob(os.path.join(debdir, "*.FAILED")):
        os.remove(p)
    todo = [p for p in pkgs if not find_deb(debdir, p)]
    if todo:
        msg = "\n".join(errors)
        hint = ""
        if UNKNOWN_PACKAGE.search(msg):
            hint = (
                "\nThe package lists do not know these packages. Run "
                "`sudo apt-get update` (or check that the packages exist for your "
                f"release: {', '.join(todo)})."
            )
        raise DebianError(f"could not download {', '.join(todo)}\n{msg}{hint}")


def extract(pkg: str, work: str) -> str:
    """Unpack WORK/debs/<pkg>_*.deb into WORK/extract/<pkg>/ once; return that dir.

    The directory is rebuilt when the .deb differs from the one its stamp
    names (a newer version downloaded). It is unpacked beside and renamed into
    place, so an interrupted run leaves no half-unpacked tree behind a stamp.
    """
    debdir = os.path.join(work, "debs")
    deb = find_deb(debdir, pkg)
    if deb is None:
        raise DebianError(
            f"no .deb for {pkg} in {debdir}: download it first "
            f"(`apt-get download {pkg}` there)"
        )
    dest = os.path.join(work, "extract", pkg)
    stamp = os.path.join(dest, STAMP)
    if os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as f:
            if f.read().strip() == os.path.basename(deb):
                return dest
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _log(f"  extracting {os.path.basename(deb)}")
    r = subprocess.run(["dpkg-deb", "-x", deb, tmp], text=True, capture_output=True)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DebianError(
            f"could not unpack {deb} ({r.stderr.strip() or 'dpkg-deb failed'}); "
            "delete it and run again to download it anew"
        )
    with open(os.path.join(tmp, STAMP), "w", encoding="utf-8") as f:
        f.write(os.path.basename(deb) + "\n")
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def fetch_source(pkg: str, work: str) -> str:
    """The upstream tarball of source package `pkg` in WORK/src, downloaded once.

    apt needs ``deb-src`` entries: the system's ``deb`` entries are copied with
    that type into WORK/src-apt and their Sources indexes fetched into
    WORK/src-lists; nothing outside WORK changes. Only the ``.orig`` tarball is
    needed, so a failure to fetch the other files of the source package is not
    an error when it arrived.
    """
    srcdir = os.path.join(work, "src")
    os.makedirs(srcdir, exist_ok=True)
    found = _orig_tarball(srcdir, pkg)
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise DebianError(
            f"apt-get not found: place the .orig tarball of the source package {pkg} "
            f"into {srcdir} by hand"
        )
    etc = os.path.abspath(os.path.join(work, "src-apt"))
    parts = os.path.join(etc, "sources.list.d")
    listdir = os.path.abspath(os.path.join(work, "src-lists"))
    os.makedirs(parts, exist_ok=True)
    os.makedirs(os.path.join(listdir, "partial"), exist_ok=True)
    with open(os.path.join(etc, "sources.list"), "w", encoding="utf-8") as out:
        for path in [
            SYSTEM_SOURCES,
            *sorted(glob.glob(SYSTEM_SOURCE_PARTS + "/*.list")),
        ]:
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    out.writelines(
                        "deb-src" + line[3:] for line in f if line.startswith("deb ")
                    )
    for path in sorted(glob.glob(SYSTEM_SOURCE_PARTS + "/*.sources")):
        with open(path, encoding="utf-8") as f:
            text = re.sub(r"(?m)^Types:\s*deb\s*$", "Types: deb-src", f.read())
        with open(os.path.join(parts, os.path.basename(path)), "w") as f:
            f.write(text)
    opts = [
        "-o",
        "Dir::Etc::SourceList=" + os.path.join(etc, "sources.list"),
        "-o",
        "Dir::Etc::SourceParts=" + parts,
        "-o",
        "Dir::State::Lists=" + listdir,
    ]
    r = _apt(["apt-get", "-q", *opts, "update"], cwd=work)
    if r.returncode != 0:
        raise DebianError(
            f"could not fetch the Sources indexes for {pkg}: {r.stderr.strip()}"
        )
    r = _apt(["apt-get", "-q", *opts, "source", "--download-only", pkg], cwd=srcdir)
    found = _orig_tarball(srcdir, pkg)
    if not found:
        raise DebianError(
            f"could not download the source package {pkg}: {r.stderr.strip()}"
        )
    return found


def _orig_tarball(srcdir: str, pkg: str) -> str | None:
    hits = sorted(glob.glob(os.path.join(srcdir, glob.escape(pkg) + "_*.orig.tar.*")))
    return hits[-1] if hits else None


def deb_version(deb: str) -> str:
    """The Version field of `deb`; from its file name if dpkg-deb can't say."""
    r = subprocess.run(
        ["dpkg-deb", "-f", deb, "Version"], text=True, capture_output=True
    )
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip()
    # pkg_version_arch.deb, an epoch's ':' written as '%3a'
    return os.path.basename(deb).split("_")[1].replace("%3a", ":")


def _lists_present(listdir: str) -> bool:
    return bool(glob.glob(os.path.join(listdir, "*_Packages*")))


def _apt(args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    _log("  $ " + " ".join(args))
    return subprocess.run(args, cwd=cwd, text=True, capture_output=True)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
