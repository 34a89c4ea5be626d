"""Ask the kernel to start reading the records a shard will need next.

Why: a mirror larger than memory (MIMIC-IV-ECG's 800k records are ~96 GB of `.dat`) is read
from disk, and a worker that reads one record at a time waits for each read in turn.
``posix_fadvise(WILLNEED)`` on the files of records further down the shard queues their reads
while the worker curates the current batch: ``bench_signals.py``'s cold-cache rows went from
1,379-1,744 to 2,062-2,339 records/s in one process (two runs each; README). It only
touches the page cache: a file that is missing, odd or unreadable here is found and named by
the reader as before.
"""

from __future__ import annotations

import os

#: How far ahead of the record being read (records): two batches of the signal stage.
PREFETCH_AHEAD = 64
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)


def prefetch(record_path: str, suffixes: tuple[str, ...] = (".hea", ".dat")) -> None:
    """Start reading ``record_path + suffix`` into the page cache, without waiting for it.

    Non-blocking open (a FIFO named like a signal file must not stall the worker); no effect
    where ``posix_fadvise`` does not exist."""
    if _WILLNEED is None:
        return
    for suffix in suffixes:
        try:
            fd = os.open(record_path + suffix, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, _WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)
