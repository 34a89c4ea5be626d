"""Choosing records from release metadata: order, filters, ids vs paths, and bad metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.download.manifest import parse_manifest
from ecg_instruct.download.releases import RELEASES, Record, read_ptbxl_records
from ecg_instruct.download.selection import (
    all_record_entries,
    choose_records,
    metadata_entries,
    read_records_file,
    record_plan,
)
from ecg_instruct.download.splits import Splitter
from ecg_instruct.errors import UserError

PTBXL = RELEASES["ptbxl"]
MIMIC = RELEASES["mimic"]


def _ptbxl(ids: list[int], splits: list[str]) -> list[Record]:
    return [Record(f"{i:05d}", (f"records100/00000/{i:05d}_lr", f"records500/00000/{i:05d}_hr"),
                   s) for i, s in zip(ids, splits, strict=True)]


RECS = _ptbxl([1, 2, 3, 4], ["train", "test", "test", "validation"])


def test_split_then_rate_then_limit() -> None:
    got = choose_records(RECS, PTBXL, rate=500, split="test", limit=1)
    assert got == [Record("00002", ("records500/00000/00002_hr",), "test")]


def test_tokens_ids_select_whole_records_paths_select_one_stem() -> None:
    got = choose_records(RECS, PTBXL, tokens=["4", "ptbxl/00001", "records100/00000/00002_lr.dat"])
    assert [(r.id, r.stems) for r in got] == [
        ("00001", RECS[0].stems),
        ("00002", ("records100/00000/00002_lr",)),
        ("00004", RECS[3].stems),
    ]


def test_token_at_the_other_rate_is_an_error() -> None:
    with pytest.raises(UserError, match="is not at --rate 500"):
        choose_records(RECS, PTBXL, rate=500, tokens=["records100/00000/00001_lr"])


def test_unknown_tokens_are_counted_and_shown() -> None:
    with pytest.raises(UserError, match=r"5 record\(s\) not in ptbxl_database.csv: '7', '8', '9'"
                       r" and 2 more"):
        choose_records(RECS, PTBXL, tokens=["7", "8", "9", "10", "11"], tokens_source=Path("r"))


def test_record_plan_notes_stems_missing_from_checksums() -> None:
    d = "0" * 64
    manifest = parse_manifest(
        f"{d}  ptbxl_database.csv\n{d}  records500/00000/00001_hr.hea\n"
        f"{d}  records500/00000/00001_hr.dat\n{d}  records100/00000/00001_lr.dat\n", "u")
    plan = record_plan(manifest, choose_records(RECS[:2], PTBXL, rate=500))
    assert [e.path for e in plan.entries] == ["records500/00000/00001_hr.hea",
                                              "records500/00000/00001_hr.dat"]
    assert plan.unlisted == ["records500/00000/00002_hr"] and plan.records == 2
    assert [e.path for e in metadata_entries(manifest, PTBXL)] == ["ptbxl_database.csv"]
    assert len(all_record_entries(manifest, PTBXL, 100)) == 1
    assert len(all_record_entries(manifest, PTBXL, None)) == 3


def test_records_file_comments_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_text("1  # first\n\n  records500/00000/00002_hr \n")
    assert read_records_file(path) == ["1", "records500/00000/00002_hr"]
    path.write_text("# nothing\n")
    with pytest.raises(UserError, match="names no records"):
        read_records_file(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="is not UTF-8 text"):
        read_records_file(path)


def test_metadata_missing_columns_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "ptbxl_database.csv").write_text("ecg_id,filename_lr\n1,records100/x_lr\n")
    with pytest.raises(UserError, match="missing column.*filename_hr, strat_fold"):
        read_ptbxl_records(tmp_path, Splitter())


def test_real_ptbxl_metadata_excerpt(real_ptbxl_dir: Path, tmp_path: Path) -> None:
    """The real ptbxl_database.csv columns and paths parse; folds map to PTB-XL's splits."""
    (tmp_path / "ptbxl_database.csv").symlink_to(real_ptbxl_dir / "ptbxl_database_excerpt.csv")
    records = read_ptbxl_records(tmp_path, Splitter())
    assert len(records) == 5123
    assert [int(r.id) for r in records] == sorted(int(r.id) for r in records)
    first = records[0]
    assert first.stems == (f"records100/00000/{first.id}_lr", f"records500/00000/{first.id}_hr")
    assert {r.split for r in records} == {"train", "validation"}  # excerpt has folds 1-9 only


def test_splitter_defaults_match_the_meit_recipe() -> None:
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.index.split import mimic_split

    meit = Splitter(load_recipe("meit").split)
    default = Splitter()
    assert [default.ptbxl(f) for f in ("1", "8", "9.0", "10")] == [
        "train", "train", "validation", "test"]
    assert default.ptbxl("") == "" and default.ptbxl("11") == ""
    subjects = [str(s) for s in range(10_000_000, 10_002_000)]
    assert [default.mimic(s) for s in subjects] == [meit.mimic(s) for s in subjects] == [
        mimic_split(s) for s in subjects]
