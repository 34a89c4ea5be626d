"""A content fingerprint of a record's samples, to find the same ECG in two sources.

Collections re-issue records of other releases (the Challenge 2021 `ptb-xl` database is PTB-XL's
500 Hz records), so the same ECG can reach a build twice under two ids, and a test record of one
source can land in another source's train split. The fingerprint is a 128-bit hash of what the
source stored, before any curation: sampling rate, gain, per-lead baselines and every ADC count,
leads in canonical order (so a re-issue that reorders or renames leads still matches). It is
computed in the signal stage, where the counts are in memory anyway (~6 us per 12 x 5000
record, 2 us of it the xxh3 hash itself), and compared across the whole build by
`ecg_instruct.publish.duplicates`.
"""

from __future__ import annotations

import numpy as np
import xxhash

_INT16_MIN, _INT16_MAX = -32768, 32767
_xxh3_128 = xxhash.xxh3_128_hexdigest
_xxh3_64 = xxhash.xxh3_64_hexdigest


def fingerprint_counts(counts: np.ndarray, baselines: np.ndarray, gain: float, fs: float) -> str:
    """Hex digest of canonical-order ADC `counts` (n_leads, n), integer, as stored.

    Counts that fit int16 are hashed as int16 whatever their array type, so a record read by
    the fast path and one decoded by wfdb (int64) give the same fingerprint.
    """
    counts = np.asarray(counts)
    if counts.dtype != np.int16:
        if counts.size and (counts.min() < _INT16_MIN or counts.max() > _INT16_MAX):
            counts = counts.astype("<i8")
        else:
            counts = counts.astype("<i2")
    counts = np.ascontiguousarray(counts)
    # the samples in one call (~2 us for 120 kB); the few header values as text beside it
    samples = _xxh3_128(memoryview(counts).cast("B"))
    baseline = _xxh3_64(np.ascontiguousarray(baselines, dtype="<i8").tobytes())
    shape = f"{counts.shape[0]}x{counts.shape[1]}{counts.dtype.str}"
    return f"counts:{samples}:{baseline}:{shape}:{float(fs)!r}:{float(gain)!r}"


def fingerprint_mv(signal: np.ndarray, fs: float) -> str:
    """Hex digest of a canonical-order float signal (n_leads, n) in mV, for sources that store
    floats rather than ADC counts (CODE-15%): the float32 values as stored."""
    values = np.ascontiguousarray(signal, dtype="<f4")
    samples = _xxh3_128(memoryview(values).cast("B"))
    return f"mv:{samples}:{values.shape[0]}x{values.shape[1]}:{float(fs)!r}"


def fingerprint_record(digital: np.ndarray | None, signal: np.ndarray, order: np.ndarray,
                       baselines: np.ndarray, gain: float, fs: float) -> str:
    """The fingerprint of a record read by `wfdb_io.read_record`: from its int16 counts when
    the fast reader kept them, else from the mV signal turned back into counts (NaN -> WFDB's
    missing-sample code, as format 16 stores it)."""
    if digital is not None:
        return fingerprint_counts(digital[order], baselines[order], gain, fs)
    mv = signal[order]
    counts = np.where(np.isfinite(mv), np.rint(mv * gain) + baselines[order][:, None],
                      _INT16_MIN).astype(np.int64)
    return fingerprint_counts(counts, baselines[order], gain, fs)
