"""Bootstrap 95 % intervals over records, seeded, shared by every metric of one evaluation.

Every metric is a function of per-record statistics (BLEU: clipped n-gram counts and lengths;
ROUGE-L, CIDEr-D, METEOR, BERTScore: per-record scores; clinical F1: per-record, per-statement
true/false positives and false negatives). A replicate draws ``n`` records with replacement as a
count vector ``w`` and recomputes each metric from ``w``-weighted sums, so corpus-level metrics
stay corpus-level. The same seed and ``n`` give the same replicates for every condition of a run,
which makes the control-vs-ECG differences *paired*: the interval of a difference is the
percentile interval of the per-replicate differences.

CIDEr-D's document frequencies stay those of the full split in every replicate (a resampled
split would count a duplicated reference twice); its interval is that of the mean per-record
CIDEr-D under fixed IDF weights.
"""

from __future__ import annotations

import numpy as np

from ecg_instruct.rng import rng_for

DEFAULT_REPLICATES = 1000


def replicate_weights(n: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n) counts: how often each record is drawn in each replicate."""
    rng = rng_for(seed, "bootstrap-over-records", n)
    idx = rng.integers(0, n, size=(replicates, n))
    flat = (idx + np.arange(replicates)[:, None] * n).ravel()
    return np.bincount(flat, minlength=replicates * n).reshape(replicates, n).astype(np.float64)


def interval(values: np.ndarray) -> list[float] | None:
    """Percentile 95 % interval of replicate values (NaN replicates ignored); None if none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def difference_supported(a: np.ndarray, b: np.ndarray) -> tuple[list[float] | None, bool]:
    """Paired interval of ``a - b`` over the same replicates, and whether it excludes 0."""
    ci = interval(np.asarray(a) - np.asarray(b))
    return ci, ci is not None and (ci[0] > 0 or ci[1] < 0)


def metric_cell(row: dict, metric: str, reference: dict | None) -> str:
    """``0.4123 [0.39, 0.43]``; against a reference row, ``(n.s.)`` marks a difference whose
    paired 95 % interval includes 0 (the intervals do not support it)."""
    value = row.get(metric)
    if value is None:
        return "-"
    ci = (row.get("ci95") or {}).get(metric)
    text = f"{value:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    if reference is not None and reference is not row:
        a = row.get("_replicates", {}).get(metric)
        b = reference.get("_replicates", {}).get(metric)
        if a is not None and b is not None:
            _, supported = difference_supported(a, b)
            text += "" if supported else " (n.s.)"
    return text
