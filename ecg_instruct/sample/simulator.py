"""The sample generator's shared pieces: simulated 12-lead signals and the mirror's checksums.

Every part of the sample mirror (PTB-XL and MIMIC-IV-ECG layouts, the physiology-driven draw,
Challenge 2021, CODE-15%) simulates its signals with one `Simulator`, so the parts import this
module and not each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Finding:
    """One synthetic clinical picture with its report in each source's style."""

    heart_rate: int
    scp_codes: dict[str, float]
    german: str
    english: str
    mimic: tuple[str, ...]
    p_axis: str = "60"


def derive_limb_leads(signal: np.ndarray) -> np.ndarray:
    """Set III, aVR, aVL, aVF (rows 2-5, canonical order) from I and II, in place.

    neurokit2 simulates the 12 leads independently; real limb leads obey Einthoven's and
    Goldberger's laws (III = II - I, aVR = -(I + II)/2, ...), which checks and models may rely on.
    """
    lead_i, lead_ii = signal[0], signal[1]
    signal[2] = lead_ii - lead_i
    signal[3] = -(lead_i + lead_ii) / 2
    signal[4] = lead_i - lead_ii / 2
    signal[5] = lead_ii - lead_i / 2
    return signal


class Simulator:
    """Simulated 12-lead ECGs at 500 Hz, a few neurokit2 bases reused with perturbations.

    neurokit2 simulates each lead independently, so the limb leads III, aVR, aVL, aVF are
    re-derived from I and II (Einthoven/Goldberger) to make the records physiologically coherent.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self.bases: dict[int, np.ndarray] = {}

    #: Heart rates simulated by neurokit2 (~1 s each); others are made by time-scaling the
    #: nearest base, which keeps generating the mirror to a few seconds.
    BASE_RATES = (55, 75, 105)

    def base(self, heart_rate: int) -> np.ndarray:
        nearest = min(self.BASE_RATES, key=lambda rate: abs(rate - heart_rate))
        if nearest != heart_rate:
            from scipy.signal import resample

            stretched = resample(self.base(nearest), int(5000 * nearest / heart_rate), axis=1)
            return np.tile(stretched, (1, 2))[:, :5000]
        if heart_rate not in self.bases:
            import neurokit2 as nk  # slow import (~2 s): only when generating

            frame = nk.ecg_simulate(duration=10, sampling_rate=500, method="multileads",
                                    heart_rate=heart_rate, random_state=self.seed + heart_rate)
            self.bases[heart_rate] = np.asarray(frame, dtype=np.float64).T  # (12, 5000)
        return self.bases[heart_rate]

    def record(self, heart_rate: int, rng: np.random.Generator) -> np.ndarray:
        signal = self.base(heart_rate) * rng.uniform(0.8, 1.25, size=(12, 1))
        signal = np.roll(signal, int(rng.integers(0, 500)), axis=1)
        signal = signal + rng.normal(0.0, 0.008, size=signal.shape)
        return derive_limb_leads(signal)


def write_checksums(root: Path) -> None:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS.txt"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(root).as_posix()}\n")
    (root / "SHA256SUMS.txt").write_text("".join(lines), encoding="utf-8")
