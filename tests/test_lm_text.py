"""recipes/lm-cs/prepare_text.py and czech_text.py: readers, markup, filters,
and the whole script against fake `apt-get` and `dpkg-deb` (no network)."""

from __future__ import annotations

import gzip
import json
import os
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

LM_CS = Path(__file__).resolve().parents[1] / "recipes" / "lm-cs"
sys.path.insert(0, str(LM_CS))
import apt_index  # noqa: E402
import czech_text as ct  # noqa: E402
import prepare_text as pt  # noqa: E402


def write_mo(path: Path, entries: dict[str, str], big_endian: bool = False) -> None:
    """A .mo catalogue as GNU msgfmt lays it out (sorted ids, no hash table)."""
    end = ">" if big_endian else "<"
    keys = sorted(entries)
    ids = [k.encode() for k in keys]
    strs = [entries[k].encode() for k in keys]
    n = len(keys)
    off_ids, off_strs = 28, 28 + 8 * n
    pos = 28 + 16 * n
    blob, table_ids, table_strs = b"", b"", b""
    for table, items in (("ids", ids), ("strs", strs)):
        for s in items:
            entry = struct.pack(end + "2I", len(s), pos + len(blob))
            if table == "ids":
                table_ids += entry
            else:
                table_strs += entry
            blob += s + b"\0"
    head = struct.pack(end + "7I", 0x950412DE, 0, n, off_ids, off_strs, 0, 0)
    path.write_bytes(head + table_ids + table_strs + blob)


# --------------------------------------------------------------------------
# readers


@pytest.mark.parametrize("big_endian", [False, True])
def test_mo_reader_reads_what_the_test_wrote(tmp_path, big_endian):
    mo = tmp_path / "x.mo"
    entries = {
        "": "Content-Type: text/plain; charset=UTF-8\n",
        "Open file": "Otevřít soubor",
        "menu\x04Close": "Zavřít",
        "%d file\x00%d files": "%d soubor\x00%d soubory\x00%d souborů",
        "OK": "OK",  # left untranslated
    }
    write_mo(mo, entries, big_endian)
    assert ct.read_mo(mo.read_bytes()) == entries
    segs = list(ct.mo_segments(mo.read_bytes()))
    assert sorted(segs) == sorted(
        ["Otevřít soubor", "Zavřít", "%d soubor", "%d soubory", "%d souborů"]
    )


def test_mo_reader_rejects_other_files():
    with pytest.raises(ct.MoError, match=r"bad\.mo: not a \.mo file"):
        ct.read_mo(b"x" * 40, "bad.mo")
    with pytest.raises(ct.MoError, match="too short"):
        ct.read_mo(b"\xde\x12\x04\x95", "short.mo")


def test_ftl_values_attributes_and_key_messages():
    ftl = (
        "# comment\n"
        "save-button = Uložit { $name } hned\n"
        "    .title = Uloží dokument\n"
        "    .accesskey = U\n"
        "long-text =\n"
        "    První řádek\n"
        "    druhý řádek.\n"
        "-brand = Firefox\n"
        "menu-key = S\n"
        "count =\n"
        "    { $n ->\n"
        "        [one] Jeden soubor\n"
        "       *[other] { $n } souborů\n"
        "    }\n"
    )
    assert list(ct.ftl_segments(ftl)) == [
        "Uložit { $name } hned",
        "Uloží dokument",
        "První řádek druhý řádek.",
        "Firefox",
        "Jeden soubor",
        "{ $n } souborů",
    ]


def test_properties_values_plurals_and_escapes():
    text = (
        "# comment\n! also\n"
        "a.label = Stáhnout soubor\\u0020znovu\n"
        "a.accesskey = S\n"
        "b = jeden řádek \\\n    pokračuje\n"
        "c = #1 soubor;#1 soubory;#1 souborů\n"
    )
    assert list(ct.properties_segments(text)) == [
        "Stáhnout soubor znovu",
        "jeden řádek pokračuje",
        "#1 soubor",
        "#1 soubory",
        "#1 souborů",
    ]


def test_xpi_reads_ftl_and_properties(tmp_path):
    xpi = tmp_path / "lang.xpi"
    with zipfile.ZipFile(xpi, "w") as z:
        z.writestr("a/b.ftl", "m = Dobrý den\n")
        z.writestr("c.properties", "k = Na shledanou\n")
        z.writestr("manifest.json", '{"name": "nothing"}')
    assert list(ct.xpi_segments(str(xpi))) == ["Dobrý den", "Na shledanou"]


def test_html_keeps_running_text_only():
    page = (
        "<html><head><title>Titulek</title><script>var x = 1;</script></head>"
        "<body><header>Nápověda</header><p>První <b>tučný</b> odstavec.</p>"
        "<pre>kód</pre><ul><li>Položka &amp; další</li></ul></body></html>"
    )
    assert list(ct.html_segments(page)) == ["První tučný odstavec.", "Položka & další"]
    switch = (
        '<p>Zvolte <span class="switchinline"><span hidden="true" class="MAC">'
        '<span class="emph">Předvolby</span></span><span hidden="true">'
        '<span class="emph">Nástroje - Možnosti</span></span></span> a dál.</p>'
    )
    assert list(ct.html_segments(switch)) == ["Zvolte Nástroje - Možnosti a dál."]


def test_descriptions_fortunes_and_hunspell():
    index = (
        "Package: a\nDescription-md5: 0\nDescription-cs: Krátký popis\n"
        " Dlouhý popis na\n dva řádky.\n .\n  * odrážka jedna\n  * odrážka dvě\n\n"
        "Package: b\nDescription-cs: Jiný\n"
    )
    assert [s.strip() for s in ct.description_segments(index)] == [
        "Krátký popis",
        "Dlouhý popis na dva řádky.",
        "odrážka jedna",
        "odrážka dvě",
        "Jiný",
    ]
    fortunes = (
        "První moudro\nna dva řádky.\n%\nDruhé moudro.\n    -- Autor\n%\n"
        "- Pane doktore, bolí mě to.\n- Tak tam nechoďte.\n\t\t— Vtip\n%\n"
    )
    assert list(ct.fortune_segments(fortunes)) == [
        "První moudro na dva řádky.",
        "Druhé moudro.",
        "- Pane doktore, bolí mě to. - Tak tam nechoďte.",
    ]
    assert list(ct.hunspell_words("3\nabeceda/H\nČech/PV\nslovo\n")) == [
        "abeceda",
        "Čech",
        "slovo",
    ]


def test_hunspell_forms_follow_the_affix_rules():
    aff = """SET UTF-8
FORBIDDENWORD q
PFX N Y 1
PFX N   0     ne     .
PFX X N 1
PFX X   0     pra    .
SFX H Y 3
SFX H   a     y      a
SFX H   a     ou     [^k]a
SFX H   0     ův/Y   [^a]
SFX Y Y 1
SFX Y   0     a      ův
"""
    dic = "4\nryba/HN\nruka/HX\nPetr/H\nzlo/Nq\nslovo\n"
    forms = set(ct.hunspell_forms(dic, aff))
    assert forms == {
        "ryba", "ryby", "rybou", "neryba", "neryby", "nerybou",  # cross product
        "ruka", "ruky", "praruka",  # [^k]a does not fit ruka; X crosses nothing
        "Petr", "Petrův", "Petrůva",  # -ův, then its own suffix (continuation)
        "slovo",  # no flags; zlo is forbidden
    }  # fmt: skip


def test_list_files_are_read_compressed_or_not(tmp_path):
    plain = tmp_path / "x_i18n_Translation-cs"
    plain.write_text("Description-cs: á\n", encoding="utf-8")
    packed = tmp_path / "x_i18n_Translation-cs.gz"
    packed.write_bytes(gzip.compress("Description-cs: é\n".encode()))
    assert apt_index.read_list_file(str(plain)) == "Description-cs: á\n"
    assert apt_index.read_list_file(str(packed)) == "Description-cs: é\n"


# --------------------------------------------------------------------------
# markup, sentences, filters


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("~Soubor a ~Úpravy", "Soubor a Úpravy"),
        ("_Otevřít soubor", "Otevřít soubor"),
        ("<b>Tučné</b> písmo", "Tučné písmo"),
        ("Tisk &amp; export", "Tisk & export"),
        ("Soubor %s nelze otevřít", "Soubor nelze otevřít"),
        ("Stránka %1$S z %2$S", "Stránka z"),
        ("Nastavení %PRODUCTNAME a $(ARG1) a %1", "Nastavení a a"),
        ("{ $count } souborů { -brand-name }", "souborů"),
        ("{ $n -> [one] soubor *[other] { $n } souborů }", ""),
        ("Hotovo: 100%%", "Hotovo: 100"),
    ],
)
def test_strip_markup(raw, clean):
    assert ct.strip_markup(raw) == clean


def test_split_sentences():
    text = "První věta. Druhá věta! Třetí? atd. pokračuje… „Čtvrtá“. - Pátá."
    assert ct.split_sentences(text) == [
        "První věta.",
        "Druhá věta!",
        "Třetí? atd. pokračuje…",
        "„Čtvrtá“.",
        "- Pátá.",
    ]


@pytest.fixture(scope="module")
def normalize():
    return pt.load_normalize()


def test_normalisation_is_the_transcripts_own(normalize):
    assert normalize("  Žluťoučký KŮŇ, úpěl: „ďábelské ódy“!  ") == (
        "žluťoučký kůň úpěl ďábelské ódy"
    )


def test_filter_drops_by_reason_and_counts(normalize):
    charset = set(" abcdeghijklmnoprstuvyzáéíýčěřšůžň0123")  # no f q w x
    keep = pt.Filter(
        normalize, charset, leaks={"to je ta ryba"}, min_words=3, drop_digits=True
    )
    segments = [
        "Dobrý den, jak se máte?",  # kept
        "dobrý den JAK se máte",  # the same once normalised: a duplicate
        "To je ta ryba.",  # a validation/test transcript: a leak
        "Ahoj světe.",  # two words: short
        "Verze 2 je lepší",  # digits
        "Quick brown fox",  # q, w, f, x are outside the set
        "to je ono tady",  # no Czech letter with a diacritic
        "~?!",  # nothing left
        "První věta je tady. Druhá věta je tam.",  # two sentences, both kept
    ]
    assert list(keep("src", segments)) == [
        "dobrý den jak se máte",
        "první věta je tady",
        "druhá věta je tam",
    ]
    c = keep.counts["src"]
    assert c["segments"] == len(segments) and c["lines"] == 3
    kept = ["dobrý den jak se máte", "první věta je tady", "druhá věta je tam"]
    assert c["chars"] == sum(len(x) for x in kept)
    for reason in ("duplicate", "leak", "short", "digits", "characters"):
        assert c["drop_" + reason] == 1, reason
    assert c["drop_no_czech_letter"] == 1 and c["drop_empty"] == 1
    assert {"q", "w", "f", "x"} <= set(keep.outside)
    # a later source does not repeat a line an earlier one gave
    assert list(keep("other", ["Dobrý den, jak se máte."])) == []
    assert keep.counts["other"]["drop_duplicate"] == 1


# --------------------------------------------------------------------------
# the whole script, with fake apt-get and dpkg-deb

# apt-get: `update` writes a Packages file, and the Translation-cs index when
# asked for Acquire::Languages=cs, into Dir::State::Lists; `download` writes
# <pkg>_1.0_all.deb into the current directory.
FAKE_APT = r"""#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
lists=""; cs=""; cmd=""; pkgs=""
for a in "$@"; do
  case "$a" in
    Dir::State::Lists=*) lists="${a#Dir::State::Lists=}";;
    Acquire::Languages=cs) cs=1;;
    update|download) cmd="$a";;
    -*|Dir::*|Acquire::*) ;;
    *) [ "$cmd" = download ] && pkgs="$pkgs $a";;
  esac
done
if [ "$cmd" = update ]; then
  touch "$lists/deb.example_dists_main_binary-amd64_Packages"
  printf 'Date: Sat, 11 Jul 2026 10:16:37 UTC\n' > "$lists/x_dists_InRelease"
  [ -n "$cs" ] && cp "$FAKE_TRANSLATION" "$lists/x_dists_main_i18n_Translation-cs"
  exit 0
fi
for p in $pkgs; do echo "deb of $p" > "${p}_1.0_all.deb"; done
"""
# dpkg-deb: -x DEB DIR copies $FAKE_TREES/<package>/ into DIR; -f says 1.0.
FAKE_DPKG = r"""#!/bin/sh
echo "dpkg-deb $*" >> "$FAKE_LOG"
case "$1" in
  -x) pkg=$(basename "$2" | cut -d_ -f1); cp -r "$FAKE_TREES/$pkg/." "$3/";;
  -f) echo "1.0";;
esac
"""


def make_trees(root: Path) -> None:
    """One small package tree per source, each with a line of its own."""

    def put(pkg: str, rel: str, text: str | bytes) -> Path:
        p = root / pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p

    put(
        "fortunes-cs", "usr/share/games/fortunes/cs/moudra", "Ryba smrdí od hlavy.\n%\n"
    )
    put("fortunes-cs", "usr/share/games/fortunes/cs/moudra.dat", b"\0\0\0\2")
    put("fortunes-cs", "usr/share/games/fortunes/cs/vtipy-sk", "Ryba je tu, či nie?\n")
    put(
        "aptitude-doc-cs",
        "usr/share/doc/aptitude/html/cs/a.html",
        "<p>Správce balíčků v textovém režimu.</p><p>Ryba smrdí od hlavy.</p>",
    )
    put(
        "gimp-help-cs",
        "usr/share/gimp/2.0/help/cs/x/b.html",
        "<p>Vrstvy obrázku se dají skrýt.</p><p>Ryba smrdí od hlavy.</p>",
    )
    put(
        "libreoffice-help-cs",
        "usr/share/libreoffice/help/cs/text/c.html",
        "<p>Zvolte <b>Soubor</b> a potom uložte dokument.</p>",
    )
    mo = root / "libreoffice-l10n-cs/usr/lib/libreoffice/program/resource/cs"
    mo = mo / "LC_MESSAGES" / "sw.mo"
    mo.parent.mkdir(parents=True)
    write_mo(mo, {"": "h", "Save ~As": "Uložit ~jako nový soubor", "x": "Máš tam rybu"})
    for pkg, rel in (
        ("firefox-esr-l10n-cs", "usr/lib/firefox-esr/browser/extensions/l.xpi"),
        ("thunderbird-l10n-cs", "usr/lib/thunderbird/extensions/l.xpi"),
    ):
        xpi = root / pkg / rel
        xpi.parent.mkdir(parents=True)
        with zipfile.ZipFile(xpi, "w") as z:
            z.writestr(
                "m.ftl",
                f"a = Stránka {'{'} $n {'}'} nebyla nalezena ({pkg[:3]}) v síti\n",
            )
    put("hunspell-cs", "usr/share/hunspell/cs_CZ.dic", "3\nryba/H\nQuark\nčíslo/Z\n")
    put("hunspell-cs", "usr/share/hunspell/cs_CZ.aff", "SFX H Y 1\nSFX H a y a\n")


def write_manifests(d: Path) -> None:
    d.mkdir(parents=True)
    for split, texts in (
        ("train", ["ryba smrdí od hlavy", "abcdefghijklmnoprstuvwxyz áéíóúýčďěňřšťůž"]),
        ("valid", ["máš tam rybu"]),
        ("test", ["a tak dál"]),
    ):
        rows = [
            f"{split}{i}\tx.ogg\t1.0\t{t}\t{t}\tlvl\tm" for i, t in enumerate(texts)
        ]
        head = "id\tpath\tduration\ttext\traw_text\tlevel\tspeaker\n"
        (d / f"{split}.tsv").write_text(head + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def fake_debian(tmp_path, monkeypatch) -> Path:
    """Fake tools first on PATH, package trees and a Translation-cs index."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("apt-get", FAKE_APT), ("dpkg-deb", FAKE_DPKG)):
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    make_trees(tmp_path / "trees")
    translation = tmp_path / "Translation-cs"
    translation.write_text(
        "Package: x\nDescription-cs: Hra o rybách\n"
        " Dvě ryby řeší hlavolamy pod vodou.\n",
        encoding="utf-8",
    )
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_TREES", str(tmp_path / "trees"))
    monkeypatch.setenv("FAKE_TRANSLATION", str(translation))
    write_manifests(tmp_path / "asr")
    return log


def test_whole_script_with_fake_packages(fake_debian, tmp_path, capsys):
    work, out = tmp_path / "work", tmp_path / "out"
    argv = ["--work", str(work), "--out", str(out), "--asr-data", str(tmp_path / "asr")]
    assert pt.main(argv) == 0
    lines = (out / "extra.cs").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "ryba smrdí od hlavy",  # fortunes (the -sk file and the .dat index left out)
        "hra o rybách",  # descriptions: the short description,
        "dvě ryby řeší hlavolamy pod vodou",  # then the long one
        "správce balíčků v textovém režimu",  # aptitude-doc (+ a duplicate)
        "zvolte soubor a potom uložte dokument",  # libreoffice-help
        "uložit jako nový soubor",  # libreoffice-ui ("máš tam rybu": a leak)
        "stránka nebyla nalezena fir v síti",  # firefox-ui
        "stránka nebyla nalezena thu v síti",  # thunderbird-ui
    ]
    assert (out / "lexicon.cs").read_text(
        encoding="utf-8"
    ) == "ryba\nčíslo\n"  # code-point order
    stats = json.loads((out / "extra.stats.json").read_text(encoding="utf-8"))
    assert stats["total"] == {
        "lines": 8,
        "chars": sum(len(x) for x in lines),
        "words": sum(len(x.split()) for x in lines),
    }
    assert stats["drops"]["leak"] == 1 and stats["drops"]["duplicate"] == 1
    assert stats["sources"]["libreoffice-ui"]["drop_leak"] == 1
    assert stats["sources"]["fortunes"]["files"] == 1
    assert stats["sources"]["descriptions"]["package"] == "Translation-cs"
    assert stats["sources"]["descriptions"]["version"] == (
        "x_dists_main_i18n_Translation-cs (Sat, 11 Jul 2026 10:16:37 UTC)"
    )
    assert stats["sources"]["aptitude-doc"]["version"] == "1.0"
    assert stats["leaked"] == {"máš tam rybu": 1}
    assert "gimp-help" not in stats["sources"]  # only with --sources
    assert stats["lexicon"]["words"] == 2 and stats["options"]["leak_lines"] == 2
    forms = (out / "forms.cs").read_text(encoding="utf-8")
    assert forms == "ryba\nryby\nčíslo\n" and stats["lexicon"]["forms"] == 3
    # the Czech descriptions came from an update with Acquire::Languages=cs
    log = fake_debian.read_text()
    assert log.count(" update") == 1 and "Acquire::Languages=cs" in log
    assert log.count("dpkg-deb -x") == 7  # seven packages, one index
    assert "gimp-help-cs" not in log
    # a second run downloads and unpacks nothing again, and writes the same
    assert pt.main(argv) == 0
    assert fake_debian.read_text().count(" download ") == 1
    assert fake_debian.read_text().count("dpkg-deb -x") == 7
    assert (out / "extra.cs").read_text(encoding="utf-8").splitlines() == lines
    # GIMP's help when asked for
    assert pt.main([*argv, "--sources", "gimp-help"]) == 0
    text = (out / "extra.cs").read_text(encoding="utf-8")
    assert text == "vrstvy obrázku se dají skrýt\nryba smrdí od hlavy\n"


def test_bad_input_is_one_line_and_exit_1(fake_debian, tmp_path, capsys):
    mo = tmp_path / "trees/libreoffice-l10n-cs/usr/lib/libreoffice/program"
    (mo / "resource/cs/LC_MESSAGES/sw.mo").write_bytes(b"not a catalogue" * 3)
    argv = ["--work", str(tmp_path / "w"), "--asr-data", str(tmp_path / "asr")]
    assert pt.main([*argv, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "sw.mo: not a .mo file" in err
    assert not (tmp_path / "o").exists()
    assert pt.main([*argv, "--sources", "fortunes,novels"]) == 1
    assert "unknown source(s) novels" in capsys.readouterr().err


def test_script_runs_from_any_directory(tmp_path):
    r = subprocess.run(
        [sys.executable, str(LM_CS / "prepare_text.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout and "--drop-digits" in r.stdout
