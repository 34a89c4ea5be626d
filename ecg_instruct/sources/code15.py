"""CODE-15% reader (Ribeiro et al., Zenodo 4916206, CC BY 4.0): `exams.csv` + `exams_part{N}.hdf5`.

Facts this relies on, from the release's documentation (NOT verified against the real files,
which cannot be downloaded here): `exams.csv` has one row per exam with `exam_id, age, is_male,
nn_predicted_age, 1dAVb, RBBB, LBBB, SB, ST, AF, patient_id, death, timey, normal_ecg,
trace_file`; each `exams_part{N}.hdf5` holds `tracings` (N x 4096 x 12 float32) and `exam_id`
(N) in the same order; signals are 400 Hz, 7 s (2800 samples) or 10 s (4000), centred and
zero-padded to 4096 (648 or 48 zeros at each end); leads in the order DI, DII, DIII, AVR, AVL,
AVF, V1-V6 (the canonical order). Units: the documentation says both "scale 1e-4V" and "multiply
by 1000 to obtain V"; the second means millivolts, which is what we assume
(:data:`MV_PER_UNIT`) and what the dataset card states as unverified.

The HDF5 files are only ever read in slices: here the `exam_id` column of each part, in the
signal stage one exam's `tracings` row (`read_tracing`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_instruct.errors import RecordReject, UserError
from ecg_instruct.sources._csv import IndexRejects, read_metadata_csv, to_float, to_int_string

SOURCE = "code15"
EXAMS_CSV = "exams.csv"
FS = 400
PADDED = 4096
#: the recording lengths the release pads to 4096 (7 s and 10 s at 400 Hz)
LENGTHS = (2800, 4000)
#: millivolts per stored unit (see the module docstring: documented ambiguously, unverified)
MV_PER_UNIT = 1.0
#: the quantisation step published values are rounded to (the release stores float32): 1 uV
ADC_GAIN = 1000.0
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LABEL_COLUMNS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
REQUIRED = ("exam_id", "age", "is_male", *LABEL_COLUMNS, "patient_id", "normal_ecg", "trace_file")
#: `path` of an index row: `<trace_file>#<row>` (the row of the exam in that file's arrays)
ROW_SEPARATOR = "#"
FIX = ("point --raw-dir at a folder holding code-15/exams.csv and exams_part*.hdf5 "
       "(CODE-15%, Zenodo 4916206)")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise UserError("reading CODE-15% needs h5py", path=None,
                        fix='pip install "ecg-instruct[code15]" (or pip install h5py)') from None
    return h5py


def _true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "1.0")


def exam_rows(path: Path) -> dict[str, int]:
    """exam_id -> row of one part file, from its `exam_id` dataset only (a few hundred kB).

    Raises ``RecordReject("unsupported_format")`` for a file h5py cannot open or without an
    integer `exam_id` dataset: its exams become rejects, the rest of the build goes on.
    """
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as handle:
            if "exam_id" not in handle or "tracings" not in handle:
                raise RecordReject("unsupported_format",
                                   f"{path.name} has no exam_id/tracings datasets")
            ids = np.asarray(handle["exam_id"][:])
    except OSError as exc:
        raise RecordReject("unsupported_format", f"{path.name}: h5py cannot read it: "
                                                 f"{' '.join(str(exc).split())}") from None
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise RecordReject("unsupported_format", f"{path.name}: exam_id is not a list of integers")
    return {str(int(v)): row for row, v in enumerate(ids.tolist())}


def read_index(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one CODE-15% mirror."""
    frame = read_metadata_csv(root / EXAMS_CSV, REQUIRED, FIX)
    rows: list[dict] = []
    rejects = IndexRejects(SOURCE)
    part_rows: dict[str, dict[str, int] | RecordReject] = {}
    for position, record in enumerate(frame.to_dict("records")):
        line = position + 2
        exam = to_int_string(record["exam_id"])
        record_id = f"{SOURCE}/{exam}" if exam else f"{SOURCE}/row-{line}"
        patient = to_int_string(record["patient_id"])
        if exam is None or patient is None:
            rejects.add(record_id if exam is None else f"{record_id}#line-{line}", "bad_metadata",
                        f"exam_id/patient_id not integers (CSV line {line})")
            continue
        if rejects.is_duplicate(record_id, line, f"exam_id {exam}"):
            continue
        trace_file = record["trace_file"].strip()
        if os.sep in trace_file or "/" in trace_file or not trace_file.endswith(".hdf5"):
            rejects.add(record_id, "unsafe_path", f"trace_file {trace_file!r} is not a part file name")
            continue
        if trace_file not in part_rows:
            part = root / trace_file
            try:
                part_rows[trace_file] = (exam_rows(part) if part.is_file() else
                                         RecordReject("missing_file", f"{trace_file} does not exist"))
            except RecordReject as exc:
                part_rows[trace_file] = exc.with_traceback(None)
        rows_of_part = part_rows[trace_file]
        if isinstance(rows_of_part, RecordReject):
            rejects.add(record_id, rows_of_part.reason, rows_of_part.detail)
            continue
        row = rows_of_part.get(exam)
        if row is None:
            rejects.add(record_id, "missing_file", f"{trace_file} has no exam_id {exam}")
            continue
        labels = [c for c in LABEL_COLUMNS if _true(record[c])]
        if _true(record["normal_ecg"]):
            labels.append("normal_ecg")
        rows.append({
            "id": record_id,
            "source": SOURCE,
            "native_id": exam,
            "patient_id": patient,
            "path": f"{trace_file}{ROW_SEPARATOR}{row}",
            "fs": FS,
            "n_samples": PADDED,
            "report_raw": ",".join(labels),
            "labels": labels,
            "scp_codes": "{}",
            "measurements": None,
            "age": to_float(record["age"]),
            "sex": {True: "male", False: "female"}.get(_true(record["is_male"]))
            if record["is_male"].strip() else None,
            "fold": -1,
        })
    return pd.DataFrame(rows), rejects.frame()


def strip_padding(tracing: np.ndarray) -> np.ndarray:
    """(4096, 12) as stored -> (12, n) without the zero padding.

    The release centres a 2800- or 4000-sample recording in 4096 samples. The recording is the
    shortest of those lengths whose centred window holds every sample that is not zero on all
    leads (a recording may itself begin or end at 0 mV on some lead, never on all twelve for
    long); anything else (a recording of another length) keeps the span between the padding.
    """
    if tracing.shape != (PADDED, len(LEADS)):
        raise RecordReject("wrong_length", f"tracing of shape {tracing.shape}, expected "
                                           f"({PADDED}, {len(LEADS)})")
    nonzero = np.flatnonzero(np.any(tracing != 0, axis=1))
    if nonzero.size == 0:
        raise RecordReject("flat_lead", "every sample of every lead is 0 (an empty tracing)")
    first, last = int(nonzero[0]), int(nonzero[-1]) + 1
    for length in LENGTHS:
        start = (PADDED - length) // 2
        if start <= first and last <= start + length:
            return np.ascontiguousarray(tracing[start:start + length].T)
    return np.ascontiguousarray(tracing[first:last].T)


class PartFiles:
    """Open part files of one shard (a shard's exams are spread over the parts)."""

    def __init__(self, root: str):
        self.root = root
        self.handles: dict[str, object] = {}

    def read_tracing(self, path: str) -> np.ndarray:
        """The stored (4096, 12) float tracing of `<trace_file>#<row>`: one row read."""
        trace_file, _, row = path.partition(ROW_SEPARATOR)
        handle = self.handles.get(trace_file)
        if handle is None:
            full = os.path.join(self.root, trace_file)
            try:
                handle = self.handles[trace_file] = _h5py().File(full, "r")
            except FileNotFoundError:
                raise RecordReject("missing_file", f"{full} does not exist") from None
            except OSError as exc:
                raise RecordReject("unsupported_format", f"{full}: h5py cannot open it: "
                                                         f"{' '.join(str(exc).split())}") from None
        index = int(row)
        try:
            tracings = handle["tracings"]  # type: ignore[index]
            if not 0 <= index < tracings.shape[0]:
                raise RecordReject("missing_file", f"{trace_file} has no row {index}")
            return np.asarray(tracings[index], dtype=np.float32)
        except (KeyError, OSError, TypeError, ValueError) as exc:  # damaged part file
            raise RecordReject("unsupported_format", f"{trace_file} row {index}: "
                                                     f"{' '.join(str(exc).split())}") from None

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()  # type: ignore[attr-defined]
        self.handles.clear()
