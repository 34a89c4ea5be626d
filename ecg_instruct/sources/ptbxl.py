"""PTB-XL 1.0.3 reader: `ptbxl_database.csv` -> canonical index rows.

Facts this relies on (PTB-XL paper and release): one row per ECG; `scp_codes` is a Python dict
literal of SCP statement -> likelihood (0 means "not given", not "absent", so every key is a
label); `strat_fold` 1-10 is stratified by patient; `sex` 0 = male, 1 = female; ages above 89 are
stored as 300 for de-identification; `filename_lr`/`filename_hr` point at the 100/500 Hz records.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from ecg_instruct.paths import UnsafePath, safe_join
from ecg_instruct.sources._csv import (
    ROW_ERROR,
    IndexRejects,
    plausible_age,
    read_metadata_csv,
    row_error,
    to_float,
    to_int_string,
)

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
REQUIRED_COLUMNS = (
    "ecg_id",
    "patient_id",
    "report",
    "scp_codes",
    "strat_fold",
    "filename_lr",
    "filename_hr",
)
RATES = {"hr": (500, 5000, "filename_hr"), "lr": (100, 1000, "filename_lr")}
FIX = "point --raw-dir at a folder holding ptb-xl/ (PTB-XL 1.0.3) or run `ecg-instruct download ptbxl`"


def read_scp_codes(value: object) -> dict[str, float]:
    """PTB-XL's `scp_codes` cell (a Python dict literal) -> {code: likelihood}.

    Parsed with `ast.literal_eval`, never `eval`. Raises `ValueError` for anything that is not a
    dict of str -> number, so callers can turn it into a record-level reject.
    """
    if isinstance(value, Mapping):
        parsed: object = dict(value)
    else:
        try:
            parsed = ast.literal_eval(str(value))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise ValueError(f"scp_codes is not a dict literal: {str(value)[:80]!r}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"scp_codes is not a dict: {str(value)[:80]!r}")
    out: dict[str, float] = {}
    for code, likelihood in parsed.items():
        if not isinstance(code, str) or isinstance(likelihood, bool):
            raise ValueError(f"scp_codes entry {code!r}: {likelihood!r} is not code -> number")
        if not isinstance(likelihood, (int, float)):
            raise ValueError(f"scp_codes entry {code!r}: {likelihood!r} is not code -> number")
        out[code] = float(likelihood)
    return out


def parse_scp_codes(text: str) -> dict[str, float] | None:
    """`read_scp_codes`, or None if the cell is not a code->number dict (a record reject)."""
    try:
        return read_scp_codes(text)
    except ValueError:
        return None


def read_statements(root: Path) -> pd.DataFrame:
    """`scp_statements.csv` indexed by SCP code (its first header cell is empty in the release)."""
    path = root / STATEMENTS_CSV
    frame = read_metadata_csv(path, required=("description",), fix=FIX)
    first = frame.columns[0]
    return frame.rename(columns={first: "code"}).set_index("code")


def read_index(root: Path, records: str = "hr") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one PTB-XL mirror.

    Row by row over plain column lists (boxing all 28 cells of 21,799 rows into dicts cost more
    than the checks), with each distinct `scp_codes` text parsed once.
    """
    fs, n_samples, filename_column = RATES[records]
    frame = read_metadata_csv(root / DATABASE_CSV, REQUIRED_COLUMNS, FIX)
    rows: list[dict] = []
    rejects = IndexRejects("ptbxl")
    parsed: dict[str, dict[str, float] | None] = {}
    for position, record in enumerate(_records(frame, filename_column)):
        line = position + 2
        ecg_id = to_int_string(record["ecg_id"])
        record_id = f"ptbxl/{int(ecg_id):05d}" if ecg_id else f"ptbxl/row-{line}"
        if ecg_id is None:
            rejects.add(record_id, "bad_metadata",
                        f"ecg_id {record['ecg_id']!r} is not an integer (CSV line {line})")
            continue
        if rejects.is_duplicate(record_id, line, f"ecg_id {ecg_id}"):
            continue
        if row_error(record):
            rejects.add(record_id, "bad_csv_row", f"{DATABASE_CSV}: {row_error(record)}")
            continue
        if record["scp_codes"] not in parsed:
            parsed[record["scp_codes"]] = parse_scp_codes(record["scp_codes"])
        scp_codes = parsed[record["scp_codes"]]
        if scp_codes is None:
            rejects.add(record_id, "bad_scp_codes", f"scp_codes is not a code->likelihood dict: "
                        f"{record['scp_codes'][:80]!r}")
            continue
        fold = to_int_string(record["strat_fold"])
        if fold is None or not 1 <= int(fold) <= 10:
            rejects.add(record_id, "bad_strat_fold",
                        f"strat_fold {record['strat_fold']!r} is not in 1..10")
            continue
        try:
            safe_join(root, record[filename_column])
        except UnsafePath as exc:
            rejects.add(record_id, "unsafe_path", str(exc))
            continue
        patient = to_int_string(record["patient_id"])
        age = plausible_age(to_float(record.get("age", "")))
        sex = {"0": "male", "1": "female", "0.0": "male", "1.0": "female"}.get(
            record.get("sex", ""), None
        )
        rows.append(
            {
                "id": record_id,
                "source": "ptbxl",
                "native_id": ecg_id,
                "patient_id": patient if patient is not None else f"unknown-{ecg_id}",
                "path": record[filename_column],
                "fs": fs,
                "n_samples": n_samples,
                "report_raw": record["report"],
                "labels": sorted(scp_codes),
                "scp_codes": json.dumps(scp_codes, sort_keys=True),
                "measurements": None,
                "age": age,
                "sex": sex,
                "fold": int(fold),
            }
        )
    return pd.DataFrame(rows), rejects.frame()


def _records(frame: pd.DataFrame, filename_column: str) -> Iterator[dict[str, str]]:
    """The cells `read_index` uses of each row, as `to_dict("records")` gave them (`age`,
    `sex` and the row error only where the file has those columns)."""
    names = [*REQUIRED_COLUMNS, "age", "sex", ROW_ERROR]
    names = [name for name in dict.fromkeys(names) if name in frame.columns]
    for cells in zip(*(frame[name].tolist() for name in names), strict=True):
        yield dict(zip(names, cells, strict=True))
