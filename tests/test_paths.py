"""Paths from input data never escape; the output folder is swapped atomically; bugs and
accounting violations fail loudly in one line."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecg_instruct import paths
from ecg_instruct.paths import UnsafePath, is_within, recover_interrupted_swap, replace_dir, safe_join

ROOT = Path("/data/raw/ptb-xl")
segment = st.one_of(
    st.sampled_from(["..", ".", "", "records100", "00001_lr", "a..b", "...", "~", "/", "\\", "\0"]),
    st.text(min_size=0, max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(segment, min_size=0, max_size=6), st.booleans())
def test_safe_join_never_escapes_its_root(parts, absolute):
    relative = ("/" if absolute else "") + "/".join(parts)
    try:
        joined = safe_join(ROOT, relative)
    except UnsafePath as exc:
        assert str(ROOT) not in str(exc)  # messages land in published rejects
        return
    # Lexically inside the root, with no component that could climb out.
    assert ROOT in joined.parents
    assert ".." not in joined.relative_to(ROOT).parts
    assert "\0" not in str(joined) and "\\" not in str(joined)


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "a\\..\\..\\x", "a\0b",
                                      "", ".", "./", "records/../../../etc"])
def test_safe_join_refuses_known_escapes(relative):
    with pytest.raises(UnsafePath):
        safe_join(ROOT, relative)


def test_safe_join_keeps_ordinary_paths():
    assert safe_join(ROOT, "records100/00000/00001_lr") == ROOT / "records100/00000/00001_lr"
    assert safe_join(ROOT, "./a//b") == ROOT / "a" / "b"
    assert PurePosixPath("files/p1000") == PurePosixPath(safe_join(Path("/"), "files/p1000")
                                                         .relative_to("/"))


PIECE = st.text(alphabet="a/._~", max_size=8)


@settings(max_examples=400, deadline=None)
@given(PIECE, st.lists(segment, min_size=0, max_size=6))
def test_safe_join_str_is_os_path_join_of_the_safe_parts(root, parts):
    relative = "/".join(parts)
    try:
        expected = os.path.join(root, *paths.safe_parts(relative))
    except UnsafePath:
        with pytest.raises(UnsafePath):
            paths.safe_join_str(root, relative)
        return
    assert paths.safe_join_str(root, relative) == expected


@settings(max_examples=400, deadline=None)
@given(PIECE, st.text(alphabet="ab.~_-", min_size=1, max_size=6))
def test_sibling_is_join_of_dirname(path, name):
    assert paths.sibling(path, name) == os.path.join(os.path.dirname(path), name)


def test_is_within_resolves_dots_and_symlinks(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "raw")
    assert is_within(tmp_path / "raw" / "x", tmp_path / "raw")
    assert is_within(tmp_path / "link" / "out", tmp_path / "raw")
    assert is_within(tmp_path / "other" / ".." / "raw", tmp_path / "raw")
    assert not is_within(tmp_path / "rawer", tmp_path / "raw")


def _dataset(folder: Path, tag: str) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text(tag)
    (folder / "data" / "x.parquet").write_text(tag)
    return folder


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replace_dir_swaps_whole_folders(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(paths, "exchange_dirs", lambda a, b: False)
    out = tmp_path / "meit"
    replace_dir(_dataset(tmp_path / "meit.tmp", "one"), out)  # nothing there yet
    assert (out / "README.md").read_text() == "one"
    replace_dir(_dataset(tmp_path / "meit.tmp", "two"), out)
    assert (out / "README.md").read_text() == "two"
    assert (out / "data" / "x.parquet").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meit"]


def test_exchange_dirs_is_atomic_where_supported(tmp_path):
    one, two = _dataset(tmp_path / "a", "one"), _dataset(tmp_path / "b", "two")
    if not paths.exchange_dirs(one, two):
        pytest.skip("renameat2(RENAME_EXCHANGE) not supported here; the fallback is tested")
    assert (one / "README.md").read_text() == "two"
    assert (two / "README.md").read_text() == "one"


def test_a_kill_between_the_two_renames_is_recovered(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "exchange_dirs", lambda a, b: False)
    out = _dataset(tmp_path / "meit", "old")
    staging = _dataset(tmp_path / "meit.tmp", "new")
    real = os.replace
    calls = []

    def die_after_first(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for the kill between the two renames
        return real(src, dst)

    monkeypatch.setattr(os, "replace", die_after_first)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(staging, out)
    monkeypatch.setattr(os, "replace", real)
    assert not out.exists() and (tmp_path / "meit.old").is_dir()
    assert recover_interrupted_swap(out)  # what the next build does first
    assert (out / "README.md").read_text() == "old"
    assert not recover_interrupted_swap(out)


# --- accounting ------------------------------------------------------------------------------

def _ledger(**changes):
    from ecg_instruct.build.accounting import stage_ledger as _stage_ledger

    passed = {"index": ["ptbxl/1", "ptbxl/2", "ptbxl/3", "mimic/9"],
              "reports": ["ptbxl/1", "ptbxl/2", "mimic/9"], "instruct": ["ptbxl/1", "ptbxl/2",
                                                                        "mimic/9"],
              "signals": ["ptbxl/1", "mimic/9"], "publish": ["ptbxl/1", "mimic/9"]}
    rejected = {"index": ["ptbxl/row-7"], "reports": ["ptbxl/3"], "signals": ["ptbxl/2"]}
    for key, value in changes.items():
        kind, stage = key.split("__")
        (passed if kind == "passed" else rejected)[stage] = value
    return _stage_ledger(rejected, passed)


def test_stage_ledger_balances_per_source_and_stage():
    ledger = _ledger().set_index(["source", "stage"])
    assert ledger.loc[("ptbxl", "index")].tolist() == [4, 3, 1]
    assert ledger.loc[("ptbxl", "signals")].tolist() == [2, 1, 1]
    assert ledger.loc[("mimic", "publish")].tolist() == [1, 1, 0]


@pytest.mark.parametrize("change, message", [
    ({"passed__signals": ["ptbxl/1"]}, "neither passed nor rejected"),       # silently dropped
    ({"rejected__signals": ["ptbxl/2", "ptbxl/1"]}, "both passed and rejected"),
    ({"passed__publish": ["ptbxl/1", "ptbxl/1", "mimic/9"]}, "twice"),
    ({"passed__publish": ["ptbxl/1", "mimic/9", "ptbxl/5"]}, "out of nowhere"),
])
def test_stage_ledger_catches_lost_duplicated_and_invented_records(change, message):
    from ecg_instruct.build.pipeline import AccountingError

    with pytest.raises(AccountingError, match=message):
        _ledger(**change)


# --- one line for bugs -----------------------------------------------------------------------

def test_internal_errors_are_one_line_with_a_log(tmp_path, tmp_path_factory, monkeypatch):
    """A bug inside a worker process: one line naming the log, which holds the worker traceback."""
    import re
    import tempfile

    from buildkit import quick_recipe, sample_mirror
    from typer.testing import CliRunner

    import ecg_instruct.signals.curate as stage
    from ecg_instruct.cli import app

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in curate_batch")

    monkeypatch.setattr(stage, "curate_batch", broken)  # inherited by the forked workers
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the log goes
    out = tmp_path / "out" / "meit"
    result = CliRunner().invoke(app, [
        "build", "--raw-dir", str(sample_mirror(tmp_path_factory)), "--out", str(out),
        "--recipe", str(quick_recipe(tmp_path)), "--workers", "2", "--no-progress"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("internal error: ZeroDivisionError"), lines
    log = Path(re.search(r"full traceback in (\S+);", lines[0]).group(1))
    assert log.parent == tmp_path
    text = log.read_text(encoding="utf-8")
    assert "a bug in curate_batch" in text
    assert "in broken" in text  # the worker's own frame, from the remote traceback
    assert not out.exists()


def test_a_full_disk_is_one_line_saying_what_to_do(tmp_path, tmp_path_factory, monkeypatch):
    """Not a bug, so no 'please report': the fix and that a rerun resumes."""
    import errno

    from buildkit import quick_recipe, sample_mirror
    from typer.testing import CliRunner

    import ecg_instruct.index.stage as index_stage
    from ecg_instruct.cli import app

    def full(data, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(index_stage, "atomic_write", full)
    out = tmp_path / "out" / "meit"
    result = CliRunner().invoke(app, [
        "build", "--raw-dir", str(sample_mirror(tmp_path_factory)), "--out", str(out),
        "--recipe", str(quick_recipe(tmp_path)), "--workers", "1", "--no-progress"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "No space left on device" in lines[0] and "free disk space" in lines[0]
    assert "rerun the same command to resume" in lines[0] and "report" not in lines[0]


def test_out_as_a_symlink_publishes_into_its_target(tmp_path, tmp_path_factory):
    from buildkit import quick_recipe, run_build, sample_mirror

    target = tmp_path / "big-disk" / "meit"
    target.parent.mkdir()
    link = tmp_path / "meit"
    link.symlink_to(target, target_is_directory=True)
    run_build(sample_mirror(tmp_path_factory), link, quick_recipe(tmp_path))
    assert link.is_symlink() and (target / "README.md").is_file()
    run_build(sample_mirror(tmp_path_factory), link, quick_recipe(tmp_path), seed=1)  # replace
    assert link.is_symlink() and (link / "rejects.parquet").is_file()
