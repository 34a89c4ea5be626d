"""Whole-column versions of the per-cell parsers of `_csv`, for metadata of 800k rows.

A full MIMIC-IV-ECG release has 800,035 records: calling `to_int_string` or `clean_measurement`
once per cell in Python cost over a minute. These functions give exactly the per-cell results
(they call the same per-cell functions where a value is not in the plain form they recognise, or
once per distinct value), so the index does not change; only the time does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecg_instruct.sources._csv import ROW_ERROR, to_int_string

#: Digits whose `to_int_string` is themselves: no sign, no leading zero, no `.0`, and at most 15
#: digits (a float holds those exactly, so `str(int(float(v))) == v`).
PLAIN_INTEGER = r"^(0|[1-9][0-9]{0,14})$"


def as_strings(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous string array (chunks of a CSV read combined)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    return column.cast(pa.string()) if column.type != pa.string() else column


def int_strings(column: pa.Array) -> np.ndarray:
    """`to_int_string` of every cell (an object array of str or None; a null cell is None).

    Plain integers (nearly every id of a release) are their own result; only the others
    (`15709.0`, `4000x`, ...) go through `to_int_string`, one by one.
    """
    column = as_strings(column)
    plain = pc.fill_null(pc.match_substring_regex(column, PLAIN_INTEGER), False)
    out = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    others = np.flatnonzero(~plain.to_numpy(zero_copy_only=False))
    out[others] = [None if out[i] is None else to_int_string(out[i]) for i in others]
    return out


def map_distinct(column: pa.Array, function: Callable[[str | None], object]) -> np.ndarray:
    """`function` of every cell, computed once per distinct value (an object array).

    Metadata columns repeat a few thousand values over the whole release (measurements in ms,
    machine statements): the per-cell function then runs a few thousand times, not 800k.
    """
    codes, distinct = _distinct(column)
    results = np.empty(len(distinct) + 1, dtype=object)
    results[:-1] = [function(value) for value in distinct]
    results[-1] = function(None)  # a null cell (code -1)
    return results[codes]


def map_distinct_strings(column: pa.Array, function: Callable[[str | None], str | None]
                         ) -> pa.Array:
    """:func:`map_distinct` for a function to strings (or None, a null), kept in Arrow."""
    encoded = as_strings(column).dictionary_encode()
    mapped = pa.array([function(value) for value in encoded.dictionary.to_pylist()], pa.string())
    taken = pc.take(mapped, encoded.indices)
    nulls = function(None)
    return taken if nulls is None else pc.fill_null(taken, nulls)


def _distinct(column: pa.Array) -> tuple[np.ndarray, list[str]]:
    """(code per cell, -1 for a null; the distinct values) of a string column."""
    encoded = as_strings(column).dictionary_encode()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return codes, encoded.dictionary.to_pylist()


def first_occurrences(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mask of the rows whose value is valid and was not seen on an earlier valid row."""
    positions = np.flatnonzero(valid)
    repeated = pd.Series(values[positions]).duplicated(keep="first").to_numpy()
    mask = np.zeros(len(values), dtype=bool)
    mask[positions[~repeated]] = True
    return mask


def row_errors(table: pa.Table, prefix: str) -> np.ndarray:
    """Per row, `prefix` + why it does not fit the header, or "" (object array of str).

    Only a file read through the ragged-row path has the `ROW_ERROR` column.
    """
    out = np.full(table.num_rows, "", dtype=object)
    if ROW_ERROR in table.column_names:
        errors = as_strings(table.column(ROW_ERROR)).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(np.asarray([bool(error) for error in errors], dtype=bool)):
            out[i] = prefix + errors[i]
    return out


def take_or(values: np.ndarray, positions: np.ndarray, default: object) -> np.ndarray:
    """`values[positions]`, with `default` where the position is -1 (no match)."""
    out = np.full(len(positions), default, dtype=object)
    found = positions >= 0
    out[found] = values[positions[found]]
    return out


class RejectList:
    """Index rejects of one source found column by column, reported in file order.

    Checks run over whole columns one after the other, so rejects are found out of row
    order; each carries its row position and :meth:`frame` puts them back in file order (one
    reject per row at most), as the row-by-row reader reported them.
    """

    def __init__(self, source: str):
        self.source = source
        self.rows: list[tuple[int, dict[str, str]]] = []

    def add(self, position: int, record_id: str, reason: str, detail: str) -> None:
        self.rows.append((int(position), {"id": record_id, "source": self.source,
                                          "stage": "index", "reason": reason,
                                          "detail": detail}))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([row for _, row in sorted(self.rows, key=lambda item: item[0])])
