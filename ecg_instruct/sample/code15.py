"""The sample mirror's CODE-15% folder: `code-15/exams.csv` + `exams_part{N}.hdf5`.

Generated in the structure the release documents (see `sources/code15.py`): 400 Hz tracings of
7 or 10 s, centred and zero-padded to 4096 samples, float32 millivolts in the canonical lead
order, `exam_id` beside `tracings` in each part, several exams per patient. Nothing is copied
from the real release.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ecg_instruct.sample.simulator import Simulator
from ecg_instruct.sources.code15 import LABEL_COLUMNS, PADDED

CODE15_DIR = "code-15"
EXAM_COLUMNS = ("exam_id", "age", "is_male", "nn_predicted_age", *LABEL_COLUMNS, "patient_id",
                "death", "timey", "normal_ecg", "trace_file")


def padded_tracing(mv_400hz: np.ndarray) -> np.ndarray:
    """(12, n) at 400 Hz -> (4096, 12) float32, centred between zeros as the release stores it."""
    n = mv_400hz.shape[1]
    out = np.zeros((PADDED, 12), dtype=np.float32)
    start = (PADDED - n) // 2
    out[start:start + n] = mv_400hz.T
    return out


def write_code15(out: Path, n_exams: int = 12, seed: int = 0, n_parts: int = 2,
                 simulator=None) -> Path:
    """Write `out/code-15/`; returns that folder. Exams alternate 10 s and 7 s recordings."""
    import h5py
    from scipy.signal import resample_poly

    root = Path(out) / CODE15_DIR
    root.mkdir(parents=True, exist_ok=True)
    simulator = simulator or Simulator(seed)
    rng = np.random.default_rng(seed + 15)
    rows, parts = [], {k: ([], []) for k in range(n_parts)}
    for k in range(n_exams):
        exam_id = 100000 + 7 * k
        mv = resample_poly(simulator.record(int(rng.integers(55, 105)), rng), 4, 5, axis=1,
                           padtype="line")  # 500 Hz x 10 s -> 400 Hz x 4000
        if k % 2:
            mv = mv[:, :2800]  # a 7 s exam
        part = k % n_parts
        parts[part][0].append(exam_id)
        parts[part][1].append(padded_tracing(mv))
        flags = {c: "False" for c in LABEL_COLUMNS}
        flag = LABEL_COLUMNS[k % len(LABEL_COLUMNS)] if k % 3 else None
        if flag:
            flags[flag] = "True"
        rows.append({"exam_id": exam_id, "age": int(rng.integers(20, 90)),
                     "is_male": str(bool(k % 2)), "nn_predicted_age": "", **flags,
                     "patient_id": 5000 + k // 2,  # two exams per patient
                     "death": "", "timey": "", "normal_ecg": str(flag is None),
                     "trace_file": f"exams_part{part}.hdf5"})
    for part, (ids, tracings) in parts.items():
        with h5py.File(root / f"exams_part{part}.hdf5", "w") as handle:
            handle.create_dataset("exam_id", data=np.asarray(ids, dtype=np.int64))
            handle.create_dataset("tracings", data=np.stack(tracings), chunks=(1, PADDED, 12))
    with (root / "exams.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(EXAM_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return root
