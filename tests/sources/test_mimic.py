"""MIMIC-IV-ECG reader on the sample mirror (no real MIMIC file can be had offline)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.sources.mimic import clean_measurement, read_index


def test_reads_sample_mirror(sample_mirror: Path) -> None:
    root = sample_mirror / "mimic-iv-ecg"
    rows, rejects = read_index(root)
    records = pd.read_csv(root / "record_list.csv")
    assert len(rows) == len(records) and rejects.empty
    row = rows.iloc[0]
    assert row["id"] == f"mimic/{records.iloc[0]['study_id']}"
    assert row["patient_id"] == str(records.iloc[0]["subject_id"])
    assert row["path"].startswith("files/p")
    assert row["labels"] == [] and row["scp_codes"] == "{}"
    statements = row["report_raw"].split("\n")
    assert all(statements), "empty report_N cells are dropped"
    measurements = row["measurements"]
    assert measurements["heart_rate"] == pytest.approx(60000 / measurements["rr_interval"], 0.01)


def test_sentinels_and_implausible_values_are_missing() -> None:
    assert clean_measurement("p_axis", "29999") is None
    assert clean_measurement("rr_interval", "12") is None
    assert clean_measurement("rr_interval", "") is None
    assert clean_measurement("qrs_axis", "-45") == -45.0


def test_record_without_measurements_keeps_empty_report(sample_mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "mimic-iv-ecg"
    root.mkdir()
    source = sample_mirror / "mimic-iv-ecg"
    (root / "record_list.csv").write_text((source / "record_list.csv").read_text())
    measurements = pd.read_csv(source / "machine_measurements.csv", dtype=str,
                               keep_default_na=False)
    measurements.iloc[1:].to_csv(root / "machine_measurements.csv", index=False)
    rows, _ = read_index(root)
    assert rows.iloc[0]["report_raw"] == ""
    assert rows.iloc[0]["measurements"] is None


def test_renamed_column_is_one_line_error(sample_mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "mimic-iv-ecg"
    root.mkdir()
    text = (sample_mirror / "mimic-iv-ecg" / "record_list.csv").read_text()
    (root / "record_list.csv").write_text(text.replace("study_id", "study"))
    with pytest.raises(UserError, match=r"record_list.csv: missing column\(s\) study_id"):
        read_index(root)
