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
from ecg_instruct.paths import UnsafePath, safe_parts
from ecg_instruct.schema import MEASUREMENT_FIELDS
from ecg_instruct.sources._csv import (
    ROW_ERROR,
    IndexRejects,
    read_metadata_csv,
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
    # columns as plain lists, zipped: `to_dict("records")` boxed every cell of 800k rows and
    # cost more than everything else here; cleaned values are cached (they repeat a lot)
    empty = [""] * len(frame)
    measured = [frame[name].tolist() if name in frame.columns else empty
                for name in RAW_MEASUREMENTS]
    cleaned: dict[tuple[str, str], float | None] = {}
    row_errors = (frame[ROW_ERROR].fillna("").tolist() if ROW_ERROR in frame.columns else empty)
    for position, (study_value, report_cells, measured_cells) in enumerate(zip(
        frame["study_id"].tolist(),
        zip(*(frame[c].tolist() for c in present_reports), strict=True),
        zip(*measured, strict=True), strict=True,
    )):
        study = to_int_string(study_value)
        if study is None or study in by_study:
            continue
        if row_errors[position]:  # its cells may be shifted: none of them can be trusted
            by_study[study] = {"row_error": f"{MEASUREMENTS_CSV}: {row_errors[position]}"}
            continue
        statements = [cell.strip() for cell in report_cells]
        measurements = {}
        for name, value in zip(RAW_MEASUREMENTS, measured_cells, strict=True):
            key = (name, value)
            if key not in cleaned:
                cleaned[key] = clean_measurement(name, value)
            measurements[name] = cleaned[key]
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
    row_errors = (records[ROW_ERROR].fillna("").tolist() if ROW_ERROR in records.columns
                  else [""] * len(records))
    columns = zip(records["subject_id"].tolist(), records["study_id"].tolist(),
                  records["path"].tolist(), row_errors, strict=True)
    for position, (subject_value, study_value, path, row_problem) in enumerate(columns):
        line = position + 2
        study = to_int_string(study_value)
        record_id = f"mimic/{study}" if study else f"mimic/row-{line}"
        subject = to_int_string(subject_value)
        if study is None or subject is None:
            rejects.add(record_id if study is None else f"{record_id}#line-{line}",
                        "bad_metadata", f"subject_id/study_id not integers (CSV line {line})")
            continue
        if rejects.is_duplicate(record_id, line, f"study_id {study}"):
            continue
        info = measurements.get(study, {"statements": [], "measurements": None})
        problem = f"{RECORD_LIST_CSV}: {row_problem}" if row_problem else info.get("row_error")
        if problem:
            rejects.add(record_id, "bad_csv_row", problem)
            continue
        try:
            safe_parts(path)  # the check of safe_join, without building a Path per record
        except UnsafePath as exc:
            rejects.add(record_id, "unsafe_path", str(exc))
            continue
        rows.append(
            {
                "id": record_id,
                "source": "mimic",
                "native_id": study,
                "patient_id": subject,
                "path": path,
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
