"""resample_poly semantics (fast path included), explicit length policy, ADC-step rounding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from ecg_instruct.errors import RecordReject
from ecg_instruct.signals.resample import fit_length, quantise, rate_ratio, resample


@pytest.mark.parametrize("fs_out", [250, 100, 50, 1000, 360])
def test_resample_equals_resample_poly_line(ecg500, fs_out):
    x = ecg500 + np.linspace(-1, 2, ecg500.shape[1])  # a trend exercises the line padding
    up, down = rate_ratio(500, fs_out)
    ref = sps.resample_poly(x, up, down, axis=-1, padtype="line")
    got = resample(x, 500, fs_out)
    assert got.shape == ref.shape == (12, int(np.ceil(5000 * fs_out / 500)))
    assert np.max(np.abs(got - ref)) < 1e-9


def test_resample_is_edge_safe_unlike_fft(ecg500):
    """The reason for resample_poly: FFT resampling rings at the record edges."""
    x = ecg500 + np.linspace(0, 3, ecg500.shape[1])  # strong drift, as in real baseline wander
    truth = x[:, ::5]  # the waveform is smooth enough that plain slicing is the truth here
    poly = resample(x, 500, 100)
    fft = sps.resample(x, 1000, axis=-1)
    edge = np.r_[0:20, 980:1000]
    poly_err = np.abs(poly - truth)[:, edge].max()
    fft_err = np.abs(fft - truth)[:, edge].max()
    assert poly_err < 0.1 < fft_err


def test_resample_identity_returns_copy(ecg500):
    out = resample(ecg500, 500, 500)
    assert np.array_equal(out, ecg500) and out is not ecg500 and out.flags.writeable


def test_resample_batches_over_leading_axes(ecg500):
    batch = np.stack([ecg500, -ecg500])
    out = resample(batch, 500, 100)
    assert out.shape == (2, 12, 1000)
    assert np.allclose(out[0], resample(ecg500, 500, 100)) and np.allclose(out[1], -out[0])


@pytest.mark.parametrize("fs_in, fs_out", [(0, 100), (-500, 100), (np.nan, 100), (500, np.inf),
                                           (500.123456789, 100)])
def test_bad_rates_are_rejected(fs_in, fs_out):
    with pytest.raises(RecordReject) as exc:
        rate_ratio(fs_in, fs_out)
    assert exc.value.reason == "wrong_sampling_rate"


def test_rate_ratio():
    assert rate_ratio(500, 100) == (1, 5)
    assert rate_ratio(100, 500) == (5, 1)
    assert rate_ratio(360, 500) == (25, 18)
    assert rate_ratio(257.0, 500) == (500, 257)


def test_fit_length_policies():
    x = np.arange(24.0).reshape(2, 12)
    assert fit_length(x, 12, "strict") is x
    with pytest.raises(RecordReject, match="wrong_length"):
        fit_length(x, 10, "strict")
    assert fit_length(x, 11, "strict", tolerance=1).shape == (2, 11)
    padded = fit_length(x, 13, "strict", tolerance=1)
    assert padded.shape == (2, 13) and padded[0, -1] == padded[0, -2] == 11.0
    assert np.array_equal(fit_length(x, 5, "crop"), x[:, :5])
    with pytest.raises(RecordReject, match="wrong_length"):
        fit_length(x, 20, "crop")
    out = fit_length(x, 20, "crop_pad")
    assert out.shape == (2, 20) and np.all(out[1, 12:] == 23.0)
    with pytest.raises(ValueError):
        fit_length(x, 12, "stretch")


def test_quantise_rounds_to_adc_step():
    x = np.array([[0.0012, -0.0026, 0.0074, np.nan]])
    q = quantise(x, 0.005)
    assert np.allclose(q[0, :3], [0.0, -0.005, 0.005]) and np.isnan(q[0, 3])
    per_lead = quantise(np.array([[0.0012], [0.0012]]), np.array([0.001, 0.005]))
    assert np.allclose(per_lead[:, 0], [0.001, 0.0])
    with pytest.raises(ValueError):
        quantise(x, 0.0)


def test_quantise_is_idempotent_and_exact_in_counts(ecg500):
    q = quantise(resample(ecg500, 500, 100), 0.001).astype(np.float32)
    counts = q.astype(np.float64) * 1000
    assert np.max(np.abs(counts - np.rint(counts))) < 1e-3  # float32 keeps the grid
    assert np.array_equal(quantise(q, 0.001).astype(np.float32), q)


@pytest.mark.parametrize("fs_out", [100, 360, 500])
def test_resample_subtracts_per_row_offsets_from_counts(ecg500, fs_out):
    """The stage's call: int16 ADC counts, one WFDB baseline per lead, float32 or float64."""
    counts = np.rint(ecg500 * 1000).astype(np.int16)
    baselines = np.arange(-6, 6) * 100
    up, down = rate_ratio(500, fs_out)
    ref = sps.resample_poly((counts - baselines[:, None]).astype(np.float64), up, down, axis=-1,
                            padtype="line")
    got = resample(counts, 500, fs_out, offsets=baselines)
    assert got.dtype == np.float64 and np.max(np.abs(got - ref)) < 1e-9
    got32 = resample(counts, 500, fs_out, offsets=baselines, dtype=np.float32)
    assert got32.dtype == np.float32 and np.max(np.abs(got32 - ref)) < 0.01
