"""Signal-test fixtures: realistic 12-lead waveforms and WFDB writers in the real sources'
header conventions (see ../shared/data/real/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_instruct.sample.simulator import derive_limb_leads

PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MIMIC_NAMES = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
CANONICAL = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def simulate_12lead(duration: float = 10, fs: int = 500, heart_rate: int = 70,
                    seed: int = 1) -> np.ndarray:
    """(12, n) mV in canonical order from neurokit2, with III/aVR/aVL/aVF derived from I and II
    (neurokit2's leads are independent; real ones obey Einthoven/Goldberger)."""
    import neurokit2 as nk

    df = nk.ecg_simulate(duration=duration, sampling_rate=fs, heart_rate=heart_rate,
                         method="multileads", random_state=seed)
    return derive_limb_leads(df[CANONICAL].to_numpy().T.copy())


@pytest.fixture(scope="session")
def ecg500() -> np.ndarray:
    """One 10 s, 500 Hz canonical 12-lead ECG at 70 bpm (simulated once per session)."""
    x = simulate_12lead()
    x.setflags(write=False)
    return x


def write_record(directory: Path, name: str, signal_mv: np.ndarray, fs: float, gain: float,
                 sig_names: list[str], fmt: str = "16", **kwargs) -> Path:
    """Write ``signal_mv`` (n_sig, n) with wfdb.wrsamp; returns the record path (no extension)."""
    import wfdb

    n_sig = signal_mv.shape[0]
    lim = 32767 / gain
    p = np.clip(signal_mv, -lim, lim).T.copy()  # NaN stays NaN and becomes -32768
    wfdb.wrsamp(name, fs=fs, units=["mV"] * n_sig, sig_name=list(sig_names), p_signal=p,
                fmt=[fmt] * n_sig, adc_gain=[gain] * n_sig, baseline=[0] * n_sig,
                write_dir=str(directory), **kwargs)
    return directory / name


def canonical_to(names: list[str], x: np.ndarray) -> np.ndarray:
    """Reorder a canonical signal into a source's lead order (inverse of canonical order)."""
    key = [c.lower() for c in CANONICAL]
    return x[[key.index(n.lower()) for n in names]]


def write_ptbxl(directory: Path, ecg_id: int, x_canonical: np.ndarray, fs: int = 500) -> Path:
    """PTB-XL convention: ``00001_hr``, gain 1000, AVR/AVL/AVF upper case."""
    suffix = "hr" if fs == 500 else "lr"
    return write_record(directory, f"{ecg_id:05d}_{suffix}", canonical_to(PTBXL_NAMES, x_canonical),
                        fs, 1000.0, PTBXL_NAMES)


def write_mimic(directory: Path, study_id: int, x_canonical: np.ndarray) -> Path:
    """MIMIC-IV-ECG convention: study id as name, gain 200, aVF before aVL, time and date."""
    import datetime

    return write_record(directory, str(study_id), canonical_to(MIMIC_NAMES, x_canonical), 500,
                        200.0, MIMIC_NAMES, base_time=datetime.time(13, 26, 0),
                        base_date=datetime.date(2180, 4, 21))


class _Helpers:
    """The writers above, handed to tests as a fixture (test modules cannot import conftest)."""

    PTBXL_NAMES = PTBXL_NAMES
    MIMIC_NAMES = MIMIC_NAMES
    CANONICAL = CANONICAL
    simulate_12lead = staticmethod(simulate_12lead)
    write_record = staticmethod(write_record)
    write_ptbxl = staticmethod(write_ptbxl)
    write_mimic = staticmethod(write_mimic)
    canonical_to = staticmethod(canonical_to)


@pytest.fixture(scope="session")
def sig() -> type[_Helpers]:
    """Signal-test helpers: ``sig.write_ptbxl(tmp_path, 1, x)`` etc."""
    return _Helpers
