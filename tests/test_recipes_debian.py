"""recipes/common/debian.py against fake `apt-get` and `dpkg-deb` (no network).

The fakes are shell scripts on PATH that log each call, so the tests can count
how often a package was downloaded or unpacked."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
sys.path.insert(0, str(RECIPES))
import common.debian as debian  # noqa: E402
from common.debian import DebianError, download, extract, fetch, fetch_source  # noqa: E402

# apt-get: `update` writes a Packages file into Dir::State::Lists unless
# FAKE_UPDATE_FAILS is set; `download` writes <pkg>_1.0-2_all.deb into the
# current directory for every package except those named missing*; `source`
# writes <pkg>_1.0.orig.tar.xz (and fails, as a missing .debian.tar.xz would,
# when FAKE_SOURCE_PARTIAL is set), or fails for missing*.
FAKE_APT = r"""#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
lists=""
for a in "$@"; do
  case "$a" in Dir::State::Lists=*) lists="${a#Dir::State::Lists=}";; esac
done
cmd=""; pkgs=""
for a in "$@"; do
  case "$a" in
    update|download|source) cmd="$a";;
    -*|Dir::*) ;;
    *) [ -n "$cmd" ] && pkgs="$pkgs $a";;
  esac
done
if [ "$cmd" = update ]; then
  [ -n "$FAKE_UPDATE_FAILS" ] && { echo "E: no network" >&2; exit 100; }
  touch "$lists/deb.example_dists_main_binary-amd64_Packages"; exit 0
fi
if [ "$cmd" = source ]; then
  for p in $pkgs; do
    case "$p" in
      missing*) echo "E: Unable to find a source package for $p" >&2; exit 100;;
      *) echo "tarball of $p" > "${p}_1.0.orig.tar.xz";;
    esac
  done
  [ -n "$FAKE_SOURCE_PARTIAL" ] && { echo "E: 404 Not Found" >&2; exit 100; }
  exit 0
fi
rc=0
for p in $pkgs; do
  case "$p" in
    missing*) echo "E: Unable to locate package $p" >&2; rc=100;;
    *) echo "deb of $p" > "${p}_1.0-2_all.deb";;
  esac
done
exit $rc
"""
# dpkg-deb: -x DEB DIR writes DIR/usr/share/<deb name>; -f DEB Version says 1:1.0-2.
FAKE_DPKG = r"""#!/bin/sh
echo "dpkg-deb $*" >> "$FAKE_LOG"
case "$1" in
  -x) [ -n "$FAKE_DPKG_FAILS" ] && { echo "corrupt archive" >&2; exit 2; }
      mkdir -p "$3/usr/share" && cp "$2" "$3/usr/share/$(basename "$2")";;
  -f) echo "1:1.0-2";;
esac
"""


@pytest.fixture
def fake(tmp_path, monkeypatch) -> Path:
    """PATH with the fake tools first; returns the log file of their calls."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("apt-get", FAKE_APT), ("dpkg-deb", FAKE_DPKG)):
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("FAKE_UPDATE_FAILS", raising=False)
    monkeypatch.delenv("FAKE_DPKG_FAILS", raising=False)
    monkeypatch.delenv("FAKE_SOURCE_PARTIAL", raising=False)
    return log


def calls(log: Path, word: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if word in line]


def test_fetch_downloads_and_extracts_once(fake, tmp_path):
    work = str(tmp_path / "work")
    got = fetch(["alpha", "beta"], work)
    assert sorted(got) == ["alpha", "beta"]
    alpha = got["alpha"]
    assert alpha.deb == os.path.join(work, "debs", "alpha_1.0-2_all.deb")
    assert alpha.root == os.path.join(work, "extract", "alpha")
    assert alpha.version == "1:1.0-2"
    unpacked = Path(alpha.root, "usr", "share", "alpha_1.0-2_all.deb")
    assert unpacked.read_text() == "deb of alpha\n"
    # the private lists: one update, then one download of both packages from them
    assert len(calls(fake, " update")) == 1
    (dl,) = calls(fake, " download ")
    assert "Dir::State::Lists=" in dl and dl.endswith("download alpha beta")
    assert len(calls(fake, "dpkg-deb -x")) == 2

    again = fetch(["alpha", "beta"], work)
    assert again == got
    assert len(calls(fake, " download ")) == 1  # nothing downloaded again
    assert len(calls(fake, "dpkg-deb -x")) == 2  # nothing unpacked again


def test_only_missing_packages_are_downloaded(fake, tmp_path):
    work = tmp_path / "work"
    (work / "debs").mkdir(parents=True)
    (work / "debs" / "alpha_0.9_all.deb").write_text("old alpha\n")
    download(["alpha", "beta"], str(work))
    (dl,) = calls(fake, " download ")
    assert dl.endswith("download beta")


def test_new_deb_is_extracted_again_and_old_files_go(fake, tmp_path):
    work = tmp_path / "work"
    debs = work / "debs"
    debs.mkdir(parents=True)
    (debs / "alpha_1.0_all.deb").write_text("v1\n")
    root = Path(extract("alpha", str(work)))
    assert (root / "usr/share/alpha_1.0_all.deb").exists()
    (debs / "alpha_2.0_all.deb").write_text("v2\n")  # sorts last: the newer one
    assert extract("alpha", str(work)) == str(root)
    assert (root / "usr/share/alpha_2.0_all.deb").read_text() == "v2\n"
    assert not (root / "usr/share/alpha_1.0_all.deb").exists()
    assert (root / ".extracted-from").read_text() == "alpha_2.0_all.deb\n"
    assert len(calls(fake, "dpkg-deb -x")) == 2


def test_failed_unpack_leaves_no_stamp(fake, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "debs").mkdir(parents=True)
    (work / "debs" / "alpha_1.0_all.deb").write_text("v1\n")
    monkeypatch.setenv("FAKE_DPKG_FAILS", "1")
    with pytest.raises(DebianError, match=r"could not unpack .*alpha_1.0_all.deb"):
        extract("alpha", str(work))
    assert not (work / "extract" / "alpha").exists()
    assert not (work / "extract" / "alpha.partial").exists()
    monkeypatch.delenv("FAKE_DPKG_FAILS")
    assert Path(extract("alpha", str(work)), ".extracted-from").exists()


def test_unknown_package_names_it_and_says_what_to_do(fake, tmp_path):
    with pytest.raises(DebianError) as err:
        fetch(["alpha", "missing-pkg"], str(tmp_path / "work"))
    msg = str(err.value)
    assert msg.startswith("could not download missing-pkg\n")
    assert "Unable to locate package missing-pkg" in msg
    assert "sudo apt-get update" in msg
    # the private lists were tried, then the system lists, for the missing one only
    downloads = calls(fake, " download ")
    assert len(downloads) == 2
    assert "Dir::State::Lists=" in downloads[0]
    assert downloads[1] == "apt-get -q download missing-pkg"


def test_failed_update_falls_back_to_system_lists(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPDATE_FAILS", "1")
    work = tmp_path / "work"
    download(["alpha"], str(work))
    (dl,) = calls(fake, " download ")
    assert dl == "apt-get -q download alpha"
    assert (work / "debs" / "alpha_1.0-2_all.deb").exists()


def test_no_apt_get(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no apt-get
    with pytest.raises(DebianError, match=r"apt-get not found.*of alpha into"):
        download(["alpha"], str(tmp_path / "work"))


def test_extract_without_deb(tmp_path):
    with pytest.raises(DebianError, match=r"no \.deb for alpha in .*apt-get download"):
        extract("alpha", str(tmp_path / "work"))


@pytest.mark.parametrize("recipe", ["asr-cs", "asr-en", "mt-de-en"])
def test_scripts_find_the_helper_from_any_directory(recipe, tmp_path):
    script = RECIPES / recipe / "prepare_data.py"
    r = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


@pytest.fixture
def system_sources(tmp_path, monkeypatch) -> Path:
    """The system's apt sources, one of each format, in tmp_path/etc."""
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(
        "# a comment\ndeb http://deb.example/debian stable main\n"
    )
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian\nSuites: stable\n"
        "Components: main\n"
    )
    monkeypatch.setattr(debian, "SYSTEM_SOURCES", str(etc / "sources.list"))
    monkeypatch.setattr(debian, "SYSTEM_SOURCE_PARTS", str(etc / "sources.list.d"))
    return etc


def test_fetch_source_downloads_the_tarball_once_with_deb_src_lists(
    fake, system_sources, tmp_path, monkeypatch
):
    work = tmp_path / "work"
    monkeypatch.setenv("FAKE_SOURCE_PARTIAL", "1")  # the tarball is what counts
    got = fetch_source("gamma", str(work))
    assert got == str(work / "src" / "gamma_1.0.orig.tar.xz")
    apt = work / "src-apt"
    assert (apt / "sources.list").read_text() == (
        "deb-src http://deb.example/debian stable main\n"
    )
    parts = (apt / "sources.list.d" / "debian.sources").read_text()
    assert parts.startswith("Types: deb-src\nURIs: http://deb.example/debian")
    (update,) = calls(fake, " update")
    assert f"Dir::State::Lists={work / 'src-lists'}" in update
    assert "Dir::Etc::SourceParts=" in update
    assert fetch_source("gamma", str(work)) == got
    assert len(calls(fake, " source ")) == 1  # not downloaded again


def test_fetch_source_names_a_package_it_cannot_get(fake, system_sources, tmp_path):
    with pytest.raises(DebianError, match="could not download the source package"):
        fetch_source("missing-delta", str(tmp_path / "work"))
