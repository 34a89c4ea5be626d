"""The batched signal stage: same verdicts as one record at a time, bit-exact work shards."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecg_instruct.build.recipe import SignalsConfig
from ecg_instruct.errors import RecordReject
from ecg_instruct.signals.curate import (
    curate_batch,
    curate_counts,
    process_shard,
    read_work_shard,
    work_shard_ids,
)
from ecg_instruct.signals.quality import QualityConfig, check_and_repair, check_batch
from ecg_instruct.signals.resample import decimate, fit_length, quantise, resample
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


@pytest.mark.parametrize("fs", [100, 500])
def test_curate_counts_of_selected_records_equals_curating_a_copy(ecg500, fs):
    """The stage curates the good records of a batch in place (``select``): same outcomes as
    curating a batch of just those records."""
    rng = np.random.default_rng(3)
    x = np.stack([np.roll(ecg500, 400 * i, axis=1) for i in range(5)])
    counts = np.rint(x * 1000 + rng.normal(0, 10, x.shape)).astype(np.int16)
    counts[2, 4] = 7  # a flat lead: rejected whichever way
    baselines = rng.integers(-20, 20, (5, 12))
    gains = np.full(5, 1000.0)
    cfg, quality = SignalsConfig(fs=fs), QualityConfig()
    select = [4, 1, 2]
    got = curate_counts(counts, baselines, gains, 500.0, cfg, quality, select=select)
    copy = curate_counts(counts[select], baselines[select], gains[select], 500.0, cfg, quality)
    assert [type(g) for g in got] == [type(c) for c in copy]
    assert isinstance(got[2], RecordReject) and got[2].reason == "flat_lead"
    for g, c in zip(got, copy, strict=True):
        if isinstance(g, RecordReject):
            assert (g.reason, g.detail) == (c.reason, c.detail)
        else:
            assert np.array_equal(g.counts, c.counts) and g.adc_gain == c.adc_gain


def test_int16_rejects_counts_beyond_int16_instead_of_wrapping(ecg500):
    x = ecg500[None] + 40.0  # +40 mV offset: 40,000 counts at gain 1000
    cfg = QualityConfig(max_ptp_mv=None, max_offset_mv=None)  # the offset check would reject it
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
    out = str(tmp_path / "shard.arrow")
    assert process_shard(records, {"ptbxl": str(root)}, cfg, out) == (3, 0)
    table = read_work_shard(out, "float32")
    assert table.column_names == ["id", "signal", "adc_gain", "fs_raw", "repairs"]
    got = arrow_to_signals(table["signal"])
    for i, rec in enumerate(records):
        from ecg_instruct.signals.wfdb_io import read_record

        raw = read_record(root / rec["path"]).signal
        expected = quantise(resample(raw, 500, 100), 1 / 1000.0).astype(np.float32)
        assert np.array_equal(got[i], expected)
    with pa.OSFile(out, "rb") as source:  # an Arrow IPC file (see stage._write_work_shard)
        schema = pa.ipc.open_file(source).schema
    assert b"counts_int16" in schema.metadata[b"ecg_instruct.work_signal"]
    assert work_shard_ids(out) == [r["id"] for r in records]


def test_work_shard_stores_float32_when_counts_do_not_fit(tmp_path):
    from ecg_instruct.signals.curate import CuratedSignal, _work_table, _write_work_shard

    mv = (np.arange(24, dtype=np.float64).reshape(2, 12) * 7.001).astype(np.float32)
    fits = CuratedSignal(None, 1000.0, 500.0, [], np.full((2, 12), 5, np.int16))
    big = CuratedSignal(mv, 1000.0, 500.0, ["x"], None)
    out = tmp_path / "w.arrow"
    work = _work_table(["a", "b"], [fits, big])
    _write_work_shard(work, str(out))
    table = read_work_shard(out, "float32")
    assert table["signal"].type == pa.list_(pa.list_(pa.float32()))
    got = arrow_to_signals(table["signal"])
    assert np.array_equal(got[0], np.full((2, 12), np.float32(5 * (1 / 1000.0))))
    assert np.array_equal(got[1], mv)
    assert b"mv_float32" in work.schema.metadata[b"ecg_instruct.work_signal"]



def test_work_rows_convert_only_what_is_taken_with_the_same_bits(tmp_path):
    """Publish slices, filters and regroups work rows before converting them (it converts one
    row group, not the shard): the mV it gets are bit for bit those of the whole shard, for
    rows of several steps and for a counts piece joined to a float32 one."""
    from ecg_instruct.signals.curate import (
        CuratedSignal,
        WorkRows,
        _work_table,
        _write_work_shard,
        read_work_rows,
    )

    rng = np.random.default_rng(3)
    gains = [1000.0, 200.0, 1000.0, 4.88, 200.0]
    curated = [CuratedSignal(None, g, 500.0, [], rng.integers(-3000, 3000, (12, 50), np.int16))
               for g in gains]
    counts_shard = tmp_path / "counts.arrow"
    _write_work_shard(_work_table([f"r{i}" for i in range(5)], curated), str(counts_shard))
    mv = rng.normal(0, 40, (12, 50)).astype(np.float32)  # counts would not fit: mV stored
    mv_shard = tmp_path / "mv.arrow"
    _write_work_shard(_work_table(["m0", "m1"], [curated[0], CuratedSignal(mv, 1000.0, 500.0,
                                                                            [], None)]),
                      str(mv_shard))
    whole = arrow_to_signals(read_work_shard(counts_shard, "float32")["signal"])
    rows = read_work_rows(counts_shard)
    assert rows.steps is not None and rows.data.dtype == np.int16
    taken = rows.take(np.array([0, 2, 3, 4])).slice(1, 3)  # ids r2, r3
    assert taken.columns.column("id").to_pylist() == ["r2", "r3"]
    assert arrow_to_signals(taken.signal_column("float32")).tobytes() == whole[2:4].tobytes()
    joined = WorkRows.concat([taken, read_work_rows(mv_shard)])
    assert joined.steps is None  # counts beside mV: all as mV
    got = arrow_to_signals(joined.signal_column("float32"))
    assert got[:2].tobytes() == whole[2:4].tobytes() and np.array_equal(got[3], mv)
    assert joined.columns.column("id").to_pylist() == ["r2", "r3", "m0", "m1"]


def _fast_path_folder(root, sig, ecg500) -> dict[str, str]:
    """10 s 500 Hz records in both sources' conventions, clean and with one defect each;
    name -> the reason it must get (``""``: kept). No corrupt file (see _corrupt_record)."""
    import wfdb

    rng = np.random.default_rng(12)

    def noisy(shift: int) -> np.ndarray:
        return np.roll(ecg500, shift, axis=1) + rng.normal(0, 0.01, ecg500.shape)

    def ptbxl(name: str, x: np.ndarray) -> None:
        sig.write_record(root, name, sig.canonical_to(sig.PTBXL_NAMES, x), 500, 1000.0,
                         sig.PTBXL_NAMES)

    def mimic(name: str, x: np.ndarray) -> None:
        sig.write_record(root, name, sig.canonical_to(sig.MIMIC_NAMES, x), 500, 200.0,
                         sig.MIMIC_NAMES)

    expected = {}
    for i in range(3):
        ptbxl(f"ptbxl_clean{i}", noisy(97 * i))
        mimic(f"mimic_clean{i}", noisy(500 + 131 * i))
        expected[f"ptbxl_clean{i}"] = expected[f"mimic_clean{i}"] = ""
    # non-zero per-lead baselines: the fast path subtracts them in its decimation
    x = noisy(1234)
    wfdb.wrsamp("ptbxl_baseline", fs=500, units=["mV"] * 12, sig_name=sig.PTBXL_NAMES,
                p_signal=sig.canonical_to(sig.PTBXL_NAMES, x).T.copy(), fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=list(range(-600, 600, 100)), write_dir=str(root))
    expected["ptbxl_baseline"] = ""
    x = noisy(10)
    x[4] = 0.0
    ptbxl("flat", x)
    expected["flat"] = "flat_lead"
    x = noisy(20)
    x[2] *= 12  # ~25 mV peak-to-peak, within MIMIC's int16 range: no rail, no clipping
    mimic("amplitude", x)
    expected["amplitude"] = "implausible_amplitude"
    x = noisy(30)
    x[7, 1000:1010] = np.nan  # 20 ms: repaired
    ptbxl("short_nan", x)
    expected["short_nan"] = ""
    x = noisy(40)
    x[3, 2000:2040] = np.nan  # 80 ms: longer than max_nan_run_s
    mimic("long_nan", x)
    expected["long_nan"] = "nan_values"
    x = noisy(60)
    sig.write_record(root, "thirteen", np.vstack([sig.canonical_to(sig.PTBXL_NAMES, x), x[1:2]]),
                     500, 1000.0, [*sig.PTBXL_NAMES, "MLII"])
    expected["thirteen"] = ""
    return expected


def _corrupt_record(root, sig, ecg500) -> dict[str, str]:
    """A PTB-XL record whose .dat changed after writing (same size): its checksum mismatches."""
    sig.write_record(root, "corrupt", sig.canonical_to(sig.PTBXL_NAMES, np.roll(ecg500, 50, axis=1)),
                     500, 1000.0, sig.PTBXL_NAMES)
    with open(root / "corrupt.dat", "r+b") as f:
        f.seek(2 * 12 * 2500 + 2 * 5)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x11]))
    return {"corrupt": "checksum_mismatch"}


def _assert_shard_equals_one_record_path(tmp_path, root, expected: dict[str, str]) -> None:
    """process_shard's batched int16 path and curate_record give each record the same
    outcome: the same reject (reason and portable detail), or bit-identical int16 counts."""
    from pathlib import Path

    from ecg_instruct.signals.curate import curate_record

    names = sorted(expected)
    records = [{"id": f"r/{name}", "source": "ptbxl", "path": name} for name in names]
    cfg = SignalsConfig(fs=100, duration_s=10.0)
    output = str(tmp_path / "shard.parquet")
    n_kept, n_rejected = process_shard(records, {"ptbxl": str(root)}, cfg, output)

    kept = read_work_shard(output, "int16")
    rejects = pq.read_table(output + ".rejects")
    kept_ids = kept["id"].to_pylist()
    reject_ids = rejects["id"].to_pylist()
    assert (n_kept, n_rejected) == (len(kept_ids), len(reject_ids))
    assert sorted(kept_ids + reject_ids) == sorted(r["id"] for r in records)  # nothing lost
    assert not set(kept_ids) & set(reject_ids)
    counts = dict(zip(kept_ids, arrow_to_signals(kept["signal"]), strict=True)) if kept_ids else {}
    repairs = dict(zip(kept_ids, kept["repairs"].to_pylist(), strict=True))
    reasons = dict(zip(reject_ids, rejects["reason"].to_pylist(), strict=True))
    details = dict(zip(reject_ids, rejects["detail"].to_pylist(), strict=True))

    for name in names:
        rid = f"r/{name}"
        try:
            one = curate_record(Path(root) / name, cfg, QualityConfig())
        except RecordReject as exc:
            assert reasons.get(rid) == exc.reason == expected[name], name
            assert details[rid] == " ".join(exc.detail.replace(f"{root}/", "").split()), name
            continue
        assert expected[name] == "" and rid in counts, name
        got = counts[rid]
        assert got.dtype == np.int16 and one.counts is not None, name
        assert got.shape == one.counts.shape == (12, 1000), name
        assert np.array_equal(got, one.counts), name
        assert repairs[rid] == one.repairs, name
    assert sorted(reasons.values()) == sorted(r for r in expected.values() if r)


def test_fast_path_equals_one_record_path(tmp_path, sig, ecg500):
    root = tmp_path / "raw"
    root.mkdir()
    expected = _fast_path_folder(root, sig, ecg500)
    _assert_shard_equals_one_record_path(tmp_path, root, expected)
    kept = read_work_shard(str(tmp_path / "shard.parquet"), "int16")
    ids = kept["id"].to_pylist()
    by_id = dict(zip(ids, kept["repairs"].to_pylist(), strict=True))
    assert len(ids) == 9  # 6 clean, the baselines, the repaired NaN run and the 13-signal one
    assert by_id["r/short_nan"] and all(not by_id[i] for i in ids if i != "r/short_nan")


def test_fast_path_rejects_a_lone_corrupt_record(tmp_path, sig, ecg500):
    root = tmp_path / "raw"
    root.mkdir()
    _assert_shard_equals_one_record_path(tmp_path, root, _corrupt_record(root, sig, ecg500))


def test_fast_path_rejects_a_corrupt_record_among_good_ones(tmp_path, sig, ecg500):
    """A checksum reject in a batch leaves the batch's other records curated as usual
    (regression: the reject's per-lead sums once overwrote the batch's heart-rate sums)."""
    root = tmp_path / "raw"
    root.mkdir()
    expected = _fast_path_folder(root, sig, ecg500) | _corrupt_record(root, sig, ecg500)
    _assert_shard_equals_one_record_path(tmp_path, root, expected)


def test_a_shard_of_many_record_lengths_keeps_few_batches_open(tmp_path, sig, ecg500):
    """More distinct (rate, length) keys than batches allowed open: earlier batches are flushed
    early, and every record still gets exactly its one-record result."""
    from pathlib import Path

    from ecg_instruct.signals import curate as stage
    from ecg_instruct.signals.curate import curate_record

    lengths = [5000 + 10 * k for k in range(stage._MAX_OPEN_BATCHES + 2)]
    root = tmp_path / "raw"
    root.mkdir()
    names = []
    for i in range(2 * len(lengths)):
        n = lengths[i % len(lengths)]
        x = np.concatenate([ecg500, ecg500], axis=1)[:, 37 * i : 37 * i + n]
        sig.write_record(root, f"rec{i:02d}", sig.canonical_to(sig.PTBXL_NAMES, x), 500, 1000.0,
                         sig.PTBXL_NAMES)
        names.append(f"rec{i:02d}")
    cfg = SignalsConfig(fs=100, duration_s=10.0, length_policy="crop_pad")
    output = str(tmp_path / "shard.parquet")
    records = [{"id": name, "source": "ptbxl", "path": name} for name in names]
    assert process_shard(records, {"ptbxl": str(root)}, cfg, output) == (len(names), 0)
    kept = read_work_shard(output, "int16")
    assert kept["id"].to_pylist() == names
    for name, got in zip(names, arrow_to_signals(kept["signal"]), strict=True):
        assert np.array_equal(got, curate_record(Path(root) / name, cfg, QualityConfig()).counts)
