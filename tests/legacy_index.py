"""The index stage as it was before it ran column-wise (commit 795b016), kept only as the
reference the fast readers must match exactly: same rows, order, values, dtypes and rejects.

Row by row in Python (~9,500 MIMIC rows/s): never imported by the package.
"""

from __future__ import annotations

import json
import posixpath
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ecg_instruct.build.recipe import Recipe
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import hashed_split, mimic_split, ptbxl_split
from ecg_instruct.index.windows import expand_windows
from ecg_instruct.paths import UnsafePath, safe_join, safe_parts
from ecg_instruct.schema import INDEX_COLUMNS, rejects_frame
from ecg_instruct.sources import SOURCE_DIRS, reader_for, source_root
from ecg_instruct.sources._csv import (
    ROW_ERROR,
    IndexRejects,
    plausible_age,
    read_metadata_csv,
    row_error,
    to_float,
    to_int_string,
)
from ecg_instruct.sources.mimic import (
    FIX as MIMIC_FIX,
)
from ecg_instruct.sources.mimic import (
    MEASUREMENTS_CSV,
    RAW_MEASUREMENTS,
    RECORD_LIST_CSV,
    REPORT_COLUMNS,
    clean_measurement,
)
from ecg_instruct.sources.ptbxl import DATABASE_CSV, RATES, REQUIRED_COLUMNS, parse_scp_codes
from ecg_instruct.sources.ptbxl import FIX as PTBXL_FIX
from ecg_instruct.sources.subset import read_subset

# --- MIMIC-IV-ECG -----------------------------------------------------------------------------

def mimic_measurements(root: Path) -> dict[str, dict]:
    """Measurements and statements keyed by study_id."""
    frame = read_metadata_csv(root / MEASUREMENTS_CSV, ("study_id",), MIMIC_FIX)
    present_reports = [column for column in REPORT_COLUMNS if column in frame.columns]
    if not present_reports:
        raise UserError(
            "no report_0 ... report_17 columns", path=root / MEASUREMENTS_CSV, fix=MIMIC_FIX
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


def mimic_read_index(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one MIMIC-IV-ECG mirror."""
    records = read_metadata_csv(root / RECORD_LIST_CSV, ("subject_id", "study_id", "path"), MIMIC_FIX)
    measurements = mimic_measurements(root)
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


# --- PTB-XL -----------------------------------------------------------------------------------

def ptbxl_read_index(root: Path, records: str = "hr") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one PTB-XL mirror."""
    fs, n_samples, filename_column = RATES[records]
    frame = read_metadata_csv(root / DATABASE_CSV, REQUIRED_COLUMNS, PTBXL_FIX)
    rows: list[dict] = []
    rejects = IndexRejects("ptbxl")
    for position, record in enumerate(frame.to_dict("records")):
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
        scp_codes = parse_scp_codes(record["scp_codes"])
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


# --- the index stage ------------------------------------------------------------------------

def legacy_reader(source: str):
    """The row-by-row reader of a source (Challenge 2021 and CODE-15% did not change)."""
    return {"mimic": mimic_read_index, "ptbxl": ptbxl_read_index}.get(source) or reader_for(source)


def legacy_read_source(raw_dir: Path, source: str, recipe: Recipe) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index rows (with `split`) and index rejects of one source."""
    root = source_root(raw_dir, source)
    if not root.is_dir():
        raise UserError(
            f"no {SOURCE_DIRS[source]}/ folder",
            path=root,
            fix=f"download it (`ecg-instruct download {source} --out {raw_dir}`), copy a mirror "
            f"there, or build another source with --source",
        )
    options: dict = {}
    if source == "ptbxl":
        options = {"records": recipe.sources.ptbxl.records}
    elif source == "cinc2021":  # its PTB-XL part takes PTB-XL's folds when the CSV is there
        options = {"ptbxl_root": source_root(raw_dir, "ptbxl")}
    rows, rejects = legacy_reader(source)(root, **options)
    subset = read_subset(root)
    if subset is not None:  # a subset download: records never fetched are not inputs
        rows = rows[rows["id"].isin(subset)] if len(rows) else rows
        if len(rejects):
            rejects = rejects[rejects["id"].str.split("#").str[0].isin(subset)]
    if rows.empty:
        rows = pd.DataFrame(columns=[*INDEX_COLUMNS, "fold"])
    rows, shared = _drop_shared_files(rows, source)
    if len(shared):
        rejects = pd.concat([rejects, shared], ignore_index=True)
    if source == "ptbxl":
        folds = recipe.split.ptbxl_folds
        rows["split"] = [ptbxl_split(int(fold), folds) for fold in rows["fold"]]
    elif source in ("cinc2021", "code15"):
        rows["split"] = [
            ptbxl_split(int(fold), recipe.split.ptbxl_folds) if int(fold) > 0
            else hashed_split(source, patient, recipe.split.mimic_seed,
                              recipe.split.mimic_fractions)
            for fold, patient in zip(rows["fold"], rows["patient_id"], strict=True)
        ]
    else:
        rows["split"] = [
            mimic_split(patient, recipe.split.mimic_seed, recipe.split.mimic_fractions)
            for patient in rows["patient_id"]
        ]
    return rows, rejects_frame(rejects.to_dict("records"))


def _drop_shared_files(rows: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows whose record files another row already uses become `duplicate_path` rejects.

    Two ids for one recording would publish the same ECG twice (and possibly in two splits,
    a leak): the first row in the metadata keeps it.
    """
    if rows.empty:
        return rows, pd.DataFrame()
    paths = rows["path"].map(lambda p: posixpath.normpath(str(p).replace("\\", "/")))
    repeated = paths.duplicated(keep="first")
    if not repeated.any():
        return rows, pd.DataFrame()
    first = dict(zip(paths[~repeated], rows["id"][~repeated], strict=True))
    shared = pd.DataFrame({
        "id": rows["id"][repeated].to_numpy(), "source": source, "stage": "index",
        "reason": "duplicate_path",
        "detail": [f"uses the files of {first[p]} ({p}); kept the first"
                   for p in paths[repeated]],
    })
    return rows[~repeated].reset_index(drop=True), shared


def legacy_build_index(
    raw_dir: Path, recipe: Recipe, sources: Sequence[str], splits: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The canonical index of the selected sources, sorted by id, and its rejects.

    With `splits`, records of other splits are left out entirely (they are not inputs of this
    build), which is what `--split test` means. Index rejects cannot always be assigned a split
    (their metadata is broken), so they are kept whatever the split filter.
    """
    frames, reject_frames = [], []
    for source in sources:
        rows, rejects = legacy_read_source(raw_dir, source, recipe)
        frames.append(rows)
        reject_frames.append(rejects)
    frames = [frame for frame in frames if len(frame)]
    columns = [*INDEX_COLUMNS, "fold"]
    with warnings.catch_warnings():
        # Sources leave different columns all-missing (MIMIC has no age); the result's dtypes
        # are fixed when the index is written, so pandas' upcoming dtype change does not matter.
        warnings.simplefilter("ignore", FutureWarning)
        index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if splits:
        index = index[index["split"].isin(list(splits))]
    if recipe.signals.length_policy == "window":  # long records -> one row per window
        index = expand_windows(index, recipe.signals.duration_s)
    index = index.sort_values("id", kind="stable").reset_index(drop=True)
    rejects = pd.concat(reject_frames, ignore_index=True)
    return index[columns], rejects.sort_values(["id", "stage"], kind="stable")
