"""SHA256SUMS.txt parsing: PhysioNet's format, hand-made variants, and refusal of unsafe paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecg_instruct.download.manifest import (
    Entry,
    _parse_lines,
    join_under,
    parse_manifest,
    safe_relpath,
)
from ecg_instruct.errors import UserError

D1 = hashlib.sha256(b"1").hexdigest()
D2 = hashlib.sha256(b"2").hexdigest()


def test_physionet_format_two_spaces() -> None:
    text = f"{D1}  ptbxl_database.csv\n{D2}  records500/00000/00001_hr.dat\n"
    manifest = parse_manifest(text, "u")
    assert manifest.entries == [Entry("ptbxl_database.csv", D1),
                                Entry("records500/00000/00001_hr.dat", D2)]
    assert manifest.by_path["ptbxl_database.csv"].sha256 == D1


@pytest.mark.parametrize("line", [
    f"{D1} a/b.dat", f"{D1}\ta/b.dat", f"{D1} *a/b.dat", f"{D1.upper()}  a/b.dat",
    f"{D1}  ./a//b.dat  ", f"{D1}  a/b.dat\r",
])
def test_variants_accepted_and_normalised(line: str) -> None:
    text = f"# made by hand\n\n{line}\n"
    assert parse_manifest(text, "u").entries == [Entry("a/b.dat", D1)]


def test_stems_group_wfdb_files() -> None:
    text = (f"{D1}  records500/00000/00001_hr.hea\n{D2}  records500/00000/00001_hr.dat\n"
            f"{D1}  records500/00000/00002_hr.hea\n{D1}  RECORDS\n")
    manifest = parse_manifest(text, "u")
    assert [e.path for e in manifest.files_for_stem("records500/00000/00001_hr")] == [
        "records500/00000/00001_hr.hea", "records500/00000/00001_hr.dat"]
    assert manifest.files_for_stem("records500/00000/00003_hr") == []
    assert manifest.files_for_stem("RECORDS") == []


@pytest.mark.parametrize("path", [
    "../x", "a/../../x", "a/..", "/etc/passwd", "C:/x", "..\\x", "a\\b", "a\x00b", "a\nb", ".",
    "./", "/",
])
def test_unsafe_paths_refused(path: str) -> None:
    with pytest.raises(ValueError):
        safe_relpath(path)


@pytest.mark.parametrize("path", ["../x", "/abs/x", "ok/../../x", "..\\x", "a/..", "."])
def test_checksum_file_with_unsafe_path_refused_whole(path: str) -> None:
    text = f"{D1}  good.csv\n{D2}  {path}\n"
    with pytest.raises(UserError, match="line 2 .*refusing the whole checksum file") as info:
        parse_manifest(text, "http://mirror/SHA256SUMS.txt")
    assert str(info.value).startswith("http://mirror/SHA256SUMS.txt: ")


def test_conflicting_duplicate_refused_and_identical_duplicate_kept() -> None:
    assert len(parse_manifest(f"{D1}  a\n{D1}  a\n", "u")) == 1
    with pytest.raises(UserError, match="twice with different checksums"):
        parse_manifest(f"{D1}  a\n{D2}  ./a\n", "u")


@pytest.mark.parametrize("text, message", [
    ("<html>404</html>\n", "line 1 is not"), ("", "lists no files"), ("# only\n\n", "lists no"),
    (f"{D1[:-1]}  a\n", "line 1 is not"), (f"{D1}\n", "line 1 is not"),
])
def test_not_a_checksum_file(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_manifest(text, "u")


def test_join_under_stays_below_root(tmp_path: Path) -> None:
    assert join_under(tmp_path, "a/b.dat") == tmp_path / "a" / "b.dat"
    with pytest.raises(ValueError):
        join_under(tmp_path, "a/../../b")


_segment = st.text(alphabet=st.sampled_from("ab0_.-"), min_size=1, max_size=4)
_path = st.lists(_segment, min_size=1, max_size=4).map("/".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([D1, D2]), _path), min_size=1, max_size=8),
       st.sampled_from([" ", "  ", "\t"]))
def test_fast_and_careful_parsers_agree(rows: list[tuple[str, str]], sep: str) -> None:
    """Whole-text fast path and the line parser accept/refuse the same files identically."""
    text = "".join(f"{d}{sep}{p}\n" for d, p in rows)

    def outcome(parse):
        try:
            return [tuple(e) for e in parse(text, "u").entries]
        except UserError as exc:
            return str(exc)

    careful = outcome(_parse_lines)
    assert outcome(parse_manifest) == careful
    if isinstance(careful, list):
        for path, _ in careful:
            assert ".." not in path.split("/") and not path.startswith("/")
