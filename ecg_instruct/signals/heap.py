"""Keep freed memory in the process heap during the signal stage (glibc; a no-op elsewhere).

Why: every batch of the signal stage allocates and frees a few MB of temporaries (block
sums, the decimated batch, its int16 copy). With glibc's default tuning the next batch gets
those pages back from the kernel, not from the heap: blocks above the mmap threshold are
fresh mappings, and a free heap top beyond the trim threshold is handed back. Each first
touch of a page is a page fault; on the VMs we measured, ~10 faults per record were ~10 % of
the whole stage. Setting both thresholds where glibc's own dynamic tuning ends up in a
long-running process keeps the pages in the heap from the first batch on. Peak RSS is
unchanged (the same high-water mark, reached once instead of once per batch), and an
in-process build gives the free memory back when the stage is done. (Per shard is too
short: a shard's own buffers are several MB, and faulting them in again for every shard cost
more than it saved.)
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks below this come from the heap: glibc's largest mmap threshold on 64-bit systems,
#: the value its own dynamic tuning moves towards once blocks this large have been freed.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the heap's top beyond this goes back to the system: twice the mmap
#: threshold, as glibc's dynamic tuning sets it. A batch's temporaries are far below it.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it has glibc's ``mallopt`` and ``malloc_trim``, else None
    (macOS, musl: their allocators are left alone)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def retain_freed_memory() -> bool:
    """Freed blocks below 32 MiB stay in this process's heap for reuse from now on (up to
    64 MiB of free memory). False where the allocator is not glibc's (nothing done). Signal
    workers call it once at start."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                                     and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_freed_memory() -> None:
    """Hand the heap's free memory back to the system now (``malloc_trim``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextmanager
def retained_heap() -> Iterator[bool]:
    """:func:`retain_freed_memory` for the signal stage run in this process; on exit the free
    memory it kept goes back to the system (the thresholds stay: they are what glibc's own
    tuning reaches in a process that frees large blocks). Yields whether the allocator was
    tuned."""
    retained = retain_freed_memory()
    try:
        yield retained
    finally:
        if retained:
            release_freed_memory()
