"""Each injected defect is caught under its own reason; clean ECGs pass untouched."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_instruct.errors import RecordReject, UserError
from ecg_instruct.signals.quality import (
    QUALITY_REASONS,
    QualityConfig,
    check_and_repair,
    heart_rate_bpm,
)
from ecg_instruct.signals.resample import quantise, resample

CFG = QualityConfig()


@pytest.fixture(scope="module")
def clean(ecg500) -> np.ndarray:
    """A realistic record: simulated ECG + 10 µV noise, on MIMIC's 5 µV ADC grid."""
    rng = np.random.default_rng(3)
    return quantise(ecg500 + rng.normal(0, 0.01, ecg500.shape), 0.005)


def _reason(x: np.ndarray, cfg: QualityConfig = CFG, fs: float = 500) -> str:
    with pytest.raises(RecordReject) as exc:
        check_and_repair(x, fs, cfg)
    assert exc.value.reason in QUALITY_REASONS
    return exc.value.reason


def test_clean_record_passes_unchanged(clean):
    out, notes = check_and_repair(clean, 500, CFG)
    assert notes == [] and np.array_equal(out, clean)


@pytest.mark.parametrize("hr", [45, 120, 190])
def test_heart_rate_matches_simulation(sig, hr):
    x500 = sig.simulate_12lead(heart_rate=hr, fs=500, seed=hr)
    for fs, x in ((500, x500), (100, resample(x500, 500, 100))):
        x = quantise(x, 0.005)
        est, n_peaks = heart_rate_bpm(x, fs)
        assert abs(est - hr) < 3 and n_peaks >= int(hr / 6) - 1
        assert check_and_repair(x, fs, CFG)[1] == []


def test_heart_rate_agrees_with_neurokit_peaks(clean):
    import neurokit2 as nk

    _, info = nk.ecg_peaks(clean[1], sampling_rate=500)
    nk_hr = 60 * 500 / np.median(np.diff(info["ECG_R_Peaks"]))
    assert abs(heart_rate_bpm(clean, 500)[0] - nk_hr) < 2


def test_short_nan_run_is_interpolated_and_reported(clean):
    x = clean.copy()
    x[7, 1000:1010] = np.nan
    x[7, 0:3] = np.inf  # at the edge: nearest valid value
    out, notes = check_and_repair(x, 500, CFG)
    assert np.isfinite(out).all() and np.isnan(x[7, 1000])  # input untouched
    assert np.allclose(out[7, 1000:1010], np.linspace(out[7, 999], out[7, 1010], 12)[1:-1])
    assert np.all(out[7, 0:3] == out[7, 3])
    assert notes == ["nan_interpolated:V2:2 run(s), 13 samples"]


def test_nan_rejects(clean):
    x = clean.copy()
    x[2, 1000:1100] = np.nan  # 0.2 s run: longer than max_nan_run_s
    assert _reason(x) == "nan_values"
    y = clean.copy()
    y[2, 1000:1010] = np.nan
    assert _reason(y, QualityConfig(repair_nan=False)) == "nan_values"
    z = clean.copy()
    z[2, ::50] = np.nan  # 100 isolated samples = 2 % > max_nan_fraction
    assert _reason(z) == "nan_values"
    w = clean.copy()
    w[11] = np.nan
    assert _reason(w) == "missing_lead"


def test_flat_leads(clean):
    x = clean.copy()
    x[5] = 0.3
    assert _reason(x) == "flat_lead"
    y = clean.copy()
    y[9, 2000:3500] = y[9, 2000]  # electrode off for 3 s mid-record
    assert _reason(y) == "flat_lead"
    # the whole-lead std does not see a partial dropout: the windowed check is what catches it
    assert _safe(y, QualityConfig(flat_window_s=None))


def _safe(x, cfg) -> bool:
    try:
        check_and_repair(x, 500, cfg)
    except RecordReject:
        return False
    return True


def test_clipping(clean):
    x = clean.copy()
    top = np.percentile(x[1], 97)
    x[1] = np.minimum(x[1], top)  # amplifier rail cuts every R peak
    assert _reason(x) == "clipping"
    assert _safe(x, QualityConfig(clip_max_fraction=None))


def test_smooth_extreme_is_not_clipping(clean):
    x = clean.copy()
    t = np.arange(5000) / 500
    x += 0.8 * np.cos(2 * np.pi * 0.12 * t)  # slow baseline wander with a broad trough
    assert _safe(quantise(x, 0.005), CFG)


def test_implausible_amplitude(clean):
    x = clean.copy()
    x[8] *= 30
    assert _reason(x) == "implausible_amplitude"


def test_extremes_include_the_samples_after_the_last_full_window(clean):
    """4.9 s at 500 Hz = two 2 s windows + a 0.9 s tail: a spike in the tail still counts."""
    x = clean[:, :2450].copy()
    x[3, 2300:2310] += 20.0
    assert _reason(x) == "implausible_amplitude"


def test_high_frequency_noise(clean):
    x = clean + np.random.default_rng(0).normal(0, 1.0, clean.shape) * (np.arange(12) == 4)[:, None]
    assert QualityConfig().hf_max_power_ratio is None  # opt-in: see the field's comment
    assert _reason(x, QualityConfig(hf_max_power_ratio=0.5)) == "high_frequency_noise"
    assert _reason(x, QualityConfig(hf_max_power_ratio=0.5, hf_cutoff_hz=100)) == "high_frequency_noise"
    assert _safe(x, QualityConfig(hf_max_power_ratio=0.95))  # white noise: ~84 % above 40 Hz
    assert _safe(x, QualityConfig(hf_max_power_ratio=None, min_heart_rate_bpm=None,
                                  max_heart_rate_bpm=None))


def test_implausible_heart_rate(clean):
    t = np.arange(5000) / 500
    slow = 0.5 * np.sin(2 * np.pi * 1.0 * t)[None, :] * np.ones((12, 1))  # no QRS at all
    slow += np.random.default_rng(0).normal(0, 0.01, slow.shape)
    assert _reason(slow) == "implausible_heart_rate"
    assert _safe(slow, QualityConfig(min_heart_rate_bpm=None, max_heart_rate_bpm=None))


def test_from_dict_builds_and_validates():
    cfg = QualityConfig.from_dict({"max_nan_run_s": 0.1, "flat_std_mv": None,
                                   "repair_nan": False, "max_ptp_mv": 20}, "pipelines/x.yaml")
    assert cfg.max_nan_run_s == 0.1 and cfg.flat_std_mv is None and not cfg.repair_nan
    assert cfg.max_ptp_mv == 20.0 and isinstance(cfg.max_ptp_mv, float)
    assert QualityConfig.from_dict(None, "x.yaml") == QualityConfig()


@pytest.mark.parametrize(
    "d, fragment",
    [
        ({"max_nan_runs": 1}, "unknown key 'signals.quality.max_nan_runs'"),
        ({"repair_nan": "yes"}, "'signals.quality.repair_nan' must be true or false"),
        ({"max_ptp_mv": "10"}, "'signals.quality.max_ptp_mv' must be a number"),
        ({"max_ptp_mv": True}, "'signals.quality.max_ptp_mv' must be a number"),
        ({"max_nan_fraction": 2}, "'signals.quality.max_nan_fraction' must be between 0 and 1"),
        ({"repair_nan": None}, "'signals.quality.repair_nan' cannot be null"),
        ({"min_heart_rate_bpm": None}, "'signals.quality.max_heart_rate_bpm' must both be set"),
        ({"min_heart_rate_bpm": 200, "max_heart_rate_bpm": 100},
         "below 'signals.quality.max_heart_rate_bpm'"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_from_dict_errors_name_file_and_key(d, fragment):
    with pytest.raises(UserError) as exc:
        QualityConfig.from_dict(d, "pipelines/meit.yaml")
    assert str(exc.value).startswith("pipelines/meit.yaml:") and fragment in str(exc.value)


def test_describe_names_every_check_and_says_which_are_off():
    default = QualityConfig().describe()
    assert len(default) == 8 and "high-frequency noise: off (optional check)" in default
    assert "amplitude: peak-to-peak > 15 mV" in default
    assert "DC offset: a lead's mean beyond ±10 mV" in default
    everything_off = QualityConfig(
        repair_nan=False, flat_std_mv=None, flat_window_s=None, clip_max_fraction=None,
        max_ptp_mv=None, max_offset_mv=None, reject_identical_leads=False,
        min_heart_rate_bpm=None, max_heart_rate_bpm=None).describe()
    assert everything_off == ["missing samples: any NaN/inf rejected", "flat lead: off",
                              "clipping: off", "amplitude: off", "DC offset: off",
                              "identical leads: off",
                              "high-frequency noise: off (optional check)", "heart rate: off"]
    assert "> 50% of a lead's power above 40 Hz" in QualityConfig(hf_max_power_ratio=0.5).describe()[6]
