"""The published signal column loads as (12, n) float32 mV through `datasets` with no user code."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecg_instruct.errors import RecordReject
from ecg_instruct.signals.resample import quantise, resample
from ecg_instruct.signals.storage import (
    SIGNAL_LEAF_PATH,
    arrow_to_signals,
    counts_to_mv,
    mv_to_counts,
    output_gain,
    parquet_write_options,
    signal_arrow_type,
    signals_to_arrow,
)

N = 1000  # 100 Hz x 10 s keeps the files small


@pytest.fixture(scope="module")
def signals(ecg500) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = resample(ecg500, 500, 100)
    return [quantise(base * rng.uniform(0.5, 1.5) + rng.normal(0, 0.01, base.shape), 0.005)
            .astype(np.float32) for _ in range(6)]


def _write_dataset(root, table: pa.Table, dtype: str) -> None:
    (root / "data" / "ptbxl").mkdir(parents=True)
    opts = parquet_write_options(dtype, other_dictionary_columns=["id"])
    pq.write_table(table.slice(0, 4), root / "data" / "ptbxl" / "train-00000-of-00001.parquet",
                   **opts)
    pq.write_table(table.slice(4), root / "data" / "ptbxl" / "test-00000-of-00001.parquet",
                   **opts)
    features = [{"name": "id", "dtype": "string"},
                {"name": "signal", "dtype": {"array2_d": {"shape": [12, N], "dtype": dtype}}}]
    if dtype == "int16":
        features += [{"name": "adc_gain", "dtype": "float32"},
                     {"name": "baseline", "dtype": "int32"}]
    card = {
        "configs": [{"config_name": "ptbxl", "default": True, "data_files": [
            {"split": "train", "path": "data/ptbxl/train-*.parquet"},
            {"split": "test", "path": "data/ptbxl/test-*.parquet"}]}],
        "dataset_info": {"config_name": "ptbxl", "features": features},
    }
    # JSON is valid YAML: no yaml dependency needed to write the front matter
    (root / "README.md").write_text(f"---\n{json.dumps(card, indent=1)}\n---\n# test\n")


def test_float32_column_loads_as_array2d_mv(tmp_path, signals):
    import datasets

    table = pa.table({"id": [f"ptbxl/{i:05d}" for i in range(6)],
                      "signal": signals_to_arrow(signals, "float32")})
    assert table.schema.field("signal").type == signal_arrow_type(12, N, "float32")
    _write_dataset(tmp_path, table, "float32")
    ds = datasets.load_dataset(str(tmp_path), split="train")
    assert isinstance(ds.features["signal"], datasets.Array2D)
    row = ds.with_format("numpy")[0]
    assert row["signal"].shape == (12, N) and row["signal"].dtype == np.float32
    assert np.array_equal(row["signal"], signals[0])
    torch = pytest.importorskip("torch")
    trow = datasets.load_dataset(str(tmp_path), split="test").with_format("torch")[1]
    assert trow["signal"].dtype == torch.float32 and tuple(trow["signal"].shape) == (12, N)
    assert np.array_equal(trow["signal"].numpy(), signals[5])


def test_int16_counts_round_trip_with_the_documented_transform(tmp_path, signals):
    import datasets

    gain = output_gain(np.full(12, 200.0))
    counts = [mv_to_counts(s, gain) for s in signals]
    table = pa.table({"id": [f"ptbxl/{i:05d}" for i in range(6)],
                      "signal": signals_to_arrow(counts, "int16"),
                      "adc_gain": pa.array([gain] * 6, pa.float32()),
                      "baseline": pa.array([0] * 6, pa.int32())})
    _write_dataset(tmp_path, table, "int16")
    meta = pq.ParquetFile(tmp_path / "data/ptbxl/train-00000-of-00001.parquet").metadata
    leaf = [meta.row_group(0).column(i) for i in range(meta.num_columns)
            if meta.row_group(0).column(i).path_in_schema == SIGNAL_LEAF_PATH][0]
    assert "DELTA_BINARY_PACKED" in leaf.encodings and leaf.compression == "ZSTD"
    row = datasets.load_dataset(str(tmp_path), split="train").with_format("numpy")[2]
    mv = row["signal"] / row["adc_gain"]  # the documented one-line transform (baseline 0)
    assert row["baseline"] == 0
    assert mv.shape == (12, N)
    assert np.array_equal(mv.astype(np.float32), signals[2])  # lossless
    assert np.array_equal(counts_to_mv(row["signal"], row["adc_gain"], row["baseline"]),
                          signals[2])


def test_float32_uses_zstd_dictionary_and_small_row_groups(tmp_path, signals):
    table = pa.table({"signal": signals_to_arrow(signals * 50, "float32")})  # 300 rows
    pq.write_table(table, tmp_path / "s.parquet", **parquet_write_options("float32"))
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert meta.num_row_groups == 3  # 128 + 128 + 44
    col = meta.row_group(0).column(0)
    assert col.compression == "ZSTD" and "RLE_DICTIONARY" in col.encodings
    back = arrow_to_signals(pq.read_table(tmp_path / "s.parquet")["signal"])
    assert back.shape == (300, 12, N) and np.array_equal(back[7], signals[1])


def test_quantised_float32_is_much_smaller_than_unquantised(tmp_path, signals):
    raw = [s + np.float32(1e-4) * np.random.default_rng(1).standard_normal(s.shape, np.float32)
           for s in signals]
    sizes = {}
    for name, data in (("quantised", signals), ("raw", raw)):
        pq.write_table(pa.table({"signal": signals_to_arrow(data * 20)}), tmp_path / name,
                       **parquet_write_options("float32"))
        sizes[name] = (tmp_path / name).stat().st_size
    assert sizes["raw"] > 1.5 * sizes["quantised"]


def test_signals_to_arrow_validates_input(signals):
    with pytest.raises(ValueError, match="one shape"):
        signals_to_arrow([signals[0], signals[0][:, :10]])
    with pytest.raises(ValueError, match="integer ADC counts"):
        signals_to_arrow(signals[:1], "int16")
    with pytest.raises(ValueError, match="dtype"):
        signals_to_arrow(signals[:1], "float16")
    assert len(signals_to_arrow([])) == 0


def test_mv_to_counts_refuses_overflow():
    with pytest.raises(RecordReject, match="implausible_amplitude"):
        mv_to_counts(np.array([[40.0]]), 1000.0)
    assert mv_to_counts(np.array([[0.0051, -0.0049]]), 200.0).tolist() == [[1, -1]]
