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
from ecg_instruct.plot.view import EcgView, Mark
from ecg_instruct.rng import stable_hash
from ecg_instruct.signals.leads import to_canonical
from ecg_instruct.signals.quality import QualityConfig, check_and_repair
from ecg_instruct.signals.wfdb_io import INVALID_SAMPLE_16, dat_path, read_header, read_record
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
    cut: int | None = None  # samples present in a truncated record
    try:
        signal_raw, fs, names = _read(record_path, verify_checksum=True)
    except RecordReject as exc:
        reject = ("signals", exc.reason, exc.detail)
        if exc.reason == "checksum_mismatch":
            signal_raw, fs, names = _read(record_path, verify_checksum=False)
        elif exc.reason == "truncated_dat" and (partial := _read_truncated(record_path)) is not None:
            signal_raw, fs, names, cut = partial
        else:
            raise UserError(f"cannot be read ({exc.reason}: {exc.detail})", path=f"{record_path}.hea",
                            fix="nothing to plot; see the rejects table") from None
    try:
        signal = to_canonical(signal_raw, names)
    except RecordReject as exc:
        raise UserError(f"not a 12-lead record ({exc.reason}: {exc.detail})",
                        path=f"{record_path}.hea", fix="only 12-lead records can be plotted") from None
    if reject is None:
        try:
            check_and_repair(signal, fs, quality)
        except RecordReject as exc:
            reject = ("signals (re-checked)", exc.reason, exc.detail)
    found = _rejected(data, record_id) if data is not None else None
    if found is not None:
        reject = (found["stage"], found["reason"], found["detail"])
    if cut is not None:  # the missing end, in every lead, instead of NaN-run marks
        n = signal.shape[1]
        marks = [Mark(lead, cut / fs, n / fs, "missing: .dat cut short") for lead in range(12)]
    else:
        marks = find_marks(signal, fs, quality)
    labels = row.get("labels")
    return EcgView(record_id, signal, fs, report=str(row.get("report_raw") or ""),
                   labels=list(labels) if labels is not None else [],
                   origin=f"raw WFDB {SOURCE_DIRS[row['source']]}/{row['path']}",
                   reject=reject, marks=marks)


def _read(record_path: Path, verify_checksum: bool) -> tuple[np.ndarray, float, list[str]]:
    record = read_record(record_path, verify_checksum=verify_checksum)
    return record.signal, record.fs, record.sig_names


def _read_truncated(record_path: Path) -> tuple[np.ndarray, float, list[str], int] | None:
    """What a format-16 ``.dat`` cut short still holds, NaN-padded to the header's length, and
    the number of samples present (None when the layout or units are not the plain case)."""
    header = read_header(record_path)
    if not header.fast_path_ok or any(u.lower() != "mv" for u in header.units):
        return None
    try:
        counts = np.fromfile(dat_path(str(record_path), header), "<i2",
                             offset=header.byte_offsets[0])
    except OSError:
        return None
    n = len(counts) // header.n_sig
    if n == 0 or header.n_samples <= n:
        return None
    frames = counts[: n * header.n_sig].reshape(n, header.n_sig).T.astype(np.float64)
    mv = (frames - header.baseline[:, None]) / header.adc_gain[:, None]
    mv[frames == INVALID_SAMPLE_16] = np.nan
    signal = np.full((header.n_sig, header.n_samples), np.nan)
    signal[:, :n] = mv
    return signal, header.fs, list(header.sig_names), n

