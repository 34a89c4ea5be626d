"""The batched signal stage: same verdicts as one record at a time, bit-exact work shards."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from ecg_instruct.errors import RecordReject
from ecg_instruct.recipe import SignalsConfig
from ecg_instruct.signals.quality import QualityConfig, check_and_repair, check_batch
from ecg_instruct.signals.resample import decimate, fit_length, quantise, resample
from ecg_instruct.signals.stage import curate_batch, process_shard, read_work_shard
from ecg_instruct.signals.storage import arrow_to_signals


def _batch(ecg500: np.ndarray) -> np.ndarray:
    """Eight records: clean ones and one of each cheap-to-inject defect."""
    rng = np.random.default_rng(0)
    clean = quantise(ecg500 + rng.normal(0, 0.01, ecg500.shape), 0.005)
    batch = np.stack([np.roll(clean, 37 * i, axis=1) for i in range(8)])
    batch[1, 4] = 0.0  # flat lead
    batch[3, 2] *= 40  # implausible amplitude
    batch[5, 7] += rng.normal(0, 2.0, batch.shape[2])  # high-frequency noise
    batch[6, 9, 100:600] = batch[6, 9].max()  # clipping
    return batch


def test_batch_verdicts_equal_one_record_at_a_time(ecg500):
    batch = _batch(ecg500)
    cfg = QualityConfig(hf_max_power_ratio=0.5)  # every check on
    verdicts = check_batch(batch, 500.0, cfg)
    for x, verdict in zip(batch, verdicts, strict=True):
        try:
            check_and_repair(x, 500.0, cfg)
            expected = None
        except RecordReject as exc:
            expected = (exc.reason, exc.detail)
        assert (None if verdict is None else (verdict.reason, verdict.detail)) == expected
    assert [v.reason for v in verdicts if v is not None] == [
        "flat_lead", "implausible_amplitude", "high_frequency_noise", "clipping"]


@pytest.mark.parametrize("fs", [100, 500])
def test_curate_batch_equals_resample_then_quantise(ecg500, fs):
    """Curated counts are the ADC counts resampled and rounded to whole counts; the float32 mV
    are exactly those counts times the ADC step. The stage's float32 filter arithmetic may move
    a rare sample (~1e-5) to the neighbouring count of the exact float64 result, never further.
    Input off the ADC grid (a NaN repair's interpolation) is first rounded to whole counts."""
    batch = _batch(ecg500)
    gains = np.array([1000.0, 200.0] * 4)
    cfg = SignalsConfig(fs=fs, duration_s=10.0)
    out = curate_batch(batch, gains, 500.0, cfg, QualityConfig())
    kept = 0
    for x, gain, res in zip(batch, gains, out, strict=True):
        if isinstance(res, RecordReject):
            continue
        kept += 1
        on_grid = np.rint(x * gain) / gain  # input off the ADC grid (record 5) is rounded first
        exact = quantise(fit_length(resample(on_grid, 500, fs), cfg.n_samples, "strict"), 1 / gain)
        exact_counts = np.rint(exact * gain)
        assert res.counts.dtype == np.int16
        assert np.array_equal(res.signal, (res.counts * (1.0 / gain)).astype(np.float32))
        diff = np.abs(res.counts - exact_counts)
        assert diff.max() <= 1 and np.mean(diff) < 1e-3
        if fs == 500:  # no filter: exact
            assert np.array_equal(res.counts, exact_counts)
        else:  # the documented arithmetic, bit for bit
            stage = np.rint(decimate(np.rint(x * gain).astype(np.int16), 5, dtype=np.float32))
            assert np.array_equal(res.counts, stage.astype(np.int16))
    assert kept == 5


def test_int16_rejects_counts_beyond_int16_instead_of_wrapping(ecg500):
    x = ecg500[None] + 40.0  # +40 mV offset: 40,000 counts at gain 1000
    cfg = QualityConfig(max_ptp_mv=None)
    [res] = curate_batch(x, np.array([1000.0]), 500.0,
                         SignalsConfig(fs=500, duration_s=10.0, dtype="int16"), cfg)
    assert isinstance(res, RecordReject) and res.reason == "implausible_amplitude"
    [ok] = curate_batch(x, np.array([1000.0]), 500.0, SignalsConfig(fs=500, duration_s=10.0), cfg)
    assert ok.counts is None and np.allclose(ok.signal, x[0], atol=6e-4)  # float32 keeps it


def test_work_shard_round_trip_is_bit_exact(tmp_path, sig, ecg500):
    x = ecg500
    root = tmp_path / "raw"
    root.mkdir()
    records = []
    for i in range(3):
        path = sig.write_ptbxl(root, i + 1, np.roll(x, 50 * i, axis=1))
        records.append({"id": f"ptbxl/{i}", "source": "ptbxl",
                        "path": str(path.relative_to(root))})
    cfg = SignalsConfig(fs=100, duration_s=10.0, quality={"max_ptp_mv": None})
    out = str(tmp_path / "shard.parquet")
    assert process_shard(records, {"ptbxl": str(root)}, cfg, out) == (3, 0)
    table = read_work_shard(out, "float32")
    assert table.column_names == ["id", "signal", "adc_gain", "fs_raw", "repairs"]
    got = arrow_to_signals(table["signal"])
    for i, rec in enumerate(records):
        from ecg_instruct.signals.wfdb_io import read_record

        raw = read_record(root / rec["path"]).signal
        expected = quantise(resample(raw, 500, 100), 1 / 1000.0).astype(np.float32)
        assert np.array_equal(got[i], expected)
    assert b"counts_int16" in pq.read_schema(out).metadata[b"ecg_instruct.work_signal"]


def test_work_shard_stores_float32_when_counts_do_not_fit(tmp_path):
    import pyarrow as pa

    from ecg_instruct.signals.stage import CuratedSignal, _work_table

    mv = (np.arange(24, dtype=np.float64).reshape(2, 12) * 7.001).astype(np.float32)
    fits = CuratedSignal(None, 1000.0, 500.0, [], np.full((2, 12), 5, np.int16))
    big = CuratedSignal(mv, 1000.0, 500.0, ["x"], None)
    out = tmp_path / "w.parquet"
    pq.write_table(_work_table(["a", "b"], [fits, big]), out)
    table = read_work_shard(out, "float32")
    assert table["signal"].type == pa.list_(pa.list_(pa.float32()))
    got = arrow_to_signals(table["signal"])
    assert np.array_equal(got[0], np.full((2, 12), np.float32(5 * (1 / 1000.0))))
    assert np.array_equal(got[1], mv)
    assert b"mv_float32" in pq.read_schema(out).metadata[b"ecg_instruct.work_signal"]
