"""Records to plot: from a published dataset (by id or a split's sample) or a raw WFDB mirror.

A raw record is read straight from its WFDB files and run through the same quality checks as
the build, so a rejected record can be looked at with its reason and the offending stretches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecg_instruct.errors import RecordReject, UserError
from ecg_instruct.plot.marks import find_marks
from ecg_instruct.plot.view import EcgView
from ecg_instruct.rng import stable_hash
from ecg_instruct.signals.leads import to_canonical
from ecg_instruct.signals.quality import QualityConfig, check_and_repair
from ecg_instruct.signals.wfdb_io import read_record
from ecg_instruct.sources import SOURCE_DIRS, reader_for, source_root

_COLUMNS = ["id", "signal", "fs", "report", "labels", "signal_repairs"]
LIST_HINT = "list them with `ecg-instruct plot --data {data} --list`"


def _dataset_files(data: Path, source: str | None = None, split: str | None = None) -> list[Path]:
    """The published Parquet shards of ``data`` (every source, or one), sorted."""
    data = Path(data)
    if not (data / "README.md").is_file() or not (data / "data").is_dir():
        raise UserError("is not a dataset written by `ecg-instruct build` (no README.md + data/)",
                        path=data, fix="pass the --out folder of a build as --data")
    sources = [source] if source else sorted(SOURCE_DIRS)
    pattern = f"{split}-*.parquet" if split else "*.parquet"
    return [p for s in sources for p in sorted((data / "data" / s).glob(pattern))]


def published_ids(data: Path, split: str | None = None) -> list[str]:
    """Every record id of the dataset (or of one split), sorted."""
    ids: list[str] = []
    for path in _dataset_files(data, split=split):
        ids.extend(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return sorted(ids)


def _signal_array(table: pa.Table) -> np.ndarray:
    """The ``signal`` column of a one-row table as float64 millivolts ``(12, n)``."""
    column = table.column("signal").combine_chunks()
    values = pc.list_flatten(pc.list_flatten(column)).to_numpy(zero_copy_only=False)
    n_leads = len(column[0])
    signal = np.asarray(values, dtype=np.float64).reshape(n_leads, -1)
    if "adc_gain" in table.column_names:  # int16 storage: counts / gain = mV
        signal = signal / float(table.column("adc_gain")[0].as_py())
    return signal


def _view_of(table: pa.Table, origin: str) -> EcgView:
    row = table.drop_columns(["signal"]).to_pylist()[0]
    return EcgView(row["id"], _signal_array(table), float(row["fs"]), report=row["report"] or "",
                   labels=list(row["labels"] or []), repairs=list(row["signal_repairs"] or []),
                   origin=origin)


def _rejected(data: Path, record_id: str) -> dict | None:
    path = Path(data) / "rejects.parquet"
    if not path.is_file():
        return None
    rows = pq.read_table(path, filters=[("id", "=", record_id)]).to_pylist()
    return rows[0] if rows else None


def read_published(path: Path, record_id: str, origin: str) -> EcgView | None:
    """Record ``record_id`` of one published Parquet file (None if it is not there)."""
    table = pq.read_table(path, filters=[("id", "=", record_id)])
    if not table.num_rows:
        return None
    columns = [c for c in (*_COLUMNS, "adc_gain") if c in table.column_names]
    return _view_of(table.select(columns), origin)


def published_view(data: Path, record_id: str) -> EcgView:
    """One published record by id; a clear error naming the dataset for an unknown id."""
    source = record_id.split("/", 1)[0]
    files = _dataset_files(data, source=source if source in SOURCE_DIRS else None)
    for path in files:
        view = read_published(path, record_id, f"{Path(data).name}/{path.parent.name}")
        if view is not None:
            return view
    reject = _rejected(data, record_id)
    if reject is not None:
        raise UserError(f"{record_id} was rejected at {reject['stage']} ({reject['reason']}: "
                        f"{reject['detail']})", path=data,
                        fix=f"plot the raw record: ecg-instruct plot --raw-dir RAW --data {data} "
                            f"--id {record_id}")
    raise UserError(f"no record {record_id!r} in this dataset", path=data,
                    fix=LIST_HINT.format(data=data))


def sample_ids(data: Path, split: str, n: int, seed: int = 0) -> list[str]:
    """``n`` ids of a split, chosen by a seeded hash (the same ids whatever the file layout)."""
    ids = published_ids(data, split)
    if not ids:
        raise UserError(f"no records in split {split!r}", path=data,
                        fix=LIST_HINT.format(data=data))
    return sorted(ids, key=lambda i: stable_hash(seed, "plot", i))[:n]


def _index_row(raw_dir: Path, record_id: str, records: str) -> tuple[dict, Path]:
    """The source's index row of ``record_id`` and its WFDB record path (without extension)."""
    source = record_id.split("/", 1)[0]
    if source not in SOURCE_DIRS:
        raise UserError(f"id {record_id!r} does not start with a source ({', '.join(SOURCE_DIRS)})",
                        fix="write ids as <source>/<native id>, e.g. ptbxl/00001 or mimic/40689238")
    root = source_root(raw_dir, source)
    if not root.is_dir():
        raise UserError(f"no {SOURCE_DIRS[source]}/ folder", path=root,
                        fix="pass the --raw-dir of the build (the folder holding ptb-xl/, mimic-iv-ecg/)")
    options = {"records": records} if source == "ptbxl" else {}
    rows, rejects = reader_for(source)(root, **options)
    match = rows[rows["id"] == record_id] if len(rows) else rows
    if len(match):
        row = match.iloc[0].to_dict()
        return row, root / row["path"]
    hit = rejects[rejects["id"] == record_id] if len(rejects) else rejects
    if len(hit):
        first = hit.iloc[0]
        raise UserError(f"{record_id} was rejected at index ({first['reason']}: {first['detail']}); "
                        "it has no signal to plot", path=root)
    raise UserError(f"no record {record_id!r} in this mirror's metadata", path=root,
                    fix="check the id (PTB-XL: ptbxl/<ecg_id, 5 digits>; MIMIC: mimic/<study_id>)")


def raw_view(raw_dir: Path, record_id: str, quality: QualityConfig | None = None,
             records: str = "hr", data: Path | None = None) -> EcgView:
    """A record read from its WFDB files, with the build's reject reason (from ``data``'s
    rejects table when given, else from running the quality checks) and the offending
    stretches marked."""
    quality = quality or QualityConfig()
    row, record_path = _index_row(Path(raw_dir), record_id, records)
    reject: tuple[str, str, str] | None = None
    try:
        record = read_record(record_path)
    except RecordReject as exc:
        if exc.reason != "checksum_mismatch":
            raise UserError(f"cannot be read ({exc.reason}: {exc.detail})",
                            path=f"{record_path}.hea", fix="nothing to plot; see the rejects table") from None
        reject = ("signals", exc.reason, exc.detail)
        record = read_record(record_path, verify_checksum=False)
    try:
        signal = to_canonical(record.signal, record.sig_names)
    except RecordReject as exc:
        raise UserError(f"not a 12-lead record ({exc.reason}: {exc.detail})",
                        path=f"{record_path}.hea", fix="only 12-lead records can be plotted") from None
    if reject is None:
        try:
            check_and_repair(signal, record.fs, quality)
        except RecordReject as exc:
            reject = ("signals (re-checked)", exc.reason, exc.detail)
    found = _rejected(data, record_id) if data is not None else None
    if found is not None:
        reject = (found["stage"], found["reason"], found["detail"])
    labels = row.get("labels")
    return EcgView(record_id, signal, record.fs, report=str(row.get("report_raw") or ""),
                   labels=list(labels) if labels is not None else [],
                   origin=f"raw WFDB {SOURCE_DIRS[row['source']]}/{row['path']}",
                   reject=reject, marks=find_marks(signal, record.fs, quality))

