"""Shared CSV reading: a row longer than its header costs that row, not the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.sources._csv import plausible_age, read_metadata_csv, row_error


def test_a_row_with_an_extra_field_is_marked_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text('id,report\n1,"a, quoted comma"\n2,stray, comma\n3,fine\n', encoding="utf-8")
    frame = read_metadata_csv(path, ("id", "report"), fix="-")
    records = frame.to_dict("records")
    assert [r["id"] for r in records] == ["1", "2", "3"]  # row positions (CSV lines) kept
    assert [row_error(r) for r in records] == [
        "", "CSV line 3 has 3 fields, the header 2 (an unquoted comma?)", ""]
    assert records[0]["report"] == "a, quoted comma" and records[1]["report"] == "stray"


def test_a_clean_file_has_no_row_errors_and_other_breakage_is_still_one_line(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("id,report\n1,x\n", encoding="utf-8")
    assert all(row_error(r) == "" for r in read_metadata_csv(path, ("id",), "-").to_dict("records"))
    path.write_text('id,report\n1,"never closed\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"meta.csv: cannot parse CSV"):
        read_metadata_csv(path, ("id",), "fix it")


@pytest.mark.parametrize(("age", "published"), [
    (63.0, 63.0), (0.0, 0.0), (120.0, 120.0), (300.0, 90.0),  # 300: PTB-XL's "over 89"
    (-5.0, None), (150.0, None), (301.0, None), (None, None),
])
def test_plausible_age(age, published) -> None:
    assert plausible_age(age) == published
