"""The sample mirror's Challenge 2021 folder: `challenge-2021/training/<database>/g1/...`.

Two kinds of records, as in the real collection:
- the `ptb-xl` database re-issues PTB-XL's 500 Hz records as `HR<ecg_id>`: here, each record of
  the sample's `ptb-xl/records500/` is written again in the Challenge layout with the same ADC
  counts (so the cross-source duplicate check has real work to do);
- the other databases hold their own recordings: simulated ECGs at each database's rate
  (Georgia 500 Hz x 10 s, PTB 1000 Hz, St Petersburg INCART 257 Hz and longer than the recipe),
  labelled with Challenge SNOMED-CT codes of both mapping files (scored and unscored) drawn at
  about that database's rates in the release (`draw_dx`, from the files' per-database counts):
  Georgia records carry LVH, non-specific ST-T abnormality, lateral ischaemia about as often as
  real ones do. The first Georgia
  record also carries a code in neither mapping file (kept in `labels`, out of the report,
  counted on the card). The labels are not made to match the simulated signal.
Everything is generated; nothing is copied from the real collection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_instruct.sample.simulator import Simulator, write_checksums
from ecg_instruct.signals.leads import canonical_lead_index
from ecg_instruct.signals.wfdb_io import read_digital, read_header
from ecg_instruct.sources.cinc2021_layout import write_challenge_record

CHALLENGE_DIR = "challenge-2021"
#: (database, record prefix, rate in Hz, seconds) of the simulated databases
SIMULATED = (("georgia", "E", 500, 10.0), ("ptb", "S", 1000, 10.0),
             ("st_petersburg_incart", "I", 257, 15.0))
#: sample database -> its count column in the Challenge's mapping files
DX_COLUMNS = {"georgia": "Georgia", "ptb": "PTB", "st_petersburg_incart": "StPetersburg"}
#: a SNOMED-CT code in neither Challenge mapping file, given to the first Georgia record
UNMAPPED_CODE = "3424008"


def draw_dx(database: str, rng: np.random.Generator) -> tuple[str, ...]:
    """Label codes for one simulated record of `database`, at about the release's rates.

    The mapping files give, per database, how many records carry each code (both files). A
    record here carries as many codes as that database's records do on average (`m` = codes
    counted / records: 1.14 in PTB, 2.27 in Georgia; `floor(m)` or `ceil(m)` codes, mean `m`),
    drawn without replacement in proportion to the counts; returned in the files' order.
    """
    from ecg_instruct.reports.code_reports import CHALLENGE_DATABASE_RECORDS, challenge_mapping

    column = DX_COLUMNS[database]
    rows = challenge_mapping()
    counts = np.array([row.counts[column] for row in rows], dtype=np.float64)
    mean = max(1.0, counts.sum() / CHALLENGE_DATABASE_RECORDS[column])
    n = int(mean) + int(rng.random() < mean - int(mean))
    picked = rng.choice(len(rows), size=min(n, int((counts > 0).sum())), replace=False,
                        p=counts / counts.sum())
    return tuple(rows[i].code for i in sorted(picked))


def copy_ptbxl_records(ptbxl_root: Path, training: Path, ecg_ids: list[int] | None = None) -> int:
    """Write PTB-XL 500 Hz records (all, or `ecg_ids`) as Challenge `ptb-xl/g<k>/HR<ecg_id>`
    with the same ADC counts, gain and lead order; returns how many were written."""
    people = _ptbxl_age_sex(ptbxl_root)
    written = 0
    for hea in sorted((ptbxl_root / "records500").glob("*/*_hr.hea")):
        ecg_id = int(hea.name.split("_")[0])
        if ecg_ids is not None and ecg_id not in ecg_ids:
            continue
        record = str(hea)[: -len(".hea")]
        header = read_header(record)
        try:
            raw, gains = read_digital(record, header)
        except Exception:  # noqa: BLE001 - a deliberately broken sample record: not re-issued
            continue
        order = canonical_lead_index(header.sig_names)
        counts = np.ascontiguousarray(raw.T[order]).astype(np.int16)
        group = f"g{ecg_id // 1000 + 1}"
        age, sex = people.get(ecg_id, (None, None))  # as in the release: PTB-XL's values
        write_challenge_record(training / "ptb-xl" / group, f"HR{ecg_id:05d}", counts,
                               int(header.fs), gain=float(gains[0]), age=age, sex=sex,
                               dx=("426783006",))
        written += 1
    return written


def _ptbxl_age_sex(ptbxl_root: Path) -> dict[int, tuple[int | None, str | None]]:
    """ecg_id -> (age, "Male"/"Female") from the mirror's `ptbxl_database.csv`, if any."""
    import csv

    path = ptbxl_root / "ptbxl_database.csv"
    if not path.is_file():
        return {}
    out = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                age = int(float(row.get("age") or "nan"))
            except ValueError:
                age = None
            sex = {"0": "Male", "1": "Female"}.get((row.get("sex") or "").split(".")[0])
            out[int(float(row["ecg_id"]))] = (age, sex)
    return out


def write_cinc2021(out: Path, n_per_database: int = 4, seed: int = 0,
                   ptbxl_root: Path | None = None, simulator=None) -> Path:
    """Write `out/challenge-2021/` (the Challenge 2021 v1.0.3 layout); returns that folder."""
    from scipy.signal import resample_poly

    root = Path(out) / CHALLENGE_DIR
    training = root / "training"
    simulator = simulator or Simulator(seed)
    rng = np.random.default_rng(seed + 2021)
    for database, prefix, fs, seconds in SIMULATED:
        for k in range(n_per_database):
            mv = simulator.record(int(rng.integers(55, 105)), rng)  # 500 Hz x 10 s
            if seconds > 10:
                mv = np.concatenate([mv, mv[:, : int(500 * (seconds - 10))]], axis=1)
            if fs != 500:
                mv = resample_poly(mv, fs, 500, axis=1, padtype="line")
            counts = np.clip(np.rint(mv * 1000.0), -32767, 32767).astype(np.int16)
            dx = draw_dx(database, rng)
            if database == "georgia" and k == 0:
                dx += (UNMAPPED_CODE,)
            sex = ("Male", "Female")[int(rng.integers(2))]
            write_challenge_record(training / database / "g1", f"{prefix}{k + 1:04d}", counts, fs,
                                   age=int(rng.integers(20, 90)), sex=sex, dx=dx)
    if ptbxl_root is not None and (ptbxl_root / "records500").is_dir():
        copy_ptbxl_records(ptbxl_root, training)
    write_checksums(root)
    return root
