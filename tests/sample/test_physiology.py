"""The learnable sample: each finding is visible in the signal and stated by the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import find_peaks

from ecg_instruct.evaluate.clinical import statements_of
from ecg_instruct.sample.physiology import (
    FS,
    Picture,
    draw_picture,
    finding_for,
    render,
)


class PulseSimulator:
    """Beat trains with a narrow QRS (Gaussian, 10 ms sd) and a frontal axis of 60 degrees: a
    known input whose rate, rhythm, width, amplitude and axis the test can measure exactly."""

    def base(self, heart_rate: int) -> np.ndarray:
        t = np.arange(5000) / FS
        beats = np.arange(0, 10, 60 / heart_rate) + 0.2
        qrs = sum(np.exp(-((t - b) ** 2) / (2 * 0.010**2)) for b in beats)
        hx, hy = math.cos(math.radians(60)), math.sin(math.radians(60))
        signal = np.zeros((12, 5000))
        signal[0] = hx * qrs  # lead I = Hx
        signal[1] = (0.5 * hx + math.sqrt(3) / 2 * hy) * qrs  # lead II
        signal[6:] = qrs
        return signal


def _rr(signal: np.ndarray) -> np.ndarray:
    peaks, _ = find_peaks(signal[6], height=0.5, distance=int(0.25 * FS))
    return np.diff(peaks) / FS


def _axis(signal: np.ndarray) -> float:
    i, avf = signal[0], signal[5]
    k = int(np.argmax(np.abs(signal[6])))
    return math.degrees(math.atan2(avf[k] * 2 / math.sqrt(3), i[k]))


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def test_rate_and_rhythm_are_in_the_signal(rng):
    sim = PulseSimulator()
    sinus = _rr(render(Picture(50), sim, rng))
    assert np.median(sinus) == pytest.approx(60 / 50, abs=0.02) and sinus.std() < 0.01
    afib = _rr(render(Picture(90, atrial_fibrillation=True), sim, rng))
    assert afib.std() / afib.mean() > 0.15  # irregular


def test_width_voltage_and_axis_are_in_the_signal(rng):
    sim = PulseSimulator()
    narrow = render(Picture(70), sim, rng)
    wide = render(Picture(70, wide_qrs=True), sim, rng)
    width = [np.sum(np.abs(s[6]) > 0.5 * np.abs(s[6]).max()) / len(_rr(s)) for s in (narrow, wide)]
    assert width[1] > 2 * width[0]
    low = render(Picture(70, low_voltage=True), sim, rng)
    assert np.abs(low[0]).max() < 0.45 * np.abs(narrow[0]).max()
    assert np.abs(low[6]).max() > 0.8 * np.abs(narrow[6]).max()  # chest leads untouched
    assert -30 < _axis(narrow) < 90
    assert _axis(render(Picture(70, axis="left"), sim, rng)) < -30
    assert _axis(render(Picture(70, axis="right"), sim, rng)) > 90


@pytest.mark.parametrize(
    ("picture", "codes"),
    [
        (Picture(72), {"SR", "NORM"}),
        (Picture(50), {"SBRAD", "NORM"}),
        (Picture(120), {"STACH", "NORM"}),
        (Picture(90, atrial_fibrillation=True), {"AFIB"}),
        (Picture(70, wide_qrs=True, low_voltage=True, axis="left"), {"SR", "CLBBB", "LVOLT"}),
    ],
)
def test_reports_state_exactly_the_pictures_findings(picture, codes):
    finding = finding_for(picture)
    assert set(finding.scp_codes) == codes
    assert statements_of(finding.english) == codes  # the clinical score reads them back
    assert statements_of(". ".join(finding.mimic)) == codes
    if picture.axis == "left":
        assert "left axis deviation" in finding.english and "linkstyp" in finding.german


def test_every_finding_is_common_enough(rng):
    pictures = [draw_picture(rng) for _ in range(2000)]
    shares = {
        "afib": np.mean([p.atrial_fibrillation for p in pictures]),
        "brady": np.mean([p.heart_rate < 60 and not p.atrial_fibrillation for p in pictures]),
        "tachy": np.mean([p.heart_rate > 100 and not p.atrial_fibrillation for p in pictures]),
        "wide": np.mean([p.wide_qrs for p in pictures]),
        "low": np.mean([p.low_voltage for p in pictures]),
        "left": np.mean([p.axis == "left" for p in pictures]),
        "right": np.mean([p.axis == "right" for p in pictures]),
    }
    assert all(share > 0.07 for share in shares.values()), shares
