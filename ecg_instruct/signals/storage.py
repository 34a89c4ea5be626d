"""How curated signals become the published Parquet ``signal`` column.

Default: float32 millivolts as ``list<list<float32>>`` (12 x n), which ``datasets`` casts to
``Array2D((12, n), "float32")`` from the card's ``dataset_info`` (or the schema metadata), so
``load_dataset(...).with_format("numpy")[i]["signal"]`` is a (12, n) float32 mV array with no
user code. Because values are rounded to the source ADC step, zstd + dictionary encoding stores
them in ~86 MB per 1,000 ECGs at 500 Hz (BYTE_STREAM_SPLIT ~170 MB, unquantised ~2.8x larger).

Option ``signals.dtype: int16``: ADC counts plus an ``adc_gain`` column (counts per mV,
float32), zstd + DELTA_BINARY_PACKED, ~57 MB per 1,000 ECGs and lossless (the float32 values
are exact multiples of ``1 / adc_gain``). The counts are centred (baseline 0: the source's ADC
baseline is removed when reading), so back to millivolts is one line (see :func:`counts_to_mv`)::

    mv = row["signal"] / row["adc_gain"]          # numpy format: int64 counts -> float64 mV

A source whose counts keep an offset would add a ``baseline`` column and use
``(signal - baseline) / adc_gain``; ``mv_to_counts``/``counts_to_mv`` take it as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ecg_instruct.errors import RecordReject

SIGNAL_DTYPES = ("float32", "int16")
#: Rows per row group: a random single-row read decodes one row group (~25 ms at 64 rows,
#: ~110 ms at 256 on this kind of machine), while fewer rows per group cost compression.
ROW_GROUP_SIZE = 128
SIGNAL_COLUMN = "signal"
#: Parquet path of the leaf values of the nested signal column (encodings are set per leaf).
SIGNAL_LEAF_PATH = "signal.list.element.list.element"


def _check_dtype(dtype: str) -> None:
    if dtype not in SIGNAL_DTYPES:
        raise ValueError(f"signal dtype must be one of {SIGNAL_DTYPES}, got {dtype!r}")


def signal_arrow_type(n_leads: int, n_samples: int, dtype: str) -> pa.DataType:
    """Arrow storage type of the ``signal`` column: ``list<list<dtype>>``.

    Variable-size lists (not fixed-size) because that is the storage type of ``datasets``'
    ``Array2D`` extension, so the cast on load is free; ``n_leads``/``n_samples`` are checked
    by :func:`signals_to_arrow` and declared in the card's ``Array2D`` shape.
    """
    _check_dtype(dtype)
    if n_leads <= 0 or n_samples <= 0:
        raise ValueError(f"shape must be positive, got ({n_leads}, {n_samples})")
    return pa.list_(pa.list_(pa.float32() if dtype == "float32" else pa.int16()))


def signal_feature(n_leads: int, n_samples: int, dtype: str = "float32") -> Any:
    """The ``datasets`` feature for the column (``Array2D``; imported lazily, ~0.8 s)."""
    import datasets

    _check_dtype(dtype)
    return datasets.Array2D(shape=(n_leads, n_samples), dtype=dtype)


def signals_to_arrow(signals: Sequence[np.ndarray], dtype: str = "float32") -> pa.Array:
    """One Arrow array (one row per record) from ``(n_leads, n_samples)`` arrays of equal shape.

    ``float32``: values in mV, cast from any float input. ``int16``: integer ADC counts (see
    :func:`mv_to_counts`); floats are refused so a lossy cast never happens silently.
    Built with one contiguous buffer and computed offsets (zero-copy into Arrow).
    """
    _check_dtype(dtype)
    if len(signals) == 0:
        return pa.array([], type=signal_arrow_type(1, 1, dtype))
    shape = np.shape(signals[0])
    if len(shape) != 2:
        raise ValueError(f"each signal must be (n_leads, n_samples), got shape {shape}")
    for s in signals:
        if np.shape(s) != shape:
            raise ValueError(f"all signals must share one shape, got {shape} and {np.shape(s)}")
    if dtype == "int16":
        for s in signals:
            if not np.issubdtype(np.asarray(s).dtype, np.integer):
                raise ValueError("int16 storage takes integer ADC counts; use mv_to_counts()")
    n_rows, (n_leads, n_samples) = len(signals), shape
    total = n_rows * n_leads * n_samples
    if total >= 2**31:
        raise ValueError(f"{n_rows} rows are too many for one Arrow array; write in batches")
    stacked = np.empty((n_rows, n_leads, n_samples), dtype=np.float32 if dtype == "float32"
                       else np.int16)
    for i, s in enumerate(signals):
        if dtype == "int16":
            s = np.asarray(s)
            if s.size and (s.min() < -32768 or s.max() > 32767):
                raise ValueError(f"row {i}: counts outside the int16 range")
        stacked[i] = s
    values = pa.array(stacked.reshape(-1))
    inner_offsets = pa.array(np.arange(0, total + 1, n_samples, dtype=np.int32))
    outer_offsets = pa.array(np.arange(0, n_rows * n_leads + 1, n_leads, dtype=np.int32))
    inner = pa.ListArray.from_arrays(inner_offsets, values)
    return pa.ListArray.from_arrays(outer_offsets, inner)


def arrow_to_signals(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Inverse of :func:`signals_to_arrow` for equal-shape rows: ``(n_rows, n_leads, n)``."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n_rows = len(array)
    if n_rows == 0:
        return np.zeros((0, 0, 0), dtype=np.float32)
    inner = array.flatten()
    values = inner.flatten().to_numpy(zero_copy_only=False)
    n_leads = len(inner) // n_rows
    return values.reshape(n_rows, n_leads, -1)


def output_gain(adc_gain: np.ndarray) -> float:
    """Counts per mV of the published signal: the finest of the source's per-lead gains.

    Quantising every lead to the finest step keeps every source value exactly representable.
    """
    gain = float(np.max(adc_gain))
    if not np.isfinite(gain) or gain <= 0:
        raise ValueError(f"invalid ADC gain {adc_gain}")
    return gain


def mv_to_counts(signal_mv: np.ndarray, adc_gain: float, baseline: int = 0) -> np.ndarray:
    """int16 counts ``round(mV * gain) + baseline``; ``RecordReject("implausible_amplitude")`` if
    the signal does not fit int16 at this gain (it cannot, for a plausible ECG: +/-32 mV at
    gain 1000)."""
    counts = np.rint(np.asarray(signal_mv, dtype=np.float64) * adc_gain) + baseline
    if counts.size and (counts.min() < -32767 or counts.max() > 32767):
        raise RecordReject("implausible_amplitude",
                           f"signal exceeds the int16 range at gain {adc_gain:g}/mV")
    return counts.astype(np.int16)


def counts_to_mv(counts: np.ndarray, adc_gain: float, baseline: int = 0) -> np.ndarray:
    """The documented transform back: ``(counts - baseline) / adc_gain`` as float32 mV."""
    return ((np.asarray(counts, dtype=np.float64) - baseline) / adc_gain).astype(np.float32)


def parquet_write_options(dtype: str, other_dictionary_columns: Sequence[str] = ()) -> dict:
    """Keyword arguments for ``pyarrow.parquet.write_table`` (pop ``row_group_size`` for
    ``ParquetWriter(...)``, and pass it to ``writer.write_table`` instead).

    float32: zstd + dictionary encoding of the quantised values (a few thousand distinct values
    per row group). int16: zstd + DELTA_BINARY_PACKED (consecutive samples differ by a few
    counts), no dictionary on the signal. ``other_dictionary_columns`` keeps dictionary encoding
    on short string columns (``id``, ``source``...) in int16 mode, where it must be listed per
    column because Parquet forbids dictionary + explicit encoding on one column.
    """
    _check_dtype(dtype)
    opts: dict[str, Any] = {
        "compression": "zstd",
        "compression_level": 3,
        "row_group_size": ROW_GROUP_SIZE,
        "data_page_size": 1 << 20,
    }
    if dtype == "float32":
        opts["use_dictionary"] = True
        opts["dictionary_pagesize_limit"] = 1 << 20
    else:
        opts["use_dictionary"] = [c for c in other_dictionary_columns if c != SIGNAL_COLUMN]
        opts["column_encoding"] = {SIGNAL_LEAF_PATH: "DELTA_BINARY_PACKED"}
    return opts
