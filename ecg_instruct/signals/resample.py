"""Rate conversion, length policy and ADC-step rounding.

``scipy.signal.resample_poly`` with ``padtype="line"`` is used instead of FFT resampling
(``scipy.signal.resample``, ``wfdb.processing.resample_sig``): the FFT treats the record as
periodic, so the first and last ~100 ms ring (0.4 mV edge error measured vs 0.04 mV), and a single
NaN turns the whole output NaN. Plain slicing (``x[::5]``) aliases mains and EMG noise into the
ECG band.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from ecg_instruct.errors import RecordReject
from ecg_instruct.signals import kernels

LENGTH_POLICIES = ("strict", "crop", "crop_pad", "window")

# Largest up/down factor accepted: 500 <-> 257 Hz still works, nonsense rates are rejected.
_MAX_FACTOR = 1000


def rate_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """``(up, down)`` with ``fs_in * up / down == fs_out`` exactly, in lowest terms.

    ``RecordReject("wrong_sampling_rate")`` for non-positive or non-finite rates and for ratios
    that need factors above 1000 (no real ECG device samples at such rates).
    """
    if not (np.isfinite(fs_in) and np.isfinite(fs_out)) or fs_in <= 0 or fs_out <= 0:
        raise RecordReject("wrong_sampling_rate", f"cannot resample {fs_in} Hz -> {fs_out} Hz")
    ratio = Fraction(fs_out / fs_in).limit_denominator(_MAX_FACTOR)
    if abs(float(ratio) - fs_out / fs_in) > 1e-9 * fs_out / fs_in or ratio.numerator > _MAX_FACTOR:
        raise RecordReject("wrong_sampling_rate",
                           f"{fs_in} Hz -> {fs_out} Hz is not a small rational ratio")
    return ratio.numerator, ratio.denominator


@lru_cache(maxsize=32)
def _fir(up: int, down: int) -> np.ndarray:
    """The Kaiser-windowed FIR that resample_poly designs by default, cached per ratio.

    Designing it costs about as much as filtering one record, so reuse it across records.
    """
    max_rate = max(up, down)
    half_len = 10 * max_rate
    from scipy import signal as sps  # imported here: ~0.6 s that 500 Hz builds never need

    h = sps.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


@lru_cache(maxsize=32)
def _decimation_fir(down: int) -> np.ndarray:
    """:func:`_fir` for ``1 / down`` with the sinc's zero crossings (taps ``half +- k * down``,
    ~1e-17 from floating-point ``sin(pi k)``) set to exactly 0, so the kernel skips them: a
    fifth less work, an output change below 1e-15 of the signal."""
    h = _fir(1, down).copy()
    h[np.abs(h) < 1e-12 * np.abs(h).max()] = 0.0
    h.setflags(write=False)
    return h


def decimate(x: np.ndarray, down: int, offsets: np.ndarray | None = None,
             dtype: type = np.float64, records: np.ndarray | None = None) -> np.ndarray:
    """``resample_poly(x - offsets, 1, down, padtype="line")`` along the last axis of ``x``
    (..., n), for float signals or integer ADC counts (``offsets``: one baseline per row of
    ``x.reshape(-1, n)``, default 0); ``n`` must exceed the filter length. ``records``: only
    these entries of the first axis, as ``decimate(x[records], ...)`` without copying them.

    Compiled (:func:`kernels.decimate_line`): scipy's upfirdn loops per sample (~1.5 ms per
    12 x 5000 record for 500 -> 100 Hz), the kernel vectorises over outputs. ``dtype`` is the
    arithmetic: float64 matches scipy to ~1e-12; float32 is ~1.8x faster and what the signal
    stage uses on ADC counts, where its error (< 0.01 count) moves one sample in ~10^5 to the
    neighbouring count when rounded.
    """
    h = _decimation_fir(down).astype(dtype)
    n = x.shape[-1]
    rows = np.ascontiguousarray(x).reshape(-1, n)
    offsets = np.zeros(rows.shape[0]) if offsets is None else offsets
    shape = x.shape[:-1]
    if records is None:
        ids = np.arange(rows.shape[0])
    else:
        per_record = int(np.prod(x.shape[1:-1]))
        records = np.asarray(records, dtype=np.int64)
        ids = (records[:, None] * per_record + np.arange(per_record)).reshape(-1)
        shape = (records.size, *x.shape[1:-1])
    out = np.empty((ids.size, -(-n // down)), dtype=dtype)
    kernels.decimate_line(rows, ids, np.asarray(offsets, dtype=dtype), h, down, out)
    return out.reshape(*shape, out.shape[1])


def resample(signal: np.ndarray, fs_in: float, fs_out: float,
             offsets: np.ndarray | None = None, dtype: type = np.float64,
             records: np.ndarray | None = None) -> np.ndarray:
    """Resample along the last axis from ``fs_in`` to ``fs_out`` Hz (identity when equal).

    Same result as ``scipy.signal.resample_poly(x, up, down, axis=-1, padtype="line")`` with
    its default Kaiser FIR; integer decimation (500 -> 250/100 Hz) takes the compiled
    polyphase path (:func:`decimate`, where ``dtype`` float32 is the faster arithmetic the
    signal stage uses on ADC counts). ``offsets``: one value per row of
    ``signal.reshape(-1, n)`` subtracted first (WFDB baselines of counts). ``records``: only
    these entries of the first axis (as ``resample(signal[records], ...)`` with the offsets
    of those records; no copy on the compiled path). Output length is
    ``ceil(n * up / down)``. Input must be finite (repair NaN first: one NaN spreads over the
    filter length). Returns a new array of ``dtype``.
    """
    up, down = rate_ratio(fs_in, fs_out)
    x = np.asarray(signal)
    if offsets is not None:
        offsets = np.asarray(offsets, dtype=np.float64).reshape(*x.shape[:-1], 1)
    if up == 1 and down > 1 and x.shape[-1] > _fir(up, down).size:
        return decimate(x, down, None if offsets is None else offsets.reshape(-1), dtype=dtype,
                        records=records)
    if records is not None:
        x = x[records]
        offsets = None if offsets is None else offsets[records]
    x = x.astype(np.float64) if offsets is None else x - offsets
    if up == down:
        return x.astype(dtype, copy=True)
    if x.shape[-1] == 0:
        raise RecordReject("wrong_length", "cannot resample an empty signal")
    from scipy import signal as sps

    y = sps.resample_poly(x, up, down, axis=-1, window=_fir(up, down), padtype="line")
    return y.astype(dtype, copy=False)


def fit_length(signal: np.ndarray, n_target: int, policy: str, tolerance: int = 0) -> np.ndarray:
    """Bring ``signal`` (..., n) to exactly ``n_target`` samples along the last axis.

    - ``strict``: lengths must match within ``tolerance`` samples (rate conversion can leave
      one sample over or short); a small excess is cropped at the end, a small shortfall padded
      by repeating the last sample. Otherwise ``RecordReject("wrong_length")``.
    - ``crop``: longer records keep their first ``n_target`` samples; shorter ones are rejected
      beyond ``tolerance``.
    - ``window``: as ``crop`` here; the index has already cut longer records into windows
      (``ecg_instruct/index/windows.py``), so this sees one window or a record of at most one.
    - ``crop_pad``: longer records are cropped at the end; shorter ones are padded at the end
      by repeating the last sample (edge padding: no step, no invented waveform). Use only if a
      flat tail is acceptable for your model.
    """
    if policy not in LENGTH_POLICIES:
        raise ValueError(f"unknown length policy {policy!r}; expected one of {LENGTH_POLICIES}")
    if n_target <= 0:
        raise ValueError(f"n_target must be positive, got {n_target}")
    n = signal.shape[-1]
    if n == n_target:
        return signal
    short = n < n_target
    if abs(n - n_target) > tolerance and (
            policy == "strict" or (policy in ("crop", "window") and short)):
        raise RecordReject("wrong_length", f"{n} samples, expected {n_target}")
    if not short:
        return signal[..., :n_target]
    if n == 0:
        raise RecordReject("wrong_length", f"0 samples, expected {n_target}")
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, n_target - n)]
    return np.pad(signal, pad, mode="edge")


def quantise(signal: np.ndarray, step_mv: float | np.ndarray) -> np.ndarray:
    """Round to a multiple of the ADC step (scalar, or one step per lead as shape ``(n_leads,)``).

    Filtering and resampling smear values off the source's ADC grid; rounding back makes the
    float32 column compress ~2.8x better (dictionary encoding sees a few thousand distinct
    values instead of millions) and loses nothing the source had. Returns float64; cast once at
    the end. NaN stays NaN.
    """
    step = np.asarray(step_mv, dtype=np.float64)
    if np.any(~np.isfinite(step)) or np.any(step <= 0):
        raise ValueError(f"ADC step must be positive, got {step_mv}")
    if step.ndim == 1:
        step = step[:, None]
    out = np.divide(signal, step)  # one new float64 array, then in place
    np.rint(out, out=out)
    out *= step
    return out
