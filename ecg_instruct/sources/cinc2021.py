"""PhysioNet/CinC Challenge 2021 reader (v1.0.3): `training/<database>/<group>/<record>.hea`.

Facts this relies on (the Challenge 2021 release and its documentation): there is no metadata
CSV; each record's header carries its metadata as comments (`#Age: 59`, `#Sex: Female`,
`#Dx: 164934002,426783006` with SNOMED-CT codes); signals are MATLAB v4 `.mat` files read as
format 16 after a 24-byte offset (see `cinc2021_layout.py`); record names are unique across the
databases (A*, Q*, I*, S*, HR*, E*, JS*). The `ptb-xl` database's records `HR<ecg_id>` are
PTB-XL's 500 Hz records (`records500/.../<ecg_id>_hr`), so they are tied to their PTB-XL id
(:func:`ptbxl_id_of`): the split follows PTB-XL's `strat_fold` when `ptbxl_database.csv` is at
hand, and the duplicate check names the PTB-XL record. The Challenge gives no patient ids: every
other record is its own patient (a limitation the dataset card states).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ecg_instruct.errors import RecordReject
from ecg_instruct.signals.wfdb_io import parse_header
from ecg_instruct.sources._csv import IndexRejects, read_metadata_csv, to_float, to_int_string

SOURCE = "cinc2021"
TRAINING = "training"
DATABASES: tuple[str, ...] = (
    "chapman_shaoxing", "cpsc_2018", "cpsc_2018_extra", "georgia", "ningbo", "ptb", "ptb-xl",
    "st_petersburg_incart",
)
PTBXL_DATABASE = "ptb-xl"
_PTBXL_RECORD = re.compile(r"^HR(\d{5})$")
FIX = ("point --raw-dir at a folder holding challenge-2021/training/<database>/... "
       "(Challenge 2021 v1.0.3) or run `ecg-instruct download cinc2021`")


def ptbxl_id_of(record_id: str) -> str | None:
    """`ptbxl/06000` for the Challenge copy `cinc2021/HR06000` of a PTB-XL record, else None."""
    source, _, name = record_id.partition("/")
    match = _PTBXL_RECORD.match(name) if source == SOURCE else None
    return f"ptbxl/{match.group(1)}" if match else None


def read_ptbxl_folds(ptbxl_root: Path | None) -> dict[str, tuple[int, str]]:
    """PTB-XL id -> (strat_fold, patient_id) from `ptbxl_database.csv`, {} when it is absent."""
    if ptbxl_root is None or not (ptbxl_root / "ptbxl_database.csv").is_file():
        return {}
    frame = read_metadata_csv(ptbxl_root / "ptbxl_database.csv",
                              ("ecg_id", "patient_id", "strat_fold"),
                              "the PTB-XL metadata decides the Challenge copy's split")
    out: dict[str, tuple[int, str]] = {}
    for ecg_id, patient, fold in zip(frame["ecg_id"], frame["patient_id"], frame["strat_fold"],
                                     strict=True):
        ecg, fold_int = to_int_string(ecg_id), to_int_string(fold)
        if ecg is not None and fold_int is not None and 1 <= int(fold_int) <= 10:
            out[f"ptbxl/{int(ecg):05d}"] = (int(fold_int), to_int_string(patient) or "")
    return out


def _header_files(root: Path) -> list[tuple[str, str, str]]:
    """(database, group, record name) of every header under `training/`, sorted."""
    found = []
    training = root / TRAINING
    for database in sorted(os.listdir(training)):
        db_dir = training / database
        if not db_dir.is_dir():
            continue
        for group in sorted(os.listdir(db_dir)):
            group_dir = db_dir / group
            if not group_dir.is_dir():
                continue
            for entry in sorted(os.listdir(group_dir)):
                if entry.endswith(".hea"):
                    found.append((database, group, entry[:-4]))
    return found


def _comment(comments: list[str], key: str) -> str:
    for comment in comments:
        name, sep, value = comment.partition(":")
        if sep and name.strip().lower() == key:
            return value.strip()
    return ""


def _sex(value: str) -> str | None:
    first = value[:1].lower()
    return {"m": "male", "f": "female"}.get(first)


def read_index(root: Path, ptbxl_root: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical index rows and index-stage rejects for one Challenge 2021 mirror.

    `fold` is PTB-XL's strat_fold for the `ptb-xl` records when `ptbxl_root` holds
    `ptbxl_database.csv`, else -1 (then the split is a hash; see `index/table.py`).
    """
    from ecg_instruct.errors import UserError

    if not (root / TRAINING).is_dir():
        raise UserError("no training/ folder", path=root, fix=FIX)
    folds = read_ptbxl_folds(ptbxl_root)
    rows: list[dict] = []
    rejects = IndexRejects(SOURCE)
    for position, (database, group, name) in enumerate(_header_files(root)):
        record_id = f"{SOURCE}/{name}"
        relative = f"{TRAINING}/{database}/{group}/{name}"
        if rejects.is_duplicate(record_id, position + 1, f"record {name} ({relative}.hea)"):
            continue
        hea = root / f"{relative}.hea"
        try:
            header = parse_header(hea.read_text(encoding="latin-1"), str(hea))
        except RecordReject as exc:
            rejects.add(record_id, exc.reason, exc.detail)
            continue
        except OSError as exc:
            rejects.add(record_id, "missing_file", f"{hea}: {exc.strerror or exc}")
            continue
        dx = _comment(header.comments, "dx")
        codes = [c.strip() for c in dx.split(",") if c.strip()]
        age = to_float(_comment(header.comments, "age"))
        ptbxl_id = ptbxl_id_of(record_id) if database == PTBXL_DATABASE else None
        fold, patient = folds.get(ptbxl_id, (-1, "")) if ptbxl_id else (-1, "")
        rows.append({
            "id": record_id,
            "source": SOURCE,
            "native_id": name,
            # PTB-XL's patient when known (keeps a patient's ECGs in one split), else the record
            "patient_id": f"ptbxl-{patient}" if patient else name,
            "path": relative,
            "fs": int(round(header.fs)),
            "n_samples": header.n_samples,
            "report_raw": f"Dx: {dx}",
            "labels": codes,
            "scp_codes": "{}",
            "measurements": None,
            "age": age,
            "sex": _sex(_comment(header.comments, "sex")),
            "fold": fold,
        })
    return pd.DataFrame(rows), rejects.frame()
