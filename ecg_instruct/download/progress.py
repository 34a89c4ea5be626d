"""Progress in files and bytes on stderr (tqdm), safe to update from worker threads.

PhysioNet's checksum files carry no sizes, so the byte bar shows amount and rate without a
total; the file bar has the total and the ETA.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class Progress:
    """Two tqdm bars (files, bytes) or nothing at all when disabled."""

    def __init__(self, enabled: bool | None, label: str):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.enabled = enabled
        self._lock = threading.Lock()
        self._files: Any = None
        self._bytes: Any = None
        if enabled:
            from tqdm import tqdm

            self._files = tqdm(total=0, unit="file", desc=f"{label} files", position=0,
                               file=sys.stderr, dynamic_ncols=True)
            self._bytes = tqdm(unit="B", unit_scale=True, unit_divisor=1024,
                               desc=f"{label} bytes", position=1, file=sys.stderr,
                               dynamic_ncols=True)

    def add_files(self, n: int) -> None:
        """More files were queued (the metadata phase, then the records)."""
        if self._files is not None:
            with self._lock:
                self._files.total += n
                self._files.refresh()

    def file_done(self) -> None:
        if self._files is not None:
            with self._lock:
                self._files.update(1)

    def add_bytes(self, n: int) -> None:
        if self._bytes is not None:
            with self._lock:
                self._bytes.update(n)

    def close(self) -> None:
        for bar in (self._bytes, self._files):
            if bar is not None:
                bar.close()
