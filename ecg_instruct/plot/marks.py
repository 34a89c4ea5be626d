"""Where a record is broken: the stretches a figure shades (NaN runs, rail plateaus, flat leads).

The quality stage says *that* a record failed and names the first lead; a reader checking the
verdict wants to see *where*. These are the same criteria as ``signals.quality`` (same recipe
thresholds), evaluated per lead and per stretch instead of stopping at the first failure.
"""

from __future__ import annotations

import warnings

import numpy as np

from ecg_instruct.plot.view import Mark
from ecg_instruct.signals.quality import QualityConfig

#: At most this many marks per lead and kind (a noisy record must not bury the figure).
MAX_PER_LEAD = 8


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end exclusive) of the True runs of a 1-D boolean array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))


def nan_marks(signal: np.ndarray, fs: float) -> list[Mark]:
    """Every run of missing (NaN/inf) samples."""
    out = []
    for lead in range(signal.shape[0]):
        runs = _runs(~np.isfinite(signal[lead]))
        for start, end in runs[:MAX_PER_LEAD]:
            out.append(Mark(lead, start / fs, end / fs, f"NaN run {(end - start) / fs:.3f} s"))
    return out


def clipping_marks(signal: np.ndarray, fs: float, cfg: QualityConfig) -> list[Mark]:
    """Plateaus at a lead's own extreme value, in leads where they cover more than
    ``clip_max_fraction`` of the record (the quality check's criterion)."""
    if cfg.clip_max_fraction is None:
        return []
    out = []
    n = signal.shape[1]
    min_run = max(2, int(round(cfg.clip_min_run_s * fs)))
    for lead in range(signal.shape[0]):
        x = signal[lead]
        finite = np.isfinite(x)
        if not finite.any():
            continue
        top, bottom = x[finite].max(), x[finite].min()
        plateaus = [(s, e) for s, e in _runs((x == top) | (x == bottom)) if e - s >= min_run]
        if sum(e - s for s, e in plateaus) <= cfg.clip_max_fraction * n:
            continue
        plateaus.sort(key=lambda r: r[0] - r[1])  # longest first
        for start, end in plateaus[:MAX_PER_LEAD]:
            out.append(Mark(lead, start / fs, end / fs, "clipped"))
    return out


def flat_marks(signal: np.ndarray, fs: float, cfg: QualityConfig) -> list[Mark]:
    """Whole leads with std below ``flat_std_mv`` and the ``flat_window_s`` windows (on the
    quality check's grid of windows) whose peak-to-peak stays below ``flat_window_ptp_mv``."""
    out = []
    n = signal.shape[1]
    window = int(round(cfg.flat_window_s * fs)) if cfg.flat_window_s is not None else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN leads
        for lead in range(signal.shape[0]):
            x = signal[lead]
            if cfg.flat_std_mv is not None and np.nanstd(x) < cfg.flat_std_mv:
                out.append(Mark(lead, 0.0, n / fs, f"flat lead (std {np.nanstd(x) * 1000:.1f} µV)"))
                continue
            if not window or n // window == 0:
                continue
            blocks = x[: n // window * window].reshape(-1, window)
            ptp = np.nanmax(blocks, axis=1) - np.nanmin(blocks, axis=1)
            flat = np.flatnonzero(ptp < cfg.flat_window_ptp_mv)
            for k in flat[:MAX_PER_LEAD].tolist():
                out.append(Mark(lead, k * window / fs, (k + 1) * window / fs,
                                f"flat {ptp[k] * 1000:.0f} µV p-p"))
    return out


def find_marks(signal: np.ndarray, fs: float, cfg: QualityConfig | None = None) -> list[Mark]:
    """All offending stretches of a ``(n_leads, n)`` mV signal, in lead order."""
    cfg = cfg or QualityConfig()
    x = np.asarray(signal, dtype=np.float64)
    marks = nan_marks(x, fs) + flat_marks(x, fs, cfg) + clipping_marks(x, fs, cfg)
    return sorted(marks, key=lambda m: (m.lead, m.start_s))
