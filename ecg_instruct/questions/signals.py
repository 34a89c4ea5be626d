"""Signals for rows that reference ECGs by id (`ecgqa`): `with_signals(ds, "./out/meit")`.

A question row stores its ECGs' record ids (`ecg_ids`), not their samples (ECG-QA asks ~20
questions per ECG). `SignalStore` finds each id's row in the source configs
(`data/<source>/*.parquet`) and reads the row group that holds it, so a row's `signals` are the
very values of those ECGs' `signal` column (shape (k, 12, n), the stored dtype). Lazy: nothing
is copied into a cache; decoded row groups are kept up to a memory budget (1 GiB: every row
group of a 100 Hz PTB-XL build, ~35 of a 500 Hz one), which makes a training epoch's random
access mostly cache hits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ecg_instruct.errors import UserError
from ecg_instruct.schema import DERIVED_CONFIGS

#: Bytes of decoded row groups kept (one is 128 records: ~31 MB at 12 x 5000 float32).
CACHE_BYTES = 1 << 30


class SignalStore:
    """Record id -> its published signal, read from a built dataset's source configs."""

    def __init__(self, data: str | Path, cache_bytes: int = CACHE_BYTES):
        self.data = Path(data)
        files = sorted(p for p in (self.data / "data").glob("*/*.parquet")
                       if p.parent.name not in DERIVED_CONFIGS)
        if not files:
            raise UserError("no published record files (data/<source>/*.parquet)", path=self.data,
                            fix="pass the --out folder of `ecg-instruct build`")
        self._files = files
        self._where: dict[str, tuple[int, int, int]] = {}  # id -> (file, row group, row in it)
        self._fs: dict[str, int] = {}
        for number, path in enumerate(files):
            parquet = pq.ParquetFile(path)
            table = parquet.read(columns=["id", "fs"])
            ids = table.column("id").to_pylist()
            self._fs.update(zip(ids, table.column("fs").to_pylist(), strict=True))
            row = 0
            for group in range(parquet.metadata.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                for offset in range(size):
                    self._where[ids[row + offset]] = (number, group, offset)
                row += size
        self._groups: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._budget = cache_bytes
        self._held = 0

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._where

    def fs(self, record_id: str) -> int:
        """The record's published sampling rate (Hz)."""
        return int(self._fs[record_id])

    def _group(self, number: int, group: int) -> np.ndarray:
        key = (number, group)
        if key in self._groups:
            self._groups.move_to_end(key)
            return self._groups[key]
        column = pq.ParquetFile(self._files[number]).read_row_group(
            group, columns=["signal"]).column("signal").combine_chunks()
        leads = column.flatten()
        values = leads.flatten().to_numpy(zero_copy_only=False)
        n_leads = len(leads) // len(column)
        array = values.reshape(len(column), n_leads, -1)
        self._groups[key] = array
        self._held += array.nbytes
        while self._held > self._budget and len(self._groups) > 1:
            self._held -= self._groups.popitem(last=False)[1].nbytes
        return array

    def signal(self, record_id: str) -> np.ndarray:
        """One record's stored signal (12, n)."""
        try:
            number, group, row = self._where[record_id]
        except KeyError:
            raise UserError(f"record {record_id!r} is not in the source configs", path=self.data,
                            fix="use the dataset the rows were published with") from None
        return self._group(number, group)[row]

    def signals(self, record_ids: Sequence[str]) -> np.ndarray:
        """The records' signals stacked in the given order: (k, 12, n)."""
        return np.stack([self.signal(i) for i in record_ids])


def with_signals(ds: Any, data: str | Path, column: str = "ecg_ids") -> Any:
    """`ds` (a `datasets.Dataset` or `DatasetDict` of rows with `ecg_ids`) whose rows also carry
    `signals`, a (k, 12, n) numpy array equal to those ECGs' `signal` rows in the source configs.

    Applied lazily as the dataset's transform (`Dataset.with_transform`): rows are read on
    access, nothing is materialised; columns other than `signals` come back as Python values.
    """
    store = SignalStore(data)

    def add(batch: dict[str, list]) -> dict[str, list]:
        batch["signals"] = [store.signals(ids) for ids in batch[column]]
        return batch

    if hasattr(ds, "keys") and hasattr(ds, "values") and not hasattr(ds, "with_transform"):
        return type(ds)({name: split.with_transform(add) for name, split in ds.items()})
    return ds.with_transform(add)
