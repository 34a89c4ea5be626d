"""MIMIC-IV-ECG 1.0 reader: `record_list.csv` + `machine_measurements.csv` -> canonical rows.

Facts this relies on (MIMIC-IV-ECG 1.0 release): one study per record; `record_list.csv` lists
every record with its `path` under `files/`; the machine's free-text statements are spread over
`report_0` ... `report_17` (empty cells when unused); missing numeric measurements are stored as a
sentinel (29999) rather than left empty. Records are defined by `record_list.csv`: a record with no
measurements row keeps an empty report and is rejected later with a reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecg_instruct.errors import UserError
from ecg_instruct.paths import UnsafePath, safe_join
from ecg_instruct.schema import MEASUREMENT_FIELDS
from ecg_instruct.sources._csv import (
    IndexRejects,
    read_metadata_csv,
    row_error,
    to_float,
    to_int_string,
)

RECORD_LIST_CSV = "record_list.csv"
MEASUREMENTS_CSV = "machine_measurements.csv"
REPORT_COLUMNS = tuple(f"report_{i}" for i in range(18))
RAW_MEASUREMENTS = MEASUREMENT_FIELDS[:-1]  # heart_rate is derived from rr_interval
MISSING_SENTINELS = {29999.0, -29999.0, 32767.0, -32768.0}
FIX = (
    "point --raw-dir at a folder holding mimic-iv-ecg/ (MIMIC-IV-ECG 1.0) or run "
    "`ecg-instruct download mimic`"
)
#: Plausible physiological ranges; values outside are treated as missing, not as facts.
PLAUSIBLE = {
    "rr_interval": (200.0, 3000.0),
    "p_axis": (-180.0, 360.0),
    "qrs_axis": (-180.0, 360.0),
    "t_axis": (-180.0, 360.0),
}


def clean_measurement(name: str, value: str) -> float | None:
    number = to_float(value)
    if number is None or number in MISSING_SENTINELS:
        return None
    low, high = PLAUSIBLE.get(name, (-10000.0, 10000.0))
    return number if low <= number <= high else None


def read_measurements(root: Path) -> dict[str, dict]:
    """Measurements and statements keyed by study_id."""
    frame = read_metadata_csv(root / MEASUREMENTS_CSV, ("study_id",), FIX)
    present_reports = [column for column in REPORT_COLUMNS if column in frame.columns]
    if not present_reports:
        raise UserError(
            "no report_0 ... report_17 columns", path=root / MEASUREMENTS_CSV, fix=FIX
        )
    by_study: dict[str, dict] = {}
    for record in frame.to_dict("records"):
        study = to_int_string(record["study_id"])
        if study is None or study in by_study:
            continue
        if row_error(record):  # its cells may be shifted: none of them can be trusted
            by_study[study] = {"row_error": f"{MEASUREMENTS_CSV}: {row_error(record)}"}
            continue
        statements = [record[column].strip() for column in present_reports]
        measurements = {
            name: clean_measurement(name, record.get(name, "")) for name in RAW_MEASUREMENTS
        }
        rr = measurements["rr_interval"]
        measurements["heart_rate"] = round(60000.0 / rr, 1) if rr else None
        by_study[study] = {
            "statements": [s for s in statements if s],
            "measurements": measurements,
        }
    return by_study


def read_index(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one MIMIC-IV-ECG mirror."""
    records = read_metadata_csv(root / RECORD_LIST_CSV, ("subject_id", "study_id", "path"), FIX)
    measurements = read_measurements(root)
    rows: list[dict] = []
    rejects = IndexRejects("mimic")
    for position, record in enumerate(records.to_dict("records")):
        line = position + 2
        study = to_int_string(record["study_id"])
        record_id = f"mimic/{study}" if study else f"mimic/row-{line}"
        subject = to_int_string(record["subject_id"])
        if study is None or subject is None:
            rejects.add(record_id if study is None else f"{record_id}#line-{line}",
                        "bad_metadata", f"subject_id/study_id not integers (CSV line {line})")
            continue
        if rejects.is_duplicate(record_id, line, f"study_id {study}"):
            continue
        info = measurements.get(study, {"statements": [], "measurements": None})
        problem = (f"{RECORD_LIST_CSV}: {row_error(record)}" if row_error(record)
                   else info.get("row_error"))
        if problem:
            rejects.add(record_id, "bad_csv_row", problem)
            continue
        try:
            safe_join(root, record["path"])
        except UnsafePath as exc:
            rejects.add(record_id, "unsafe_path", str(exc))
            continue
        rows.append(
            {
                "id": record_id,
                "source": "mimic",
                "native_id": study,
                "patient_id": subject,
                "path": record["path"],
                "fs": 500,
                "n_samples": 5000,
                "report_raw": "\n".join(info["statements"]),
                "labels": [],
                "scp_codes": "{}",
                "measurements": info["measurements"],
                "age": None,
                "sex": None,
                "fold": -1,
            }
        )
    return pd.DataFrame(rows), rejects.frame()
