"""The index as the work folder stores it, and the bytes whose hash keys the work folder.

`measurements` (a dict per record, or None) is stored as sorted-key JSON text, "" when missing.
These bytes must stay the same for the same metadata (else every build would start afresh), so
the column-wise JSON below writes exactly what ``json.dumps(value, sort_keys=True)`` writes; it
only avoids calling it 800k times (~5 s on a full MIMIC-IV-ECG release).
"""

from __future__ import annotations

import json
from itertools import chain
from operator import countOf

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecg_instruct.workio import parquet_bytes

_ENCODER = json.JSONEncoder(sort_keys=True)  # what json.dumps(value, sort_keys=True) uses


def stored_index_bytes(index: pd.DataFrame, rejects: pd.DataFrame) -> tuple[bytes, bytes]:
    """The index and its rejects as Parquet, as the work folder holds them."""
    stored_index = index.copy()
    stored_index["measurements"] = measurements_json(index["measurements"])
    return parquet_bytes(stored_index), parquet_bytes(rejects.astype(str))


def measurements_json(column: pd.Series) -> np.ndarray:
    """``json.dumps(v, sort_keys=True)`` of each dict of the column, "" for anything else.

    Column-wise when the dicts share their (string) keys and hold only floats and None (every
    source's measurements): each distinct value is encoded once and the texts are joined by
    Arrow. Any other column is encoded value by value.
    """
    values = column.to_numpy(dtype=object)
    is_dict = np.fromiter((isinstance(value, dict) for value in values), dtype=bool,
                          count=len(values))
    out = np.full(len(values), "", dtype=object)
    dicts = values[is_dict]
    texts = _uniform_dicts_json(dicts) if len(dicts) else None
    out[is_dict] = texts if texts is not None else [_ENCODER.encode(d) for d in dicts]
    return out


def _uniform_dicts_json(dicts: np.ndarray) -> np.ndarray | None:
    """The JSON texts of dicts with one key order, string keys and float/None values only;
    None if they are not (or hold a NaN, which would be confused with None below)."""
    orders = set(map(tuple, dicts))
    if len(orders) != 1:
        return None
    keys = orders.pop()
    if not keys or not all(isinstance(key, str) for key in keys):
        return None
    if not set(map(type, chain.from_iterable(map(dict.values, dicts)))) <= {float, type(None)}:
        return None  # an int or a bool is written differently from the float of its value
    cells = np.fromiter(chain.from_iterable(map(dict.values, dicts)), dtype=object,
                        count=len(dicts) * len(keys)).reshape(len(dicts), len(keys))
    numbers = cells.astype(np.float64)  # None -> NaN
    missing = np.isnan(numbers)
    if int(missing.sum()) != countOf(cells.ravel(), None):
        return None  # a real NaN somewhere
    parts: list[pa.Array | str] = ["{"]
    for number, key in enumerate(sorted(keys)):
        column = keys.index(key)
        prefix = f"{', ' if number else ''}{_ENCODER.encode(key)}: "
        parts.append(_floats_json(numbers[:, column], missing[:, column], prefix))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "").to_numpy(zero_copy_only=False)


def _floats_json(numbers: np.ndarray, missing: np.ndarray, prefix: str) -> pa.Array:
    """`prefix` + the JSON of each number ("null" where missing), each distinct value encoded
    once. Distinct by bit pattern, not by ==: `-0.0` and `0.0` are equal but written apart."""
    codes, distinct = pd.factorize(np.ascontiguousarray(numbers).view(np.int64))
    texts = [prefix + _ENCODER.encode(float(value)) for value in distinct.view(np.float64)]
    codes[missing] = len(texts)
    texts.append(prefix + "null")
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                          pa.array(texts, pa.string())).cast(pa.string())
