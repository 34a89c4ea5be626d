"""MIMIC-IV-ECG 1.0 reader: `record_list.csv` + `machine_measurements.csv` -> canonical rows.

Facts this relies on (MIMIC-IV-ECG 1.0 release): one study per record; `record_list.csv` lists
every record with its `path` under `files/`; the machine's free-text statements are spread over
`report_0` ... `report_17` (empty cells when unused); missing numeric measurements are stored as a
sentinel (29999) rather than left empty. Records are defined by `record_list.csv`: a record with no
measurements row keeps an empty report and is rejected later with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecg_instruct.errors import UserError
from ecg_instruct.paths import UnsafePath, safe_parts
from ecg_instruct.schema import MEASUREMENT_FIELDS
from ecg_instruct.sources._columns import (
    RejectList,
    as_strings,
    first_occurrences,
    int_strings,
    map_distinct,
    map_distinct_strings,
    row_errors,
    take_or,
)
from ecg_instruct.sources._csv import read_metadata_table, to_float

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


@dataclass
class Measurements:
    """`machine_measurements.csv`, one entry per study (its first row), column-wise.

    `rows` maps a normalised study_id to its position in the other fields; `row_error` is the
    reason a row cannot be trusted ("" when it can), `report` its statements joined by newlines
    and `values` one object array (float or None) per measurement, heart_rate last.
    """

    rows: pd.Index
    row_error: np.ndarray
    report: np.ndarray
    values: dict[str, np.ndarray]


def _clean_cell(name: str) -> Callable[[str | None], float | None]:
    return lambda value: clean_measurement(name, value or "")


def _heart_rate(rr_cell: str | None) -> float | None:
    """Heart rate from the rr_interval cell, as published: 60000 / rr, one decimal."""
    rr = clean_measurement("rr_interval", rr_cell or "")
    return round(60000.0 / rr, 1) if rr else None


def _join_statements(table: pa.Table, columns: list[str]) -> np.ndarray:
    """Each row's non-empty report cells, stripped, joined by newlines (object array of str).

    Stripping runs once per distinct statement, joining in Arrow (columns empty in every row,
    most of report_7 ... report_17, left out). A leading "" joins every row: without it
    pyarrow 26 drops rows whose cells are all null (empty) from the result.
    """
    statements = [map_distinct_strings(table.column(name), _statement) for name in columns]
    statements = [cells for cells in statements if cells.null_count < len(cells)]
    if not statements:
        return np.full(table.num_rows, "", dtype=object)
    joined = pc.binary_join_element_wise("", *statements, "\n", null_handling="skip")
    return pc.utf8_slice_codeunits(joined, 1).to_numpy(zero_copy_only=False)


def _statement(cell: str | None) -> str | None:
    """A report cell as a statement: stripped, None when empty."""
    return (cell or "").strip() or None


def read_measurements(root: Path) -> Measurements:
    """Measurements and statements of each study (the first row of a repeated study_id)."""
    table = read_metadata_table(root / MEASUREMENTS_CSV, ("study_id",), FIX,
                                columns=("study_id", *REPORT_COLUMNS, *RAW_MEASUREMENTS))
    present_reports = [column for column in REPORT_COLUMNS if column in table.column_names]
    if not present_reports:
        raise UserError(
            "no report_0 ... report_17 columns", path=root / MEASUREMENTS_CSV, fix=FIX
        )
    studies = int_strings(table.column("study_id"))
    first = np.flatnonzero(first_occurrences(studies, studies != None))  # noqa: E711
    table = table.take(first)
    missing = np.full(table.num_rows, None, dtype=object)
    values = {name: map_distinct(table.column(name), _clean_cell(name))
              if name in table.column_names else missing for name in RAW_MEASUREMENTS}
    values["heart_rate"] = (map_distinct(table.column("rr_interval"), _heart_rate)
                            if "rr_interval" in table.column_names else missing)
    return Measurements(
        rows=pd.Index(studies[first]),
        row_error=row_errors(table, f"{MEASUREMENTS_CSV}: "),
        report=_join_statements(table, present_reports),
        values=values,
    )


def read_index(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one MIMIC-IV-ECG mirror.

    Column-wise over the whole record list: a release has 800,035 records. Each row still
    meets the checks in the order they always ran (ids, repeated study, CSV row, path), and
    rejects come out in file order.
    """
    required = ("subject_id", "study_id", "path")
    records = read_metadata_table(root / RECORD_LIST_CSV, required, FIX, columns=required)
    measurements = read_measurements(root)
    rejects = RejectList("mimic")
    lines = np.arange(records.num_rows) + 2
    studies = int_strings(records.column("study_id"))
    subjects = int_strings(records.column("subject_id"))
    has_study = studies != None  # noqa: E711
    ids = np.empty(records.num_rows, dtype=object)
    ids[has_study] = "mimic/" + studies[has_study]
    for i in np.flatnonzero(~has_study):
        ids[i] = f"mimic/row-{lines[i]}"
    valid = has_study & (subjects != None)  # noqa: E711
    for i in np.flatnonzero(~valid):
        rejects.add(i, ids[i] if not has_study[i] else f"{ids[i]}#line-{lines[i]}",
                    "bad_metadata", f"subject_id/study_id not integers (CSV line {lines[i]})")
    kept = first_occurrences(studies, valid)
    for i in np.flatnonzero(valid & ~kept):
        rejects.add(i, f"{ids[i]}#line-{lines[i]}", "duplicate_id",
                    f"study_id {studies[i]} appears more than once (CSV line {lines[i]}); "
                    f"kept the first")
    match = np.full(records.num_rows, -1)
    match[kept] = measurements.rows.get_indexer(studies[kept])
    own = row_errors(records, f"{RECORD_LIST_CSV}: ")
    problems = np.where(own != "", own, take_or(measurements.row_error, match, ""))
    bad_row = kept & (problems != "")
    for i in np.flatnonzero(bad_row):
        rejects.add(i, ids[i], "bad_csv_row", problems[i])
    paths = as_strings(records.column("path"))
    candidates = kept & ~bad_row
    unsafe = candidates & ~_plainly_safe(paths)
    path_values = np.asarray(paths.to_numpy(zero_copy_only=False), dtype=object)
    for i in np.flatnonzero(unsafe):
        try:
            safe_parts(path_values[i] or "")
            unsafe[i] = False
        except UnsafePath as exc:
            rejects.add(i, ids[i], "unsafe_path", str(exc))
    keep = np.flatnonzero(candidates & ~unsafe)
    return _rows(ids[keep], studies[keep], subjects[keep], path_values[keep], match[keep],
                 measurements), rejects.frame()


def _plainly_safe(paths: pa.Array) -> np.ndarray:
    """Paths that `safe_parts` accepts at a glance (letters, digits, `_ - . /`, no `..`,
    not starting with `/` or `.`): only the others are checked one by one."""
    plain = pc.and_(pc.match_substring_regex(paths, r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$"),
                    pc.invert(pc.match_substring(paths, "..")))
    return pc.fill_null(plain, False).to_numpy(zero_copy_only=False)


def _rows(ids: np.ndarray, studies: np.ndarray, subjects: np.ndarray, paths: np.ndarray,
          match: np.ndarray, measurements: Measurements) -> pd.DataFrame:
    """The canonical index rows of the kept records (a record without a measurements row has
    an empty report and no measurements)."""
    if not len(ids):
        return pd.DataFrame()
    found = match >= 0
    report = take_or(measurements.report, match, "")
    values = np.full(len(ids), None, dtype=object)
    names = list(measurements.values)
    columns = [measurements.values[name][match[found]] for name in names]
    values[found] = [dict(zip(names, cells, strict=True)) for cells in zip(*columns, strict=True)]
    count = len(ids)
    return pd.DataFrame({
        "id": ids, "source": np.full(count, "mimic", dtype=object), "native_id": studies,
        "patient_id": subjects, "path": paths, "fs": np.full(count, 500, dtype=np.int64),
        "n_samples": np.full(count, 5000, dtype=np.int64), "report_raw": report,
        "labels": _empty_lists(count), "scp_codes": np.full(count, "{}", dtype=object),
        "measurements": values, "age": np.full(count, None, dtype=object),
        "sex": np.full(count, None, dtype=object), "fold": np.full(count, -1, dtype=np.int64),
    })


def _empty_lists(count: int) -> np.ndarray:
    """An object array of `count` distinct empty lists (one per record, as rows had)."""
    return np.fromiter(map(list, repeat((), count)), dtype=object, count=count)
