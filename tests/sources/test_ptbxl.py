"""PTB-XL reader on the real metadata excerpt and on the sample mirror."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.sources.ptbxl import parse_scp_codes, read_index, read_statements


@pytest.fixture(scope="module")
def real_root(real_ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PTB-XL-shaped root whose database CSV is the real excerpt (linked, not copied)."""
    root = tmp_path_factory.mktemp("real") / "ptb-xl"
    root.mkdir()
    (root / "ptbxl_database.csv").symlink_to(real_ptbxl_dir / "ptbxl_database_excerpt.csv")
    (root / "scp_statements.csv").symlink_to(real_ptbxl_dir / "scp_statements.csv")
    return root


def test_reads_every_real_row(real_root: Path, real_ptbxl_dir: Path) -> None:
    rows, rejects = read_index(real_root, records="hr")
    raw = pd.read_csv(real_ptbxl_dir / "ptbxl_database_excerpt.csv")
    assert len(rows) + len(rejects) == len(raw) == 5123
    assert rejects.empty
    first = rows.iloc[0]
    assert first["id"] == "ptbxl/00001"
    assert first["patient_id"] == "15709"  # "15709.0" in the CSV
    assert first["path"] == "records500/00000/00001_hr"
    assert first["fs"] == 500 and first["n_samples"] == 5000
    assert json.loads(first["scp_codes"]) == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert list(first["labels"]) == ["LVOLT", "NORM", "SR"]  # likelihood 0 is still a label
    assert first["sex"] == "female"
    assert rows["report_raw"].str.len().gt(0).all()
    assert set(rows["fold"]) <= set(range(1, 10))


def test_low_rate_records(real_root: Path) -> None:
    rows, _ = read_index(real_root, records="lr")
    assert rows.iloc[0]["path"] == "records100/00000/00001_lr"
    assert rows.iloc[0]["fs"] == 100


def test_real_statements_indexed_by_code(real_root: Path) -> None:
    statements = read_statements(real_root)
    assert len(statements) == 71
    assert statements.loc["IMI", "description"] == "inferior myocardial infarction"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'NORM': 100.0, 'SR': 0.0}", {"NORM": 100.0, "SR": 0.0}),
        ("{}", {}),
        ("__import__('os').system('true')", None),  # never evaluated
        ("[1, 2]", None),
        ("{'A': 'x'}", None),
        ("{'A': 1", None),
    ],
)
def test_parse_scp_codes(text: str, expected: dict | None) -> None:
    assert parse_scp_codes(text) == expected


def test_missing_csv_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"ptbxl_database.csv: file not found — point --raw-dir"):
        read_index(tmp_path)


def test_missing_columns_named(tmp_path: Path) -> None:
    (tmp_path / "ptbxl_database.csv").write_text("ecg_id,patient_id,report\n1,2,x\n")
    with pytest.raises(UserError, match="missing column.*scp_codes.*strat_fold"):
        read_index(tmp_path)


def test_bad_rows_are_rejected_with_reasons(sample_mirror: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(sample_mirror / "ptb-xl" / "ptbxl_database.csv", dtype=str,
                        keep_default_na=False)
    frame.loc[1, "scp_codes"] = "not a dict"
    frame.loc[2, "strat_fold"] = "11"
    frame.loc[3, "filename_hr"] = "../../etc/passwd"
    frame = pd.concat([frame, frame.iloc[[0]]])  # duplicate ecg_id
    root = tmp_path / "ptb-xl"
    root.mkdir()
    frame.to_csv(root / "ptbxl_database.csv", index=False)
    rows, rejects = read_index(root)
    reasons = dict(zip(rejects["id"], rejects["reason"], strict=True))
    duplicate = [i for i in reasons if i.startswith("ptbxl/00001#")]  # a distinct reject id
    assert reasons == {
        "ptbxl/00002": "bad_scp_codes",
        "ptbxl/00003": "bad_strat_fold",
        "ptbxl/00004": "unsafe_path",
        **dict.fromkeys(duplicate, "duplicate_id"),
    }
    assert len(duplicate) == 1 and "ptbxl/00001" in set(rows["id"])
    assert len(rows) + len(rejects) == len(frame)
