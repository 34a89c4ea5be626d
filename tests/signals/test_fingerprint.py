"""Content fingerprints: the same stored ECG gives one fingerprint whatever its container."""

from __future__ import annotations

import numpy as np

from ecg_instruct.signals.fingerprint import fingerprint_counts, fingerprint_record
from ecg_instruct.signals.wfdb_io import read_header, read_record
from ecg_instruct.sources.cinc2021_layout import write_challenge_record


def test_fast_path_and_float_path_agree_and_one_count_changes_it(tmp_path):
    counts = np.random.default_rng(1).integers(-900, 900, size=(12, 500)).astype(np.int16)
    path = write_challenge_record(tmp_path, "HR00001", counts, 500)
    ecg = read_record(path)
    assert ecg.digital is not None  # the fast reader, at the MATLAB header's 24-byte offset
    assert read_header(path).byte_offsets == [24] * 12
    order = np.arange(12)
    fast = fingerprint_record(ecg.digital, ecg.signal, order, ecg.baseline, 1000.0, 500)
    slow = fingerprint_record(None, ecg.signal, order, ecg.baseline, 1000.0, 500)
    assert fast == slow == fingerprint_counts(counts, np.zeros(12, np.int64), 1000.0, 500)
    changed = counts.copy()
    changed[11, 499] += 1
    assert fingerprint_counts(changed, np.zeros(12, np.int64), 1000.0, 500) != fast
    assert fingerprint_counts(counts, np.zeros(12, np.int64), 200.0, 500) != fast
