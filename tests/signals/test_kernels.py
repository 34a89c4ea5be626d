"""The compiled curation kernels against plain numpy/scipy references on seeded random data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from ecg_instruct.signals import kernels
from ecg_instruct.signals.kernels import (
    STAT_AT_EXTREMES,
    STAT_MAX,
    STAT_MIN,
    STAT_SUM,
    STAT_SUMSQ,
    STAT_WIN_AT,
    STAT_WIN_PTP,
)
from ecg_instruct.signals.quality import (
    QualityConfig,
    _high_frequency,
    block_sum_dtype,
    heart_rate_block,
    heart_rates_bpm,
    lead_stats,
)
from ecg_instruct.signals.resample import _fir, decimate

_KERNELS = ("gather_leads", "lead_stats", "block_sums", "qrs_rates", "decimate_line",
            "band_power_share")


def test_warm_up_compiles_everything_the_stage_uses(tmp_path, sig, ecg500):
    """The build compiles the kernels once before starting workers (warm_up); a worker that
    then met an argument type warm_up missed would compile it again on its own."""
    from ecg_instruct.build.recipe import SignalsConfig
    from ecg_instruct.signals.curate import process_shard

    kernels.warm_up()
    before = {name: len(getattr(kernels, name).signatures) for name in _KERNELS}
    x = ecg500 + np.random.default_rng(0).normal(0, 0.01, ecg500.shape)
    sig.write_record(tmp_path, "clean", sig.canonical_to(sig.MIMIC_NAMES, x), 500, 200.0,
                     sig.MIMIC_NAMES)
    x = x.copy()
    x[3, 100:105] = np.nan  # the one-record path: repaired, then checked in mV
    sig.write_record(tmp_path, "gap", sig.canonical_to(sig.PTBXL_NAMES, x), 500, 1000.0,
                     sig.PTBXL_NAMES)
    records = [{"id": n, "source": "ptbxl", "path": n} for n in ("clean", "gap")]
    for fs in (100, 500):
        assert process_shard(records, {"ptbxl": str(tmp_path)}, SignalsConfig(fs=fs),
                             str(tmp_path / f"shard{fs}")) == (2, 0)
    assert {name: len(getattr(kernels, name).signatures) for name in _KERNELS} == before


def test_warm_up_runs():
    kernels.warm_up()


@pytest.mark.parametrize("n_leads", [12, 3, 7])  # four leads per pass, and the rest one by one
def test_gather_leads_is_a_transposed_reorder(n_leads):
    rng = np.random.default_rng(11)
    raw = rng.integers(-32768, 32768, (777, 13), dtype=np.int16)
    order = rng.permutation(13)[:n_leads].astype(np.intp)
    out = np.empty((n_leads, 777), np.int16)
    kernels.gather_leads(raw, order, out)
    assert np.array_equal(out, raw[:, order].T)


# --- find_peaks_height_distance ------------------------------------------------------------


def _with_plateaus(x: np.ndarray, rng: np.random.Generator, n_plateaus: int) -> np.ndarray:
    """``x`` with runs of 2-6 equal samples (each run its own value: no ties between peaks),
    some of them at the very start or end of the array."""
    x = x.copy()
    n = x.size
    starts = rng.integers(0, n - 1, n_plateaus)
    starts[:2] = (0, n - 3)  # edge plateaus: never peaks
    for s in starts:
        x[s : s + rng.integers(2, 7)] = x[s]
    return x


def _peak_inputs() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(2024)
    noise = rng.normal(size=600)
    walk = np.cumsum(rng.normal(size=600))
    ecg_like = np.sin(np.arange(800) * 2 * np.pi / 45) ** 9 + 0.05 * rng.normal(size=800)
    return [
        ("noise", noise),
        ("walk", walk),
        ("ecg_like", ecg_like),
        ("noise_plateaus", _with_plateaus(noise, rng, 60)),
        ("walk_plateaus", _with_plateaus(walk, rng, 60)),
        ("ecg_plateaus", _with_plateaus(ecg_like, rng, 40)),
        ("short", rng.normal(size=5)),
    ]


@pytest.mark.parametrize("distance", [1, 2, 7, 30])
@pytest.mark.parametrize("name,x", _peak_inputs(), ids=lambda v: v if isinstance(v, str) else "")
def test_find_peaks_equals_scipy(name, x, distance):
    for height in (-np.inf, np.quantile(x, 0.2), 0.0, np.quantile(x, 0.8), x.max(), x.max() + 1):
        expected = sps.find_peaks(x, height=height, distance=distance)[0]
        got = kernels.find_peaks_height_distance(x, float(height), distance)
        assert np.array_equal(got, expected), (name, height, distance)


def test_find_peaks_reports_the_middle_of_a_flat_top():
    x = np.array([0.0, 1.0, 3.0, 3.0, 3.0, 3.0, 1.0, 2.0, 2.0, 0.5, 5.0, 5.0, 5.0])
    got = kernels.find_peaks_height_distance(x, 0.0, 1)
    assert list(got) == [3, 7] == list(sps.find_peaks(x, height=0.0)[0])


@pytest.mark.parametrize("x", [np.full(50, 2.5), np.array([1.0, 2.0]), np.array([3.0]),
                               np.array([], dtype=np.float64)], ids=["flat", "two", "one", "empty"])
@pytest.mark.parametrize("distance", [1, 7])
def test_find_peaks_without_peaks(x, distance):
    got = kernels.find_peaks_height_distance(x, -np.inf, distance)
    assert got.size == 0 and got.dtype == np.int64


# --- decimate --------------------------------------------------------------------------------


def _trend_signal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    n = shape[-1]
    t = np.arange(n) / n
    slope = rng.normal(0, 5, shape[:-1] + (1,))
    return (slope * t + np.sin(2 * np.pi * 7 * t) + rng.normal(0, 0.3, shape)
            + rng.normal(0, 10, shape[:-1] + (1,)))


@pytest.mark.parametrize("down", [2, 3, 5])
def test_decimate_float_equals_resample_poly(down):
    rng = np.random.default_rng(down)
    n_taps = _fir(1, down).size
    for shape in ((3, 1000), (2, 4, 997), (1, n_taps + 1), (2, n_taps + down + 1)):
        x = _trend_signal(rng, shape)
        got = decimate(x, down)
        expected = sps.resample_poly(x, 1, down, axis=-1, padtype="line")
        assert got.shape == expected.shape == shape[:-1] + (-(-shape[-1] // down),)
        assert got.dtype == np.float64
        assert np.max(np.abs(got - expected)) < 1e-9


def _counts(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """int16 ADC counts of ECG-like magnitude: a random walk of hundreds to thousands of
    counts around a per-lead level."""
    walk = np.cumsum(rng.normal(0, 1, shape), axis=-1) * 30
    level = rng.integers(-3000, 3000, shape[:-1] + (1,))
    return np.rint(walk + level).clip(-32767, 32767).astype(np.int16)


@pytest.mark.parametrize("down", [2, 3, 5])
def test_decimate_int16_counts_with_offsets(down):
    rng = np.random.default_rng(100 + down)
    c = _counts(rng, (3, 12, 5000))
    offsets = rng.integers(-500, 500, 36)
    got = decimate(c, down, offsets)
    expected = sps.resample_poly(c.astype(np.float64) - offsets.reshape(3, 12, 1), 1, down,
                                 axis=-1, padtype="line")
    assert got.shape == expected.shape == (3, 12, -(-5000 // down))
    assert np.max(np.abs(got - expected)) < 1e-9
    # without offsets: the counts as they are
    plain = sps.resample_poly(c.astype(np.float64), 1, down, axis=-1, padtype="line")
    assert np.max(np.abs(decimate(c, down) - plain)) < 1e-9
    # float32 arithmetic (the stage's): within 0.01 count of float64
    single = decimate(c, down, offsets, dtype=np.float32)
    assert single.dtype == np.float32
    assert 100 < np.abs(c).mean() and np.abs(c).max() > 1000  # ECG-like magnitudes
    assert np.max(np.abs(single.astype(np.float64) - got)) < 0.01


def test_decimate_some_records_equals_decimating_their_copy():
    """``records``: the stage decimates the records of a batch that passed the checks in
    place; the result must be that of decimating a copy of just those records."""
    rng = np.random.default_rng(7)
    c = _counts(rng, (6, 12, 5000))
    offsets = rng.integers(-500, 500, 72).astype(np.float64)
    chosen = np.array([4, 0, 5])
    got = decimate(c, 5, offsets, dtype=np.float32, records=chosen)
    copy = decimate(c[chosen], 5, offsets.reshape(6, 12)[chosen].reshape(-1), dtype=np.float32)
    assert got.shape == (3, 12, 1000)
    assert np.array_equal(got, copy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_to_int16_is_rint_then_a_range_check(dtype):
    rng = np.random.default_rng(5)
    y = rng.normal(0, 3000, (9, 1001)).astype(dtype)
    y[1, 0], y[2, 5], y[3, 9] = 32767.4, -32766.5, 32767.5  # fits, fits (half to even), not
    y[4, 1], y[5, 2], y[6, 3] = -32768.0, 1e30, -1e30  # the missing-sample code and beyond
    y[7, :] = 0.5  # half to even: all 0
    expected = np.rint(y)
    fits_expected = np.abs(expected).max(axis=1) <= 32767
    out, fits = np.empty(y.shape, np.int16), np.empty(9, np.bool_)
    kernels.round_to_int16(y, out, fits)
    assert np.array_equal(y, expected)  # rounded in place
    assert list(fits) == list(fits_expected) == [True, True, True, False, False, False, False,
                                                 True, True]
    assert np.array_equal(out[fits], expected[fits].astype(np.int16))


# --- lead_stats ------------------------------------------------------------------------------


def _reference_stats(x: np.ndarray, window: int) -> np.ndarray:
    n_rec, n_leads, n = x.shape
    out = np.empty((n_rec, n_leads, kernels.N_STATS))
    wide = x.astype(np.int64) if np.issubdtype(x.dtype, np.integer) else x
    out[..., STAT_MAX] = x.max(axis=2)
    out[..., STAT_MIN] = x.min(axis=2)
    out[..., STAT_SUM] = wide.sum(axis=2)
    out[..., STAT_SUMSQ] = (wide * wide).sum(axis=2)
    n_win = n // window if window > 0 else 0
    if n_win:
        w = x[..., : n_win * window].reshape(n_rec, n_leads, n_win, window).astype(np.float64)
        ptp = w.max(axis=3) - w.min(axis=3)
        out[..., STAT_WIN_PTP] = ptp.min(axis=2)
        out[..., STAT_WIN_AT] = ptp.argmin(axis=2)  # the first window reaching the minimum
    else:
        out[..., STAT_WIN_PTP] = np.inf
        out[..., STAT_WIN_AT] = -1
    out[..., STAT_AT_EXTREMES] = ((x == x.max(axis=2, keepdims=True)).sum(axis=2)
                                  + (x == x.min(axis=2, keepdims=True)).sum(axis=2))
    return out


def _stats_counts(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = _counts(rng, (3, 12, n))
    x[0, 0] = 7  # constant lead: every sample is both max and min
    x[0, 1] = rng.integers(-3, 4, n)  # few distinct values: many ties at the extremes
    x[1, 2, ::2], x[1, 2, 1::2] = 32767, -32768  # int16 rails: int64 sums must not overflow
    x[1, 3, 100:150] = x[1, 3, 100]  # a flat stretch: the smallest window ptp is 0 there
    x[2, 4, 40:100] = x[2, 4, 40]  # two windows with ptp 0 (w = 20): the first one is reported
    x[2, 4, 140:200] = x[2, 4, 140]
    x[2, 5, -1] = 32000  # the extremes sit in the tail after the last full window
    x[2, 5, -2] = -32000
    return x


@pytest.mark.parametrize("n,window", [(5000, 1000), (5003, 1000), (1001, 20), (600, 600),
                                      (601, 7), (900, 1)])
def test_lead_stats_int16_equals_numpy(n, window):
    x = _stats_counts(n + window, n)
    got = lead_stats(x, window)
    assert np.array_equal(got, _reference_stats(x, window))


@pytest.mark.parametrize("window", [0, 5001, 10_000])
def test_lead_stats_without_full_windows(window):
    x = _stats_counts(5, 5000)
    got = lead_stats(x, window)
    assert np.all(got[..., STAT_WIN_PTP] == np.inf) and np.all(got[..., STAT_WIN_AT] == -1)
    assert np.array_equal(got, _reference_stats(x, window))


def test_lead_stats_extremes_include_the_tail():
    x = np.zeros((1, 1, 1005), np.int16)
    x[0, 0, :1000] = np.arange(1000) % 50  # full windows: 0..49
    x[0, 0, 1002] = 999  # only in the tail after the 10th window
    x[0, 0, 1003] = -999
    got = lead_stats(x, 100)[0, 0]
    assert got[STAT_MAX] == 999 and got[STAT_MIN] == -999 and got[STAT_AT_EXTREMES] == 2
    assert got[STAT_WIN_PTP] == 49 and got[STAT_WIN_AT] == 0


@pytest.mark.parametrize("window", [0, 250, 333, 6000])
def test_lead_stats_float64_equals_numpy(window):
    rng = np.random.default_rng(window)
    x = _trend_signal(rng, (2, 12, 5000))
    x[0, 3] = 0.25
    x[1, 6, 17] = x[1, 6].max() + 1.0
    x[1, 6, 4000] = x[1, 6, 17]  # two samples at the maximum
    got = lead_stats(x, window)
    expected = _reference_stats(x, window)
    exact = [STAT_MAX, STAT_MIN, STAT_WIN_PTP, STAT_WIN_AT, STAT_AT_EXTREMES]
    assert np.array_equal(got[..., exact], expected[..., exact])
    # float sums in index order: the sequential cumulative sum, up to rounding of the order
    assert np.allclose(got[..., STAT_SUM], np.cumsum(x, axis=2)[..., -1], rtol=1e-12, atol=1e-9)
    assert np.allclose(got[..., STAT_SUMSQ], expected[..., STAT_SUMSQ], rtol=1e-12)
    assert got[1, 6, STAT_AT_EXTREMES] == 3


# --- block_sums and qrs_rates ----------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 5, 7, 10])
def test_block_sums_equal_numpy(block):
    rng = np.random.default_rng(block)
    x = _counts(rng, (2, 12, 5003))
    x[1, 3] = -32768  # the extremes: int32 sums of int16 counts must not overflow
    x[1, 4] = 32767
    m = x.shape[2] // block
    expected = x[..., : m * block].astype(np.int64).reshape(2, 12, m, block).sum(axis=3)
    assert block_sum_dtype(x.dtype, block) is np.int32  # what the stage uses
    for acc in (np.int32, np.int64):
        out = np.empty((2, 12, m), acc)
        kernels.block_sums(x, block, acc(0), out)
        assert np.array_equal(out, expected)
    xf = x / 1000.0
    outf = np.empty((2, 12, m))
    kernels.block_sums(xf, block, 0.0, outf)
    # float sums in index order, as a plain loop adds them
    loop = np.zeros((2, 12, m))
    for i in range(block):
        loop += xf[..., i : m * block : block]
    assert np.array_equal(outf, loop)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 57, 1000])
def test_select_is_np_partition(n):
    rng = np.random.default_rng(n)
    for values in (rng.normal(size=n), rng.integers(0, 3, n).astype(float), np.zeros(n),
                   np.arange(n, dtype=float), np.arange(n, 0, -1, dtype=float)):
        for k in sorted({0, n // 2, int(0.99 * n), n - 1}):
            a = values.copy()
            got = kernels._select(a, k)
            assert got == np.partition(values, k)[k]
            assert np.all(a[:k] <= got) and np.all(a[k + 1 :] >= got)
            assert np.array_equal(np.sort(a), np.sort(values))  # a permutation of the input


def _reference_rates(sums: np.ndarray, width: int, distance: int, min_contrast: float,
                     rel_height: float) -> list[tuple[float, int]]:
    """qrs_rates with numpy and scipy.signal.find_peaks."""
    out = []
    for rec in sums:
        energy = np.zeros(rec.shape[1] - 1, rec.dtype)
        for lead in rec:  # leads added in order, as the kernel does
            energy += np.diff(lead) ** 2
        size = energy.size - width
        if size <= 0:
            out.append((np.nan, 0))
            continue
        csum = np.cumsum(energy.astype(np.float64))
        smooth = csum[width:] - csum[:size]
        median = np.sort(smooth)[size // 2]
        top = np.sort(smooth)[min(size - 1, int(0.99 * size))]
        if not top > min_contrast * median:
            out.append((np.nan, 0))
            continue
        peaks = sps.find_peaks(smooth, height=rel_height * top, distance=distance)[0]
        rate = 1.0 / np.median(np.diff(peaks)) if peaks.size >= 2 else np.nan
        out.append((rate, peaks.size))
    return out


def _ecg_counts(ecg500: np.ndarray, n_rec: int, seed: int) -> np.ndarray:
    """``n_rec`` noisy shifted copies of the simulated ECG as int16 counts at 1 µV per count."""
    rng = np.random.default_rng(seed)
    x = np.stack([np.roll(ecg500, 313 * i, axis=1) for i in range(n_rec)])
    return np.rint(x * 1000 + rng.normal(0, 15, x.shape)).astype(np.int16)


def test_qrs_rates_equal_numpy_reference(ecg500):
    counts = _ecg_counts(ecg500, 4, 1)
    counts[3] = np.random.default_rng(2).normal(0, 300, counts[3].shape)  # noise: no contrast
    for x, zero in ((counts, np.int32(0)), (counts, np.int64(0)), (counts / 1000.0, 0.0)):
        sums = np.empty((4, 12, 1000), type(zero))
        kernels.block_sums(x, 5, zero, sums)
        rate, peaks = np.empty(4), np.empty(4, np.int64)
        kernels.qrs_rates(sums, 10, 20, 2.5, 0.3, rate, peaks)
        expected = _reference_rates(sums, 10, 20, 2.5, 0.3)
        assert list(peaks) == [p for _, p in expected]
        assert np.allclose(rate, [r for r, _ in expected], rtol=1e-12, equal_nan=True)
        assert np.all(np.isfinite(rate[:3])) and np.isnan(rate[3]) and peaks[3] == 0


def test_qrs_rates_too_short_and_silent():
    rate, peaks = np.empty(2), np.empty(2, np.int64)
    sums = np.zeros((2, 12, 11), np.int64)
    sums[1, :, ::3] = 50
    kernels.qrs_rates(sums, 10, 5, 2.5, 0.3, rate, peaks)  # m - 1 <= width: no envelope
    assert np.all(np.isnan(rate)) and list(peaks) == [0, 0]
    kernels.qrs_rates(np.zeros((2, 12, 400), np.int64), 10, 5, 2.5, 0.3, rate, peaks)
    assert np.all(np.isnan(rate)) and list(peaks) == [0, 0]


@pytest.mark.parametrize("fs", [500.0, 100.0])
def test_heart_rates_bpm_same_with_given_or_computed_sums(ecg500, fs):
    counts = _ecg_counts(ecg500, 3, 4)
    if fs == 100.0:
        counts = np.rint(decimate(counts, 5)).astype(np.int16)
    block = heart_rate_block(fs)
    acc = block_sum_dtype(counts.dtype, block)
    sums = np.empty((3, 12, counts.shape[2] // block), acc)
    kernels.block_sums(counts, block, acc(0), sums)
    computed = heart_rates_bpm(counts, fs)
    assert heart_rates_bpm(counts, fs, sums=sums) == computed
    # scale-free: the same signal in mV (1000 counts per mV) gives the same rates
    assert heart_rates_bpm(counts / 1000.0, fs) == computed
    for bpm, n_peaks in computed:  # ecg500 is simulated at 70 bpm
        assert abs(bpm - 70) < 3 and n_peaks >= 10


def test_heart_rate_of_a_faster_simulated_ecg(sig):
    x = sig.simulate_12lead(heart_rate=110, seed=7)
    counts = np.rint(x * 200).astype(np.int16)[None]  # MIMIC's 5 µV per count
    [(bpm, n_peaks)] = heart_rates_bpm(counts, 500.0)
    assert abs(bpm - 110) < 3 and n_peaks >= 17
    assert heart_rates_bpm(x[None], 500.0)[0][0] == pytest.approx(bpm, rel=1e-12)


# --- band_power_share ------------------------------------------------------------------------


def _reference_share(spectrum: np.ndarray, first: int) -> np.ndarray:
    power = np.abs(spectrum.astype(np.complex128)) ** 2
    high = power[:, max(first, 1):].sum(axis=1)
    total = power[:, 1:].sum(axis=1)
    return np.divide(high, total, out=np.zeros(len(power)), where=total > 0)


def _spectra(dtype) -> np.ndarray:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 1000)) + np.sin(np.arange(1000) * 0.05) * 10
    x[2] = 0.0  # no power at all
    spectrum = np.fft.rfft(x, axis=1).astype(dtype)
    spectrum[3] = 0
    spectrum[3, 0] = 4200.0  # power only in bin 0 (the mean): left out, so none
    return spectrum


@pytest.mark.parametrize("dtype,rtol", [(np.complex128, 1e-10), (np.complex64, 1e-6)])
def test_band_power_share_equals_numpy(dtype, rtol):
    spectrum = _spectra(dtype)
    k = spectrum.shape[1]
    for first in (1, 2, 17, 80, k - 1, k, k + 5):
        out = np.full(6, np.nan)
        kernels.band_power_share(spectrum, first, out)
        assert np.allclose(out, _reference_share(spectrum, first), rtol=rtol, atol=0)
        assert out[2] == 0.0 and out[3] == 0.0
    out = np.empty(6)
    kernels.band_power_share(spectrum, 1, out)
    assert np.array_equal(out, [1.0, 1.0, 0.0, 0.0, 1.0, 1.0])


def test_band_power_share_squares_complex64_in_float64():
    """complex64 spectra (what the float32 FFT gives) are squared in float64, not float32."""
    spectrum = _spectra(np.complex64)
    out = np.empty(6)
    kernels.band_power_share(spectrum, 17, out)
    assert np.allclose(out, _reference_share(spectrum, 17), rtol=1e-10, atol=0)


def test_high_frequency_reports_the_noisiest_lead(ecg500):
    rng = np.random.default_rng(9)
    x = np.stack([ecg500, ecg500.copy()])
    x[1, 7] += rng.normal(0, 2.0, x.shape[2])  # white noise: most power above 40 Hz
    cfg = QualityConfig(hf_max_power_ratio=0.5)
    [(b, lead, ratio)] = _high_frequency(x, 500.0, cfg)
    spectrum = np.fft.rfft(x[1] - x[1].mean(axis=1, keepdims=True), axis=1)
    expected = _reference_share(spectrum, int(np.ceil(40.0 * x.shape[2] / 500.0)))
    assert (b, lead) == (1, 7) == (1, int(np.argmax(expected)))
    assert ratio == pytest.approx(expected[7], rel=1e-4)
