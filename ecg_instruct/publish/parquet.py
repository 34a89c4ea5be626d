"""Writing the published Parquet files.

Written with pyarrow directly (`Dataset.to_parquet` cannot choose compression or encodings): zstd,
dictionary-encoded quantised float32 signals, small row groups for random access. Files are written
under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.build.workio import temporary
from ecg_instruct.publish.features import published_features
from ecg_instruct.signals.storage import parquet_write_options


def plain_schema(n_samples: int, signal_dtype: str, signal_type: pa.DataType) -> pa.Schema:
    """The Arrow schema of published files: HF feature types, with the signal as plain lists.

    The dataset card's `dataset_info` declares `signal` as Array2D, which `datasets` applies when
    loading; the files themselves stay readable by any Parquet reader.
    """
    schema = published_features(n_samples, signal_dtype).arrow_schema.remove_metadata()
    index = schema.get_field_index("signal")
    return schema.set(index, pa.field("signal", signal_type))


def write_parquet(table: pa.Table, path: Path, signal_dtype: str, row_group_rows: int) -> None:
    options = dict(parquet_write_options(signal_dtype))
    options["row_group_size"] = row_group_rows
    with temporary(path) as tmp:
        pq.write_table(table, tmp, **options)
        os.replace(tmp, path)


def write_split_files(
    table: pa.Table, folder: Path, split: str, rows_per_file: int, signal_dtype: str,
    row_group_rows: int,
) -> list[Path]:
    """Write one split as `<split>-NNNNN-of-NNNNN.parquet` files of at most `rows_per_file`."""
    folder.mkdir(parents=True, exist_ok=True)
    n_files = max(1, math.ceil(table.num_rows / rows_per_file))
    paths = []
    for number in range(n_files):
        path = folder / f"{split}-{number:05d}-of-{n_files:05d}.parquet"
        part = table.slice(number * rows_per_file, rows_per_file)
        write_parquet(part, path, signal_dtype, row_group_rows)
        paths.append(path)
    return paths
