"""The canonical index columns and the published Hugging Face features, defined once.

Every source maps onto the same columns so that the `default` config can mix sources and a user
never writes per-source code to read the dataset.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MEASUREMENT_FIELDS: tuple[str, ...] = (
    "rr_interval",
    "p_onset",
    "p_end",
    "qrs_onset",
    "qrs_end",
    "t_end",
    "p_axis",
    "qrs_axis",
    "t_axis",
    "heart_rate",
)

#: Columns of `work/index.parquet`, in order. `path` is relative to the source root.
INDEX_COLUMNS: tuple[str, ...] = (
    "id",
    "source",
    "native_id",
    "patient_id",
    "path",
    "fs",
    "n_samples",
    "report_raw",
    "labels",
    "scp_codes",
    "measurements",
    "age",
    "sex",
    "split",
)

#: Configs under `data/` whose rows reference records by id instead of holding their signals
#: (`data/<name>/`): every reader of the per-source folders skips them.
DERIVED_CONFIGS = frozenset({"instructions", "ecgqa"})

REJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in REJECT_SCHEMA.names})


def rejects_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Rejects as a DataFrame with exactly the reject columns (missing values become "")."""
    if not rows:
        return empty_rejects()
    frame = pd.DataFrame(rows)
    for name in REJECT_SCHEMA.names:
        if name not in frame:
            frame[name] = ""
    return frame[list(REJECT_SCHEMA.names)].fillna("").astype(str)


def read_rejects(path: Path) -> pa.Table:
    """A stage's rejects file, in the one rejects schema."""
    return pq.read_table(path).cast(REJECT_SCHEMA)


def measurements_struct_type() -> pa.DataType:
    return pa.struct([(name, pa.float32()) for name in MEASUREMENT_FIELDS])
