"""The issue-18 mirror: ten native PTB-XL records and the same ten ECGs as Challenge 2021 copies."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

ECG_IDS = tuple(range(6000, 6010))


@lru_cache(maxsize=1)
def shared_simulator():
    """One sample simulator for this session's collection tests: its few neurokit2 bases
    (~1 s each) are then simulated once, not once per test module."""
    from ecg_instruct.sample.simulator import Simulator

    return Simulator(0)


def write_duplicate_mirror(raw: Path, seed: int = 0) -> Path:
    """`raw/ptb-xl/records500/06000/06000_hr..06009_hr` (+ metadata, strat_fold 1..10) and
    `raw/challenge-2021/training/ptb-xl/g7/HR06000..HR06009` with the same ADC counts."""
    from ecg_instruct.sample.cinc2021 import copy_ptbxl_records
    from ecg_instruct.sample.mirror import (
        PTBXL_COLUMNS,
        PTBXL_LEADS,
        STATEMENT_COLUMNS,
        STATEMENTS,
        _write_csv,
        _write_wfdb,
    )

    simulator = shared_simulator()
    rng = np.random.default_rng(seed)
    root = raw / "ptb-xl"
    rows = []
    for k, ecg_id in enumerate(ECG_IDS):
        name = f"{ecg_id:05d}_hr"
        signal = simulator.record((60, 75, 90)[k % 3], rng)
        _write_wfdb(root / "records500" / "06000", name, signal, 500, 1000.0, PTBXL_LEADS)
        rows.append({"ecg_id": ecg_id, "patient_id": f"{17000 + k}.0", "age": "61.0", "sex": "1",
                     "report": "sinus rhythm. normal ecg.", "scp_codes": "{'NORM': 100.0, 'SR': 0.0}",
                     "strat_fold": k + 1, "filename_lr": f"records100/06000/{ecg_id:05d}_lr",
                     "filename_hr": f"records500/06000/{name}"})
    _write_csv(root / "ptbxl_database.csv", PTBXL_COLUMNS, rows)
    statements = [{"": code, "description": description, "diagnostic": "1.0" if diagnostic else "",
                   "rhythm": "1.0" if rhythm else "", "diagnostic_class": klass,
                   "diagnostic_subclass": subclass}
                  for code, (description, diagnostic, rhythm, klass, subclass) in STATEMENTS.items()]
    _write_csv(root / "scp_statements.csv", STATEMENT_COLUMNS, statements)
    copy_ptbxl_records(root, raw / "challenge-2021" / "training")
    return raw
