"""PhysioNet-shaped trees (real WFDB files, CSVs, SHA256SUMS.txt) served on 127.0.0.1."""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecg_instruct.download.fetch import FetchConfig
from ecg_instruct.index.split import mimic_split

from .physionet_server import PhysioNetServer

PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
PTBXL_IDS = [1, 2, 3, 4, 5, 17]
# Fast, patient retries for tests: a real run waits seconds between tries.
FAST = FetchConfig(retries=3, backoff=0.001, max_backoff=0.01, connect_timeout=2,
                   read_timeout=5)


def _wfdb(folder: Path, name: str, fs: int, n: int, leads: list[str], gain: float,
          seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    digital = rng.integers(-2000, 2000, size=(n, len(leads))).astype(np.int16)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(leads), sig_name=leads, d_signal=digital,
                fmt=["16"] * len(leads), adc_gain=[gain] * len(leads),
                baseline=[0] * len(leads), write_dir=str(folder))


def write_checksums(root: Path) -> None:
    """SHA256SUMS.txt exactly as PhysioNet writes it: `<sha256>  <path>`, sorted."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != "SHA256SUMS.txt":
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}\n")
    (root / "SHA256SUMS.txt").write_text("".join(lines))


def build_ptbxl(root: Path) -> None:
    """PTB-XL 1.0.3 layout; CSV rows deliberately not in ecg_id order."""
    rows = []
    for i, ecg_id in enumerate(PTBXL_IDS):
        folder = f"{(ecg_id // 1000) * 1000:05d}"
        lr, hr = f"records100/{folder}/{ecg_id:05d}_lr", f"records500/{folder}/{ecg_id:05d}_hr"
        _wfdb(root / "records100" / folder, f"{ecg_id:05d}_lr", 100, 1000, PTBXL_LEADS,
              1000.0, ecg_id)
        _wfdb(root / "records500" / folder, f"{ecg_id:05d}_hr", 500, 5000, PTBXL_LEADS,
              1000.0, ecg_id + 1000)
        rows.append({"ecg_id": ecg_id, "patient_id": float(100 + i), "age": 50,
                     "report": "sinusrhythmus normales ekg", "scp_codes": "{'NORM': 100.0}",
                     "strat_fold": [1, 9, 10, 3, 10, 5][i], "filename_lr": lr,
                     "filename_hr": hr})
    rows.reverse()
    with (root / "ptbxl_database.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "scp_statements.csv").write_text(",description\nNORM,normal ECG\n")
    (root / "LICENSE.txt").write_text("CC-BY 4.0\n")
    (root / "RECORDS").write_text("".join(r["filename_hr"] + "\n" for r in reversed(rows)))
    write_checksums(root)


def subjects_by_split(n_test: int, n_other: int) -> tuple[list[int], list[int]]:
    """Subject ids (from 10000032 up) that the split function puts in test / elsewhere."""
    test, other = [], []
    subject = 10000032
    while len(test) < n_test or len(other) < n_other:
        bucket = test if mimic_split(subject) == "test" else other
        if len(bucket) < (n_test if bucket is test else n_other):
            bucket.append(subject)
        subject += 1
    return test, other


def build_mimic(root: Path) -> dict[int, list[str]]:
    """MIMIC-IV-ECG 1.0 layout; returns subject_id -> record paths (two studies per subject)."""
    test, other = subjects_by_split(2, 3)
    by_subject: dict[int, list[str]] = {}
    rows = []
    study = 40000000
    for subject in sorted(test + other):
        for _ in range(2):
            study += 7
            rel = f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"
            _wfdb(root / Path(rel).parent, str(study), 500, 1000, MIMIC_LEADS, 200.0, study)
            by_subject.setdefault(subject, []).append(rel)
            rows.append({"subject_id": subject, "study_id": study, "file_name": str(study),
                         "ecg_time": "2180-07-23 08:44:00", "path": rel})
    rows.reverse()
    with (root / "record_list.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "machine_measurements.csv").write_text(
        "subject_id,study_id,report_0\n" + "".join(
            f"{r['subject_id']},{r['study_id']},Sinus rhythm\n" for r in rows))
    write_checksums(root)
    return by_subject


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Build both trees once per session; tests get copies they may damage."""
    base = tmp_path_factory.mktemp("physionet")
    build_ptbxl(base / "ptb-xl" / "1.0.3")
    subjects = build_mimic(base / "mimic-iv-ecg" / "1.0")
    return {"base": base, "mimic_subjects": subjects}


@pytest.fixture
def mirror(pristine: dict[str, object], tmp_path: Path) -> Path:
    """A writable copy of the served tree (`<mirror>/ptb-xl/1.0.3`, `.../mimic-iv-ecg/1.0`)."""
    target = tmp_path / "mirror"
    shutil.copytree(pristine["base"], target)  # type: ignore[arg-type]
    return target


@pytest.fixture
def server(mirror: Path) -> Iterator[PhysioNetServer]:
    with PhysioNetServer(mirror) as srv:
        yield srv


@pytest.fixture
def ptbxl_url(server: PhysioNetServer) -> str:
    return server.base_url + "ptb-xl/1.0.3/"


@pytest.fixture
def mimic_url(server: PhysioNetServer) -> str:
    return server.base_url + "mimic-iv-ecg/1.0/"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "raw"


def tree_files(root: Path) -> dict[str, bytes]:
    """relative path -> content of every file below root."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}
