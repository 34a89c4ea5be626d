"""Compiled inner loops of signal curation (numba), one job each.

Why numba: after the reader, curation is a handful of passes over 60,000 samples per record
(window extremes, moments, a 101-tap decimation filter, a QRS energy envelope and its peaks).
As numpy calls each pass allocates temporaries and a batch of them cost ~1.5 ms per record; as
plain loops that LLVM vectorises they cost ~0.2 ms. Every kernel is written so that its result
does not depend on the CPU's vector width (no fast-math, no reassociated float sums): integer
sums are exact, and each float output accumulates its terms in one fixed order, so builds on
different machines give the same bytes.

Kernels take preallocated outputs and never raise on data; the Python callers in
``quality.py`` and ``resample.py`` turn their numbers into verdicts and messages. Compiled
code is cached on disk (``cache=True``): the first use in a fresh environment compiles for
~15-20 s (the build does it once, before starting workers: :func:`warm_up`), later processes
load it in ~0.3 s.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

#: Columns of :func:`lead_stats`' output, per record and lead.
STAT_MAX, STAT_MIN, STAT_SUM, STAT_SUMSQ, STAT_WIN_PTP, STAT_WIN_AT, STAT_AT_EXTREMES = range(7)
N_STATS = 7


@njit(cache=True, nogil=True)
def gather_leads(raw: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
    """``out[c] = raw[:, order[c]]``: frame-interleaved WFDB samples ``(n, n_sig)`` to one
    contiguous row per canonical lead ``(n_leads, n)``, without a transposed temporary.

    Four leads per pass over the frames: a pass reads every cache line of ``raw`` whichever
    lead it copies, so four at a time is a quarter of the reads (25 % faster than one lead
    per pass; six per pass is slower again). (Anything more in this loop, such as block
    sums, makes it several times slower.)"""
    n = raw.shape[0]
    c = 0
    while c + 3 < order.size:
        s0, s1, s2, s3 = order[c], order[c + 1], order[c + 2], order[c + 3]
        r0, r1, r2, r3 = out[c], out[c + 1], out[c + 2], out[c + 3]
        for i in range(n):
            frame = raw[i]
            r0[i] = frame[s0]
            r1[i] = frame[s1]
            r2[i] = frame[s2]
            r3[i] = frame[s3]
        c += 4
    while c < order.size:
        src = order[c]
        row = out[c]
        for i in range(n):
            row[i] = raw[i, src]
        c += 1


# Loops below index slices with plain ``range(len)`` counters: with an index numba cannot
# prove non-negative it emits a wraparound check per access, which stops LLVM vectorising.


def _as_sample(x, zero):
    """``x`` in the arithmetic of ``zero`` (compiled per type: see the overload below)."""
    return x + zero


@overload(_as_sample)
def _as_sample_compiled(x, zero):
    # numba types int16 + int32 as int64, whose products do not vectorise: an int32 ``zero``
    # converts explicitly (1.4x faster lead_stats on int16 counts)
    if isinstance(zero, types.Integer) and zero.bitwidth == 32:
        return lambda x, zero: np.int32(x)
    return lambda x, zero: x + zero


@njit(cache=True, nogil=True)
def _moments(v, zero):
    """Max, min, sum and sum of squares of ``v`` in one vectorised pass. Each sample is taken
    as the type of ``zero`` (int32 for int16 counts: its squares are exact and the products
    vectorise, where int64 products do not), the sums as int64 (integers) or float64."""
    hi = v[0]
    lo = v[0]
    total = zero + np.int64(0)
    squares = zero + np.int64(0)
    for i in range(v.size):
        x = v[i]
        hi = max(hi, x)
        lo = min(lo, x)
        y = _as_sample(x, zero)
        total += y
        squares += y * y
    return hi, lo, total, squares


@njit(cache=True, nogil=True)
def _count_at(v, hi, lo) -> int:
    """Samples equal to ``hi`` plus samples equal to ``lo`` (a constant lead counts twice)."""
    at = 0
    for i in range(v.size):
        x = v[i]
        at += (x == hi) | (x == lo)  # one boolean per sample: half the work of two counts
    return 2 * at if hi == lo else at


@njit(cache=True, nogil=True)
def lead_stats(x: np.ndarray, window: int, zero, out: np.ndarray) -> None:
    """Per record and lead of ``x`` (B, n_leads, n): max, min, sum, sum of squares, the smallest
    peak-to-peak over consecutive ``window``-sample windows and the first window that has it
    (``inf`` and -1 when ``window`` is 0 or longer than the record), and how many samples sit
    exactly at the lead's max or min. Written to ``out`` (B, n_leads, N_STATS) as float64.

    ``zero`` sets the arithmetic: ``np.int32(0)`` for int16 counts (each sample and its square
    as int32, sums as int64: exact, and loops the compiler vectorises), ``0.0`` for float
    signals (float64 throughout). Two passes over each lead: one
    for everything per window (and the tail after the last full window), one to count the
    samples at the extremes.
    """
    n_rec, n_leads, n = x.shape
    n_win = n // window if window > 0 else 0
    for b in range(n_rec):
        for lead in range(n_leads):
            row = x[b, lead]
            hi = row[0]
            lo = row[0]
            total = zero + np.int64(0)
            squares = zero + np.int64(0)
            best = np.inf
            best_at = -1
            for k in range(n_win + 1):
                part = row[k * window : (k + 1) * window] if k < n_win else row[n_win * window :]
                if part.size == 0:
                    break
                whi, wlo, wsum, wsq = _moments(part, zero)
                if k < n_win:
                    ptp = float(whi) - float(wlo)
                    if ptp < best:
                        best = ptp
                        best_at = k
                hi = max(hi, whi)
                lo = min(lo, wlo)
                total += wsum
                squares += wsq
            res = out[b, lead]
            res[STAT_MAX] = hi
            res[STAT_MIN] = lo
            res[STAT_SUM] = total
            res[STAT_SUMSQ] = squares
            res[STAT_WIN_PTP] = best
            res[STAT_WIN_AT] = best_at
            res[STAT_AT_EXTREMES] = _count_at(row, hi, lo)


@njit(cache=True, nogil=True)
def decimate_line(x: np.ndarray, rows: np.ndarray, offsets: np.ndarray, h: np.ndarray,
                  down: int, out: np.ndarray) -> None:
    """``resample_poly(x[r] - offsets[r], 1, down, window=h, padtype="line")`` for each row
    ``r`` of ``x`` (R, n) listed in ``rows``, into ``out`` (len(rows), ceil(n / down)).
    (A list of rows, not a copy of them: the stage decimates the records of a batch that
    passed the checks, in place in the batch buffer.)

    The padded row is split into its ``down`` phases, so each tap is one contiguous
    multiply-add over all outputs of the row (vectorised; each output sums its taps in one
    fixed order whatever the vector width). ``h`` must be symmetric (a linear-phase FIR, as
    ``firwin`` designs): taps ``t`` and ``len(h) - 1 - t`` share one multiply, and zero taps
    are skipped. ``offsets``
    (R,) is subtracted first (the WFDB baseline when ``x`` holds ADC counts). Requires
    ``n > len(h)``.
    """
    n = x.shape[1]
    n_out = out.shape[1]
    n_taps = h.size
    half = (n_taps - 1) // 2
    span = (n_taps + down - 1) // down
    m = n_out + span
    phases = np.empty((down, m), out.dtype)
    # tap pairs that are exactly zero contribute nothing: skip them (a windowed-sinc
    # decimator's sinc zeros, which resample.decimate rounds to 0 - a fifth of the work)
    active = np.array([t for t in range(half) if h[t] != 0], dtype=np.int64)
    # 500 -> 100 Hz: every phase holds the same stretch of the row (the filter's half-length
    # and the row a multiple of 5), so one pass with a constant stride splits the row
    by_five = down == 5 and half % 5 == 0 and n % 5 == 0
    for r in range(rows.size):
        row = x[rows[r]]
        off = float(offsets[rows[r]])
        first = row[0] - off
        last = row[n - 1] - off
        slope = (last - first) / max(n - 1, 1)
        # phase p, position j holds padded sample j * down + p, i.e. input sample k =
        # j * down + p - half; beyond either edge, the line through the first and last
        # samples (upfirdn's "line" padding)
        for p in range(down):
            ph = phases[p]
            j0 = min(m, -((p - half) // down))  # first j with k >= 0
            j1 = max(j0, min(m, (n - 1 + half - p) // down + 1))  # first j with k >= n
            for j in range(j0):
                ph[j] = first + slope * (j * down + p - half)
            if not by_five:
                src = row[j0 * down + p - half :: down]
                body = ph[j0:j1]
                for t in range(j1 - j0):
                    body[t] = src[t] - off
            for j in range(j1, m):
                ph[j] = last + slope * (j * down + p - half - n + 1)
        if by_five:  # all five phases in one pass with a constant stride (vector shuffles)
            j0 = half // 5
            b0, b1, b2 = phases[0, j0:], phases[1, j0:], phases[2, j0:]
            b3, b4 = phases[3, j0:], phases[4, j0:]
            for i in range(n // 5):
                k = 5 * i
                b0[i] = row[k] - off
                b1[i] = row[k + 1] - off
                b2[i] = row[k + 2] - off
                b3[i] = row[k + 3] - off
                b4[i] = row[k + 4] - off
        y = out[r]
        c = h[half]
        mid = phases[half % down, half // down : half // down + n_out]
        for i in range(n_out):
            y[i] = c * mid[i]
        k = 0
        while k + 3 < active.size:  # four tap pairs per pass over y: a quarter of the loads/stores
            t0, t1, t2, t3 = active[k], active[k + 1], active[k + 2], active[k + 3]
            a0, b0 = _tap_pair(phases, t0, n_taps, down, n_out)
            a1, b1 = _tap_pair(phases, t1, n_taps, down, n_out)
            a2, b2 = _tap_pair(phases, t2, n_taps, down, n_out)
            a3, b3 = _tap_pair(phases, t3, n_taps, down, n_out)
            c0, c1, c2, c3 = h[t0], h[t1], h[t2], h[t3]
            for i in range(n_out):
                y[i] += ((c0 * (a0[i] + b0[i]) + c1 * (a1[i] + b1[i]))
                         + (c2 * (a2[i] + b2[i]) + c3 * (a3[i] + b3[i])))
            k += 4
        while k < active.size:
            t0 = active[k]
            a0, b0 = _tap_pair(phases, t0, n_taps, down, n_out)
            c0 = h[t0]
            for i in range(n_out):
                y[i] += c0 * (a0[i] + b0[i])
            k += 1


@njit(cache=True, nogil=True)
def _tap_pair(phases, t: int, n_taps: int, down: int, n_out: int):
    """The input samples that taps ``t`` and ``n_taps - 1 - t`` meet, for every output."""
    u = n_taps - 1 - t
    return (phases[t % down, t // down : t // down + n_out],
            phases[u % down, u // down : u // down + n_out])


@njit(cache=True, nogil=True)
def round_to_int16(y: np.ndarray, out: np.ndarray, fits: np.ndarray) -> None:
    """Per row of ``y`` (R, n) float: round to whole counts in place (``np.rint``: half to
    even), and where every value of the row fits int16 (|v| <= 32767; -32768 is WFDB's
    missing-sample code) write them to ``out`` (R, n) int16 and set ``fits[r]``. One pass for
    what took four numpy passes (rint, max, min, astype) over every resampled record."""
    n_rows, n = y.shape
    for r in range(n_rows):
        row = y[r]
        dst = out[r]
        # the range check on the values clipped to int32: integer extremes vectorise, float
        # ones do not without fast-math; clipping keeps the conversion defined for any value
        hi = np.int32(-(2**31))
        lo = np.int32(2**31 - 1)
        for i in range(n):
            v = np.rint(row[i])
            row[i] = v
            w = np.int32(min(max(v, -2.0**31), 2.0**31 - 128))
            hi = max(hi, w)
            lo = min(lo, w)
            dst[i] = np.int16(w)  # wraps where the row does not fit: then unused
        fits[r] = hi <= 32767 and lo >= -32767


@njit(cache=True, nogil=True)
def _local_maxima(x: np.ndarray) -> np.ndarray:
    """Indices of local maxima; a flat top counts once, at its middle (scipy's convention)."""
    n = x.size
    peaks = np.empty(n // 2 + 1, np.int64)
    count = 0
    i = 1
    while i < n - 1:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < n - 1 and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks[count] = (i + ahead - 1) // 2
                count += 1
                i = ahead
        i += 1
    return peaks[:count]


@njit(cache=True, nogil=True)
def find_peaks_height_distance(x: np.ndarray, height: float, distance: int) -> np.ndarray:
    """``scipy.signal.find_peaks(x, height=height, distance=distance)[0]``.

    Maxima at least ``height`` high; then, highest first, every peak closer than ``distance``
    samples to a kept higher one is dropped (ties: the later-listed peak is kept first, via
    a stable sort, where scipy's quicksort leaves the order unspecified).
    """
    peaks = _local_maxima(x)
    tall = peaks[x[peaks] >= height]
    if tall.size < 2 or distance <= 1:
        return tall
    priority = np.argsort(x[tall], kind="mergesort")
    keep = np.ones(tall.size, np.bool_)
    for idx in range(tall.size - 1, -1, -1):
        j = priority[idx]
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and tall[j] - tall[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < tall.size and tall[k] - tall[j] < distance:
            keep[k] = False
            k += 1
    return tall[keep]


@njit(cache=True, nogil=True)
def block_sums(x: np.ndarray, block: int, zero, out: np.ndarray) -> None:
    """``out[b, c, j]`` = sum of ``x[b, c, j * block : (j + 1) * block]`` (in index order),
    accumulated in the type of ``zero`` (int32 for int16 counts when the sums fit, see
    ``quality.block_sum_dtype``).

    The usual block sizes (2 for 250 Hz, 5 for 500 Hz, 10 for 1 kHz records) are spelled out
    with a constant stride, which the compiler turns into vector shuffles: twice as fast as
    the general loop, with the same sums in the same order.
    """
    n_rec, n_leads, _ = x.shape
    m = out.shape[2]
    for b in range(n_rec):
        for c in range(n_leads):
            row = x[b, c]
            sums = out[b, c]
            if block == 5:
                for j in range(m):
                    k = 5 * j
                    sums[j] = ((((zero + row[k]) + row[k + 1]) + row[k + 2]) + row[k + 3]
                               + row[k + 4])
            elif block == 2:
                for j in range(m):
                    sums[j] = (zero + row[2 * j]) + row[2 * j + 1]
            elif block == 10:
                for j in range(m):
                    k = 10 * j
                    sums[j] = ((((((((((zero + row[k]) + row[k + 1]) + row[k + 2])
                                     + row[k + 3]) + row[k + 4]) + row[k + 5]) + row[k + 6])
                                  + row[k + 7]) + row[k + 8]) + row[k + 9])
            else:
                blocks = row[: m * block].reshape(m, block)
                for j in range(m):
                    acc = zero
                    for i in range(block):
                        acc += blocks[j, i]
                    sums[j] = acc


@njit(cache=True, nogil=True)
def _select(a: np.ndarray, k: int) -> float:
    """The ``k``-th smallest value of ``a`` (0-based), reordering ``a`` in place so that
    ``a[:k] <= a[k] <= a[k + 1:]``, as ``np.partition(a, k)`` leaves it. Hoare partitioning
    around a median of three (Wirth's selection): equal values split evenly, so a flat
    envelope stays linear. Three times faster than numba's ``np.partition``, which copies and
    checks for NaN (the energy never holds NaN). Order statistics are exact values, so the
    result equals ``np.partition``'s whatever the order of ties."""
    lo = 0
    hi = a.size - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))  # an element of a[lo:hi + 1]: sentinels
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@njit(cache=True, nogil=True)
def qrs_rates(sums: np.ndarray, width: int, distance: int, min_contrast: float,
              rel_height: float, out_rate: np.ndarray, out_peaks: np.ndarray) -> None:
    """Per record of block sums ``sums`` (B, n_leads, m): beats per block and the R-peak
    count (see ``quality.heart_rates_bpm`` for the method and its reasons).

    The QRS energy (squared first difference, summed over leads) is float64, exact for
    integer sums below 2**26 (every block sum of int16 counts): the sums converted to float64,
    then differences, squares and their sum, which vectorises where int64 products do not.
    ``out_rate[b]`` is NaN when the energy shows no distinct complexes (``out_peaks`` 0) or
    fewer than two peaks are found; otherwise 1 / median R-R interval in blocks.
    """
    n_rec, n_leads, m = sums.shape
    energy = np.empty(max(m - 1, 0))
    csum = np.empty_like(energy)
    smooth = np.empty_like(energy)
    work = np.empty_like(energy)
    for b in range(n_rec):
        out_rate[b] = np.nan
        out_peaks[b] = 0
        if m - 1 <= width:
            continue
        energy[:] = 0
        for lead in range(n_leads):
            row = sums[b, lead]
            ahead = row[1:]
            for j in range(m - 1):
                # converted before subtracting: int32 -> float64 is a vector instruction,
                # int64 -> float64 is not (the same value: both sides are exact)
                d = float(ahead[j]) - float(row[j])
                energy[j] += d * d
        size = energy.size - width
        # moving sum of `width` samples from a running cumulative sum (np.cumsum's order)
        total = 0.0
        for j in range(energy.size):
            total += energy[j]
            csum[j] = total
        for j in range(size):
            smooth[j] = csum[j + width] - csum[j]
            work[j] = smooth[j]  # the selections reorder their input: keep `smooth` for peaks
        ranked = work[:size]
        k50 = size // 2
        k99 = min(size - 1, int(0.99 * size))
        median = _select(ranked, k50)  # and everything after k50 is >= it: select there
        top = _select(ranked[k50 + 1 :], k99 - k50 - 1) if k99 > k50 else median
        smooth_b = smooth[:size]
        if not top > min_contrast * median:
            continue
        peaks = find_peaks_height_distance(smooth_b, rel_height * top, distance)
        out_peaks[b] = peaks.size
        if peaks.size >= 2:
            out_rate[b] = 1.0 / np.median(np.diff(peaks).astype(np.float64))


@njit(cache=True, nogil=True)
def band_power_share(spectrum: np.ndarray, first: int, out: np.ndarray) -> None:
    """Per row of a one-sided spectrum ``spectrum`` (R, K) complex: the share of its power in
    bins ``first`` and above, leaving out bin 0 (the mean). 0 for a row without power.

    Four interleaved float64 partial sums per band keep the adds independent (fast) while
    every row still sums in one fixed order.
    """
    n_rows, n_bins = spectrum.shape
    for r in range(n_rows):
        row = spectrum[r]
        lo = np.zeros(4)
        hi = np.zeros(4)
        for k in range(1, min(first, n_bins)):
            re, im = np.float64(row[k].real), np.float64(row[k].imag)
            lo[k & 3] += re * re + im * im
        for k in range(max(first, 1), n_bins):
            re, im = np.float64(row[k].real), np.float64(row[k].imag)
            hi[k & 3] += re * re + im * im
        high = (hi[0] + hi[1]) + (hi[2] + hi[3])
        total = (lo[0] + lo[1]) + (lo[2] + lo[3]) + high
        out[r] = high / total if total > 0 else 0.0


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the kernels for the argument types the signal
    stage uses, so that a worker's first batch does not pay for it: ~0.3 s from the cache,
    ~15 s for the first compile after installation. The pipeline calls it once before
    starting workers (they then load the cache); benchmarks call it before timing."""
    counts = np.zeros((1, 2, 400), dtype=np.int16)
    counts[0, :, ::50] = 100
    stats = np.empty((1, 2, N_STATS))
    rate, peaks = np.empty(1), np.empty(1, np.int64)
    # int16 counts: the stage; float64 millivolts: check_and_repair (the one-record path)
    # (the types of quality.sample_dtype and quality.block_sum_dtype)
    for x, zero in ((counts, np.int32(0)), (counts.astype(np.float64), 0.0)):
        lead_stats(x, 100, zero, stats)
        sums = np.empty((1, 2, 200), type(zero))
        block_sums(x, 2, zero, sums)
        qrs_rates(sums, 5, 10, 2.5, 0.3, rate, peaks)
    order = np.arange(2, dtype=np.intp)
    order.setflags(write=False)  # as leads.canonical_lead_index hands it out (a distinct type)
    gather_leads(np.zeros((4, 2), np.int16), order, np.empty((2, 4), np.int16))
    h = np.ones(11, dtype=np.float32) / 11
    decimate_line(counts[0], np.arange(2), np.zeros(2, np.float32), h, 5,
                  np.empty((2, 80), np.float32))
    band_power_share(np.zeros((1, 8), np.complex64), 3, np.empty(1))
    for dtype in (np.float32, np.float64):  # decimated, and resample_poly's output
        round_to_int16(np.zeros((2, 4), dtype), np.empty((2, 4), np.int16), np.empty(2, np.bool_))
    from ecg_instruct.signals import header_scan  # (wfdb_io imports it: no cycle here)

    header_scan.warm_up()
