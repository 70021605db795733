"""Bad input for the text readers, generated: every file either reads with its line
count kept, or fails with an `S2SError` naming the file and the first bad line."""

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s.data.prep_text import PrepOptions, prep_text
from s2s.data.text import iter_lines, iter_parallel
from s2s.decode.run import read_aligned
from s2s.errors import S2SError

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Text with the characters that go wrong: CR, BOM, NUL, tabs, odd spaces and line
# separators, combining marks (NFC), and astral characters.
NASTY = st.text(
    st.sampled_from("ab é\r\t\ufeff\x00\u00a0\u2028\u0085e\u0301\U0001f600\x0b")
    | st.characters(codec="utf-8"),
    max_size=12,
)


@st.composite
def text_files(draw) -> bytes:
    """UTF-8 lines with CRLF or LF endings, then maybe one corruption."""
    lines = draw(st.lists(NASTY, max_size=8))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = b"".join(line.encode() + eol for line in lines)
    cut = draw(st.integers(0, len(data)))
    corrupt = draw(
        st.sampled_from(["none", "bad byte", "truncated char", "bom", "no final eol"])
    )
    if corrupt == "bad byte":
        data = (
            data[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80"])) + data[cut:]
        )
    elif corrupt == "truncated char":
        data += "€".encode()[:2]  # a multibyte character cut off at EOF
    elif corrupt == "bom":
        data = data[:cut] + "\ufeff".encode() + data[cut:]
    elif corrupt == "no final eol":
        data = data.rstrip(b"\n")
    return data


def raw_lines(data: bytes) -> list[bytes]:
    """Lines as the readers must count them: LF-terminated, the last maybe not."""
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def is_bad(raw: bytes) -> bool:
    try:
        return "\x00" in raw.decode("utf-8")
    except UnicodeDecodeError:
        return True


def check_clean(line: str) -> None:
    assert line == " ".join(line.split())  # whitespace folded, CRs included
    assert "\x00" not in line and "\ufeff" not in line and "\n" not in line
    assert line == unicodedata.normalize("NFC", line)


def error_line(err: S2SError, path) -> int:
    m = re.match(rf"{re.escape(str(path))}:(\d+): ", str(err))
    assert m, f"error does not start with {path}:LINE: {err}"
    return int(m.group(1))


@pytest.fixture
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=text_files() | st.binary(max_size=200))
def test_fuzz_iter_lines_keeps_count_or_names_first_bad_line(files, data):
    path = files / "in.txt"
    path.write_bytes(data)
    lines = raw_lines(data)
    try:
        got = list(iter_lines(path))
    except S2SError as e:
        k = error_line(e, path)
        assert is_bad(lines[k - 1]) and not any(map(is_bad, lines[: k - 1])), str(e)
        return
    assert len(got) == len(lines)  # nothing lost, nothing split
    assert not any(map(is_bad, lines))
    for line in got:
        check_clean(line)


@st.composite
def parallel_files(draw) -> tuple[bytes, bytes, bool]:
    n = draw(st.integers(0, 6))
    src = draw(st.lists(NASTY, min_size=n, max_size=n))
    tgt = draw(st.lists(NASTY, min_size=n, max_size=n))
    extra = draw(st.lists(st.text(max_size=3), max_size=2))  # unequal counts
    (src if draw(st.booleans()) else tgt).extend(extra)
    enc = [b"".join(s.encode() + b"\n" for s in side) for side in (src, tgt)]
    if draw(st.booleans()):  # one invalid byte somewhere in one file
        k = draw(st.integers(0, 1))
        cut = draw(st.integers(0, len(enc[k])))
        enc[k] = enc[k][:cut] + b"\xfe" + enc[k][cut:]
    return enc[0], enc[1], draw(st.booleans())


@FUZZ
@given(case=parallel_files())
def test_fuzz_parallel_counts_pairs_or_names_file_and_line(files, case):
    data_s, data_t, drop_empty = case
    s, t = files / "p.de", files / "p.en"
    s.write_bytes(data_s)
    t.write_bytes(data_t)
    ls, lt = raw_lines(data_s), raw_lines(data_t)
    try:
        got = list(iter_parallel(s, t, drop_empty=drop_empty))
    except S2SError as e:
        msg = str(e)
        if " lines but " in msg:  # unequal counts: name both, the first extra line
            assert len(ls) != len(lt)
            short, long_ = (s, t) if len(ls) < len(lt) else (t, s)
            assert msg.startswith(f"{short} has {min(len(ls), len(lt))} lines")
            assert f"{long_}:{min(len(ls), len(lt)) + 1}" in msg
            return
        path, lines = (s, ls) if msg.startswith(str(s)) else (t, lt)
        k = error_line(e, path)
        bad_or_empty = is_bad(lines[k - 1]) or not " ".join(
            lines[k - 1].decode().replace("\ufeff", "").split()
        )
        assert bad_or_empty, msg
        assert not any(map(is_bad, ls[: k - 1] + lt[: k - 1])), msg  # the first
        return
    assert len(ls) == len(lt)
    dropped = len(ls) - len(got)
    assert dropped == 0 or drop_empty  # only asked-for skips, and they are counted
    for _, src, tgt in got:
        assert src and tgt
        check_clean(src)
        check_clean(tgt)


@pytest.mark.parametrize("reader", ["iter_lines", "iter_parallel", "read_aligned"])
def test_missing_file_and_directory_name_the_path(tmp_path, reader):
    ok = tmp_path / "ok.txt"
    ok.write_text("a\n")
    for bad, reason in ((tmp_path / "nope.txt", "No such file"), (tmp_path, "direc")):
        with pytest.raises(S2SError, match=rf"^{re.escape(str(bad))}: .*{reason}"):
            if reader == "iter_lines":
                list(iter_lines(bad))
            elif reader == "iter_parallel":
                list(iter_parallel(ok, bad))
            else:
                read_aligned(bad, ok)


def test_bom_mid_file_and_lone_cr(tmp_path):
    """`cat a b` leaves b's byte-order mark at a line start: it is not text. A lone
    CR is whitespace; lines end at LF only, as `wc -l` counts them."""
    p = tmp_path / "x.txt"
    p.write_bytes("\ufeffone\n\ufefftwo\r\nthree\rfour\nfi\ufeffve".encode())
    assert list(iter_lines(p)) == ["one", "two", "three four", "five"]


def test_utf16_is_named(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes("hallo\n".encode("utf-16"))
    with pytest.raises(S2SError, match=r"x\.txt:1: not valid UTF-8 .*UTF-16"):
        list(iter_lines(p))


def test_huge_lines_are_dropped_and_counted_by_prep(tmp_path):
    """A 200k-character line (no limit on the bytes read) is over `max_len` tokens:
    prep drops the pair from training and says so; held-out lines are kept."""
    huge = "eins zwei " * 20_000
    (tmp_path / "t.de").write_text("eins zwei\n" * 20 + huge + "\n")
    (tmp_path / "t.en").write_text("one two\n" * 21)
    (tmp_path / "v.de").write_text(huge + "\n")
    (tmp_path / "v.en").write_text("one\n")
    opts = PrepOptions(
        src="de",
        tgt="en",
        train=str(tmp_path / "t"),
        valid=str(tmp_path / "v"),
        vocab_size=12,
    )
    logs = []
    stats = prep_text(opts, tmp_path / "bin", log=logs.append)
    assert stats["train"]["lines"] == 21 and stats["train"]["kept"] == 20
    assert stats["train"]["dropped_too_long"] == 1
    assert any("kept 20 of 21" in m and "1 too_long" in m for m in logs)
    assert stats["valid"]["kept"] == 1
