"""`length_policy: window`: a long record becomes consecutive recipe-length windows, one row each.

Challenge 2021 holds records of up to 30 minutes (INCART, PTB); cropping keeps only their first
seconds. With `window`, the index gives a record of `n` source samples `k = n // L` rows, where
`L = round(duration_s * fs)` source samples (one recipe duration), with ids `<id>/w<NNN>`
(window `NNN`, starting at `NNN * duration_s` seconds into the record) and the path
`<path>@w<NNN>`. The signal stage reads the record, keeps source samples `[NNN * L, (NNN+1) * L)`
and curates them like any record (checks, resampling, rounding), so each window stands alone:
a flat lead in window 3 rejects window 3 only. A record with one window or less keeps its id and
is cropped like `crop` (shorter than one window: `wrong_length`); the trailing part shorter than a
window is not published. Every window carries the record's patient, split, labels and report.
"""

from __future__ import annotations

import pandas as pd

WINDOW_MARK = "@w"


def window_count(n_samples: int, fs: float, duration_s: float) -> int:
    """Whole recipe-length windows in a record of `n_samples` at `fs` (0 when unknown)."""
    length = int(round(duration_s * fs))
    return int(n_samples) // length if length > 0 and n_samples > 0 else 0


def expand_windows(index: pd.DataFrame, duration_s: float) -> pd.DataFrame:
    """One row per window for records longer than two windows' worth; others unchanged.

    Records whose stored length is not their recording length (CODE-15%'s padded 4096 samples)
    are never expanded: `n_samples` there is a container size, not a duration.
    """
    if index.empty:
        return index
    rows = []
    for row in index.to_dict("records"):
        count = 0 if row["source"] == "code15" else window_count(row["n_samples"], row["fs"],
                                                                 duration_s)
        if count < 2:
            rows.append(row)
            continue
        for k in range(count):
            rows.append({**row, "id": f"{row['id']}/w{k:03d}", "path": f"{row['path']}{WINDOW_MARK}{k:03d}"})
    return pd.DataFrame(rows, columns=index.columns)


def split_window(path: str) -> tuple[str, int | None]:
    """(record path, window number) of an index path; None when it names a whole record."""
    base, mark, number = path.rpartition(WINDOW_MARK)
    if not mark or not number.isdigit():
        return path, None
    return base, int(number)
