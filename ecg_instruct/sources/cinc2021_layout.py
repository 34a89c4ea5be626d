"""Writing records in the PhysioNet/CinC Challenge 2021 layout (for `sample` and tests).

The Challenge 2021 release (v1.0.3) stores each record as a MATLAB v4 ``.mat`` file holding one
int16 matrix ``val`` (leads x samples) and a WFDB header that reads it as format 16 after the
MAT header: ``HR06000.mat 16+24 1000/mv 16 0 10 23323 0 I``. The 24 bytes are MATLAB v4's
fixed 20-byte header (type, rows, columns, imaginary flag, name length: five int32) plus the
variable name ``val\\0``. MATLAB stores matrices column by column, so the samples of all leads
at one instant are adjacent: exactly WFDB's frame-interleaved format 16. Checksums are written
signed (``-12345``), as the release does; comments carry ``#Age``, ``#Sex``, ``#Dx`` (SNOMED-CT
codes, comma-separated), ``#Rx``, ``#Hx``, ``#Sx``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: MATLAB v4 type code of a little-endian (M=0) int16 (P=3) full numeric matrix (T=0).
_MAT4_INT16 = 30
_MAT_NAME = b"val\x00"
MAT_HEADER_BYTES = 20 + len(_MAT_NAME)  # 24: the `+24` of the header's format field
CHALLENGE_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def write_challenge_record(
    folder: Path, name: str, counts: np.ndarray, fs: int, *, gain: float = 1000.0,
    age: int | None = None, sex: str | None = None, dx: Sequence[str] = (),
    leads: Sequence[str] = CHALLENGE_LEADS, timestamp: str = "04-Jun-2020 15:11:55",
) -> Path:
    """Write ``<folder>/<name>.mat`` + ``.hea`` from int16 ADC ``counts`` (n_leads, n_samples).

    Returns the record path without extension (what ``wfdb.rdsamp`` takes).
    """
    counts = np.asarray(counts)
    if counts.dtype != np.int16:
        raise ValueError(f"counts must be int16 ADC values, got {counts.dtype}")
    n_sig, n = counts.shape
    folder.mkdir(parents=True, exist_ok=True)
    header = struct.pack("<5i", _MAT4_INT16, n_sig, n, 0, len(_MAT_NAME)) + _MAT_NAME
    # column-major (Fortran) order of a leads x samples matrix = frame-interleaved samples
    (folder / f"{name}.mat").write_bytes(header + counts.T.astype("<i2").tobytes())
    lines = [f"{name} {n_sig} {fs} {n} {timestamp}"]
    gain_text = f"{gain:g}"
    for lead, row in zip(leads, counts, strict=True):
        checksum = int(row.astype(np.int64).sum()) % 65536
        checksum = checksum - 65536 if checksum >= 32768 else checksum  # signed, as released
        lines.append(f"{name}.mat 16+{MAT_HEADER_BYTES} {gain_text}/mv 16 0 {int(row[0])} "
                     f"{checksum} 0 {lead}")
    lines.append(f"#Age: {age if age is not None else 'NaN'}")
    lines.append(f"#Sex: {sex or 'Unknown'}")
    lines.append(f"#Dx: {','.join(dx)}")
    lines += ["#Rx: Unknown", "#Hx: Unknown", "#Sx: Unknown"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n", encoding="ascii")
    return folder / name
