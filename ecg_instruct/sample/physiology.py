"""Synthetic records whose reports follow from their signals: a sample a model can learn from.

The default sample mirror draws a report and simulates a signal at the report's heart rate, so
apart from the rate nothing in the signal tells the reports apart, and a model can only learn
the report prior. Here every record gets a *picture* first, the signal is rendered from it and
the report written from it:

- heart rate < 60 -> sinus bradycardia, > 100 -> sinus tachycardia (else sinus rhythm);
- irregular RR (beat-to-beat time warp of 0.65-1.5x) -> atrial fibrillation;
- wide QRS (a 50 ms moving average widens every deflection, QRS most) -> left bundle branch block;
- low amplitude (limb leads x 0.3) -> low limb lead voltage;
- frontal axis rotated by -100 / +70 degrees (I and II rotated as a heart vector, III, aVR, aVL,
  aVF re-derived) -> left / right axis deviation;
- none of the abnormal findings -> "normal ecg" ("otherwise normal ecg" beside a brady- or
  tachycardia).

Reports are written in each source's style (PTB-XL German machine text or English, MIMIC-IV-ECG
machine statements) with matching SCP codes, ``heart_axis`` and MIMIC ``rr_interval``/``qrs_axis``.
Used by ``ecg-instruct sample --records N`` (``sample.mirror.write_learnable_mirror``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_instruct.sample.simulator import Finding, derive_limb_leads

FS = 500
N_SAMPLES = 5000
AXIS_ROTATION_DEG = {"normal": 0.0, "left": -100.0, "right": 70.0}


@dataclass(frozen=True)
class Picture:
    """The findings one synthetic record is rendered from."""

    heart_rate: int
    atrial_fibrillation: bool = False
    wide_qrs: bool = False
    low_voltage: bool = False
    axis: str = "normal"  # normal, left, right


def draw_picture(rng: np.random.Generator) -> Picture:
    """A random combination of findings (each common enough to be learnt from ~3,000 records)."""
    afib = rng.random() < 0.2
    u = rng.random()
    if afib:
        rate = int(rng.integers(70, 131))
    elif u < 0.2:
        rate = int(rng.integers(42, 57))
    elif u < 0.4:
        rate = int(rng.integers(106, 136))
    else:
        rate = int(rng.integers(62, 96))
    axis_draw = rng.random()
    axis = "left" if axis_draw < 0.15 else "right" if axis_draw < 0.25 else "normal"
    return Picture(rate, afib, bool(rng.random() < 0.2), bool(rng.random() < 0.15), axis)


def render(picture: Picture, simulator, rng: np.random.Generator) -> np.ndarray:
    """The (12, 5000) 500 Hz signal in mV for ``picture`` (``simulator``: sample.simulator.Simulator)."""
    base = _cached_base(simulator, picture.heart_rate) * rng.uniform(0.85, 1.15, size=(12, 1))
    looped = np.tile(base, (1, 3))  # room for a time warp that runs ahead
    if picture.atrial_fibrillation:
        beat = FS * 60 / picture.heart_rate
        n_beats = int(3 * N_SAMPLES / beat) + 2
        speeds = np.repeat(rng.uniform(0.65, 1.5, size=n_beats), int(beat) + 1)[:N_SAMPLES]
        positions = np.cumsum(speeds)
        positions = positions - positions[0] + rng.uniform(0, beat)
    else:  # no offset: a regular rhythm must not cross the seam of the looped 10 s base
        positions = np.arange(N_SAMPLES, dtype=np.float64)
    grid = np.arange(looped.shape[1])
    signal = np.stack([np.interp(positions, grid, lead) for lead in looped])
    if picture.wide_qrs:
        kernel = np.ones(FS // 20) / (FS // 20)  # 50 ms
        signal = 1.4 * np.stack([np.convolve(lead, kernel, mode="same") for lead in signal])
    theta = np.deg2rad(AXIS_ROTATION_DEG[picture.axis])
    if theta:
        hx = signal[0]
        hy = (signal[1] - 0.5 * signal[0]) / (np.sqrt(3) / 2)
        rx = np.cos(theta) * hx - np.sin(theta) * hy
        ry = np.sin(theta) * hx + np.cos(theta) * hy
        signal[0], signal[1] = rx, 0.5 * rx + np.sqrt(3) / 2 * ry
    if picture.low_voltage:
        signal[:2] *= 0.3
    signal = signal + rng.normal(0.0, 0.008, size=signal.shape)
    return derive_limb_leads(signal)


def _cached_base(simulator, heart_rate: int) -> np.ndarray:
    """The simulator's base beat train at ``heart_rate``, time-scaled once per rate (the FFT
    resampling was most of the cost of a record)."""
    cache = simulator.__dict__.setdefault("_scaled_bases", {})
    if heart_rate not in cache:
        cache[heart_rate] = simulator.base(heart_rate)
    return cache[heart_rate]


def finding_for(picture: Picture) -> Finding:
    """The reports (German, English, MIMIC statements) and SCP codes that ``picture`` implies."""
    if picture.atrial_fibrillation:
        rhythm = ("AFIB", "vorhofflimmern", "atrial fibrillation", "Atrial fibrillation")
    elif picture.heart_rate < 60:
        rhythm = ("SBRAD", "sinusbradykardie", "sinus bradycardia", "Sinus bradycardia")
    elif picture.heart_rate > 100:
        rhythm = ("STACH", "sinustachykardie", "sinus tachycardia", "Sinus tachycardia")
    else:
        rhythm = ("SR", "sinusrhythmus", "sinus rhythm", "Sinus rhythm")
    codes: dict[str, float] = {rhythm[0]: 0.0}
    german, english, mimic = [rhythm[1]], [rhythm[2]], [rhythm[3]]
    if picture.axis == "left":
        german.append("überdrehter linkstyp")
        english.append("left axis deviation")
        mimic.append("Left axis deviation")
    elif picture.axis == "right":
        german.append("überdrehter rechtstyp")
        english.append("right axis deviation")
        mimic.append("Right axis deviation")
    if picture.wide_qrs:
        codes["CLBBB"] = 100.0
        german.append("linksschenkelblock")
        english.append("left bundle branch block")
        mimic.append("Left bundle branch block")
    if picture.low_voltage:
        codes["LVOLT"] = 0.0
        german.append("periphere niederspannung")
        english.append("low limb lead voltage")
        mimic.append("Low QRS voltages in limb leads")
    abnormal = picture.wide_qrs or picture.low_voltage or picture.axis != "normal"
    if picture.atrial_fibrillation or abnormal:
        mimic.append("Abnormal ECG")
    else:
        codes["NORM"] = 100.0
        otherwise = rhythm[0] != "SR"
        german.append("sonst normales ekg" if otherwise else "normales ekg")
        english.append("otherwise normal ecg" if otherwise else "normal ecg")
        mimic.append("Otherwise normal ECG" if otherwise else "Normal ECG")
    return Finding(
        heart_rate=picture.heart_rate, scp_codes=codes, german=" ".join(german),
        english=". ".join(english) + ".", mimic=tuple(mimic),
    )  # fmt: skip


def heart_axis(picture: Picture) -> str:
    """PTB-XL's ``heart_axis`` column value."""
    return {"left": "LAD", "right": "RAD"}.get(picture.axis, "MID")


def qrs_axis_degrees(picture: Picture, rng: np.random.Generator) -> int:
    """A MIMIC ``qrs_axis`` consistent with the picture."""
    low, high = {"left": (-80, -31), "right": (101, 160)}.get(picture.axis, (-10, 90))
    return int(rng.integers(low, high))


class PhysiologicalDraw:
    """``draw(rng) -> (finding, signal, extra columns)`` for the sample writers."""

    def __init__(self, simulator):
        self.simulator = simulator

    def __call__(self, rng: np.random.Generator) -> tuple[Finding, np.ndarray, dict]:
        picture = draw_picture(rng)
        signal = render(picture, self.simulator, rng)
        extra = {"heart_axis": heart_axis(picture), "qrs_axis": qrs_axis_degrees(picture, rng),
                 "qrs_end": 200 + (150 if picture.wide_qrs else 92)}  # fmt: skip
        return finding_for(picture), signal, extra
