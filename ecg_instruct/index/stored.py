"""The index as the work folder stores it, and the bytes whose hash keys the work folder.

`measurements` (a dict per record, or None) is stored as sorted-key JSON text, "" when missing.
These bytes must stay the same for the same metadata (else every build would start afresh), so
the column-wise JSON below writes exactly what ``json.dumps(value, sort_keys=True)`` writes; it
only avoids calling it 800k times (~5 s on a full MIMIC-IV-ECG release).
"""

from __future__ import annotations

import json
from itertools import chain
from operator import countOf, itemgetter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecg_instruct.build.workio import parquet_bytes

_ENCODER = json.JSONEncoder(sort_keys=True)  # what json.dumps(value, sort_keys=True) uses


def stored_index_bytes(index: pd.DataFrame, rejects: pd.DataFrame) -> tuple[bytes, bytes]:
    """The index and its rejects as Parquet, as the work folder holds them."""
    stored_index = index.copy(deep=False)  # shares the other columns; `index` is not changed
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
    """The JSON texts of dicts with one set of string keys and float/None values only; None
    if they are not (or hold a NaN, which would be confused with None below)."""
    if set(map(type, dicts)) != {dict}:
        return None  # a subclass (a defaultdict) could answer a key it does not hold
    keys = sorted(dicts[0]) if all(isinstance(key, str) for key in dicts[0]) else []
    if len(keys) < 2 or set(map(len, dicts)) != {len(keys)}:
        return None  # (with one key, itemgetter below would not give tuples)
    try:  # the values of each dict in sorted-key order; a KeyError: another key set
        cells = np.fromiter(chain.from_iterable(map(itemgetter(*keys), dicts)), dtype=object,
                            count=len(dicts) * len(keys))
    except KeyError:
        return None
    listed = cells.tolist()
    if not set(map(type, listed)) <= {float, type(None)}:
        return None  # an int or a bool is written differently from the float of its value
    numbers = cells.astype(np.float64).reshape(len(dicts), len(keys))  # None -> NaN
    missing = np.isnan(numbers)
    if int(missing.sum()) != countOf(listed, None):
        return None  # a real NaN somewhere
    parts: list[pa.Array | str] = ["{"]
    for column, key in enumerate(keys):
        prefix = f"{', ' if column else ''}{_ENCODER.encode(key)}: "
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
