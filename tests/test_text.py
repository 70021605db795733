import pytest

from s2s.data.prep_text import PrepOptions, prep_text
from s2s.data.text import iter_lines, iter_parallel
from s2s.errors import S2SError


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_parallel_reads_and_normalises(tmp_path):
    s = _write(tmp_path / "a.de", "\ufeffeins  zwei\r\ndrei\tvier\n".encode())
    t = _write(tmp_path / "a.en", b"one two\nthree four")
    assert list(iter_parallel(s, t)) == [
        (1, "eins zwei", "one two"),
        (2, "drei vier", "three four"),
    ]


@pytest.mark.parametrize("longer", ["src", "tgt"])
def test_unequal_line_counts_name_the_files(tmp_path, longer):
    s = _write(tmp_path / "a.de", b"a\nb\nc\n" if longer == "src" else b"a\nb\n")
    t = _write(tmp_path / "a.en", b"a\nb\nc\n" if longer == "tgt" else b"a\nb\n")
    long_path, short_path = (s, t) if longer == "src" else (t, s)
    with pytest.raises(S2SError) as e:
        list(iter_parallel(s, t))
    assert f"{short_path} has 2 lines" in str(e.value)
    assert f"{long_path}:3" in str(e.value)


def test_empty_line_is_an_error_naming_file_and_line(tmp_path):
    s = _write(tmp_path / "a.de", b"a\n\nc\n")
    t = _write(tmp_path / "a.en", b"a\nb\nc\n")
    with pytest.raises(S2SError, match=rf"{s}:2: empty line"):
        list(iter_parallel(s, t))
    assert [n for n, _, _ in iter_parallel(s, t, drop_empty=True)] == [1, 3]


def test_non_utf8_names_file_line_and_byte(tmp_path):
    p = _write(tmp_path / "x.txt", b"ok\nbad \xff byte\n")
    with pytest.raises(
        S2SError, match=rf"{p}:2: not valid UTF-8 \(byte 0xff at column 5\)"
    ):
        list(iter_lines(p))


def test_nul_byte_is_an_error(tmp_path):
    p = _write(tmp_path / "x.txt", b"ok\nnul\x00here\n")
    with pytest.raises(S2SError, match=rf"{p}:2: contains a NUL byte"):
        list(iter_lines(p))


def test_prep_reports_what_it_dropped(tmp_path):
    src = ["eins zwei"] * 30 + ["eins " * 100, "eins", ""]
    tgt = ["one two"] * 30 + ["one", "one " * 40, "two"]
    (tmp_path / "t.de").write_text("\n".join(src) + "\n")
    (tmp_path / "t.en").write_text("\n".join(tgt) + "\n")
    (tmp_path / "v.de").write_text("eins\n")
    (tmp_path / "v.en").write_text("one\n")
    opts = PrepOptions(
        src="de",
        tgt="en",
        train=str(tmp_path / "t"),
        valid=str(tmp_path / "v"),
        vocab_size=30,
        max_len=50,
        drop_empty=True,
    )
    logs = []
    stats = prep_text(opts, tmp_path / "bin", log=logs.append)
    assert stats["train"]["lines"] == 33
    assert stats["train"]["kept"] == 30
    assert stats["train"]["dropped_empty"] == 1
    assert stats["train"]["dropped_too_long"] == 1
    assert stats["train"]["dropped_ratio"] == 1
    assert any("kept 30 of 33" in m and "1 too_long" in m for m in logs)
