"""The signal stage keeps freed memory in the heap (glibc): batches then reuse their pages."""

from __future__ import annotations

import os
import resource

import numpy as np
import pytest

from ecg_instruct.signals.heap import _glibc, retained_heap

pytestmark = pytest.mark.skipif(_glibc() is None, reason="the allocator is not glibc's")

PAGES = 2048  # an 8 MiB temporary, as a batch's decimated signals are a few MiB


def _faults_per_round(rounds: int = 10) -> float:
    """Minor page faults per allocation, first touch and release of an 8 MiB array."""
    np.ones(PAGES * 512)  # settle whatever the first allocation does
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        np.ones(PAGES * 512)  # 8 bytes x 512 per 4 KiB page
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_freed_memory_is_reused_in_the_heap():
    with retained_heap() as retained:
        assert retained
        assert _faults_per_round() < PAGES / 200  # the same pages again: next to no faults


def test_the_kept_memory_goes_back_after_the_stage():
    with retained_heap():
        block = np.ones(24 * 2**20 // 8)  # 24 MiB from the heap (below the mmap threshold)
        del block
        kept = _rss_mib()
    assert _rss_mib() < kept - 16  # malloc_trim on exit returned it
