"""Damage a format-16 WFDB record in place, keeping its header checksums right, so that the
record reaches the quality checks (a checksum mismatch would be caught first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def damage_record(record: Path, change: Callable[[np.ndarray], None]) -> None:
    """Apply ``change`` to the ``(n, n_sig)`` int16 counts of ``record`` (path without
    extension) and rewrite the ``.dat`` and the checksums in the ``.hea``."""
    hea = record.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    n_sig = int(lines[0].split()[1])
    dat = record.parent / lines[1].split()[0]
    counts = np.fromfile(dat, "<i2").reshape(-1, n_sig).copy()
    change(counts)
    counts.astype("<i2").tofile(dat)
    sums = counts.astype(np.int64).sum(axis=0) % 65536
    for i in range(n_sig):
        fields = lines[1 + i].split(" ")
        fields[6] = str(int(sums[i]))
        lines[1 + i] = " ".join(fields)
    hea.write_text("\n".join(lines) + "\n")
