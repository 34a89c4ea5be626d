"""What we know about each PhysioNet release: where it lives, its layout, how to list its records.

A release has small files (metadata CSVs, licence, docs) that are always fetched first, and WFDB
records under one or more record folders. Subsets are chosen per *record* from the metadata
(a PTB-XL ecg_id has a 100 Hz and a 500 Hz record; a MIMIC study has one), so the builder gets
exactly the files its index will point at.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ecg_instruct.download.manifest import safe_relpath
from ecg_instruct.download.splits import Splitter
from ecg_instruct.errors import UserError
from ecg_instruct.sources import SOURCE_DIRS


@dataclass(frozen=True)
class Record:
    """One selectable unit: an id users can name, the WFDB stems it consists of, its split."""

    id: str
    stems: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class Release:
    """A PhysioNet release as the downloader sees it."""

    name: str
    dirname: str
    base_url: str
    record_prefixes: tuple[str, ...]
    index_file: str
    read_records: Callable[[Path, Splitter], list[Record]]

    def is_record_file(self, relpath: str) -> bool:
        """True for files inside a record folder (the bulk of the release)."""
        return relpath.startswith(self.record_prefixes)

    def rate_prefix_ok(self, relpath: str, rate: int | None) -> bool:
        """PTB-XL keeps 100 Hz and 500 Hz records in separate folders; `--rate` picks one."""
        if rate is None or self.name != "ptbxl":
            return True
        return relpath.startswith(f"records{rate}/")


@contextlib.contextmanager
def _open_csv(path: Path, required: tuple[str, ...]) -> Iterator[csv.DictReader]:
    """A DictReader over a metadata CSV that has the columns we need, else a UserError."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read ({exc.strerror})", path=path, fix="re-run download") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                f"missing column(s) {', '.join(missing)}",
                path=path,
                fix="the metadata does not match this release; check --base-url",
            )
        yield reader


def _stem(raw: str, path: Path, line: int) -> str:
    try:
        return safe_relpath(raw.strip())
    except ValueError as exc:
        raise UserError(
            f"line {line} names record path {raw!r} ({exc}); refusing it",
            path=path,
            fix="use a trusted mirror with --base-url",
        ) from None


def read_ptbxl_records(root: Path, splitter: Splitter) -> list[Record]:
    """Records from `ptbxl_database.csv` sorted by ecg_id: `filename_lr` and `filename_hr`."""
    path = root / "ptbxl_database.csv"
    records = []
    with _open_csv(path, ("ecg_id", "filename_lr", "filename_hr", "strat_fold")) as reader:
        for line, row in enumerate(reader, start=2):
            try:
                ecg_id = int(float(row["ecg_id"]))
            except ValueError:
                raise UserError(
                    f"line {line}: ecg_id {row['ecg_id']!r} is not a number", path=path
                ) from None
            stems = tuple(_stem(row[c], path, line) for c in ("filename_lr", "filename_hr")
                          if row[c].strip())
            records.append(Record(f"{ecg_id:05d}", stems, splitter.ptbxl(row["strat_fold"])))
    records.sort(key=lambda r: int(r.id))
    return records


def read_mimic_records(root: Path, splitter: Splitter) -> list[Record]:
    """Records from `record_list.csv` sorted by (subject_id, study_id); split by subject."""
    path = root / "record_list.csv"
    records = []
    keys = []
    with _open_csv(path, ("subject_id", "study_id", "path")) as reader:
        for line, row in enumerate(reader, start=2):
            subject, study = row["subject_id"].strip(), row["study_id"].strip()
            if not (subject.isdigit() and study.isdigit()):
                raise UserError(
                    f"line {line}: subject_id/study_id {subject!r}/{study!r} are not numbers",
                    path=path,
                )
            stem = _stem(row["path"], path, line)
            records.append(Record(study, (stem,), splitter.mimic(subject)))
            keys.append((int(subject), int(study)))
    order = sorted(range(len(records)), key=keys.__getitem__)
    return [records[i] for i in order]


def read_cinc2021_records(root: Path, splitter: Splitter) -> list[Record]:
    """Challenge 2021 records from the release's own `SHA256SUMS.txt` (it has no metadata CSV):
    every `training/<database>/<group>/<name>.hea`, sorted by path; split as the build assigns
    it without PTB-XL's metadata (a salted hash of the record name)."""
    path = root / "SHA256SUMS.txt"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read ({exc.strerror})", path=path, fix="re-run download") from None
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        _, _, relpath = line.strip().partition("  ")
        if not (relpath.startswith("training/") and relpath.endswith(".hea")):
            continue
        stem = _stem(relpath[: -len(".hea")], path, line_number)
        parts = stem.split("/")
        if len(parts) != 4:
            continue
        records.append(Record(parts[3], (stem,), splitter.hashed("cinc2021", parts[3])))
    records.sort(key=lambda r: r.stems[0])
    return records


def database_of(stem: str) -> str:
    """`ptb-xl` for `training/ptb-xl/g7/HR06000` (Challenge 2021 record paths)."""
    parts = stem.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "training" else ""


RELEASES: dict[str, Release] = {
    "ptbxl": Release(
        name="ptbxl",
        dirname=SOURCE_DIRS["ptbxl"],  # the folder the builder reads
        base_url="https://physionet.org/files/ptb-xl/1.0.3/",
        record_prefixes=("records100/", "records500/"),
        index_file="ptbxl_database.csv",
        read_records=read_ptbxl_records,
    ),
    "mimic": Release(
        name="mimic",
        dirname=SOURCE_DIRS["mimic"],
        base_url="https://physionet.org/files/mimic-iv-ecg/1.0/",
        record_prefixes=("files/",),
        index_file="record_list.csv",
        read_records=read_mimic_records,
    ),
    "cinc2021": Release(
        name="cinc2021",
        dirname=SOURCE_DIRS["cinc2021"],
        base_url="https://physionet.org/files/challenge-2021/1.0.3/",
        record_prefixes=("training/",),
        index_file="SHA256SUMS.txt",  # no metadata CSV: the checksum list names every record
        read_records=read_cinc2021_records,
    ),
}
