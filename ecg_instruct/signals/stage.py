"""Stage 4 (signals): one shard of index rows -> curated signals or named rejects.

Runs in worker processes: everything a worker needs arrives as plain arguments, and a shard's
output appears under its final name only once completely written (that rename is what makes the
shard "done" for a resumed build).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.errors import RecordReject
from ecg_instruct.paths import UnsafePath, safe_join
from ecg_instruct.recipe import SignalsConfig
from ecg_instruct.schema import REJECT_SCHEMA
from ecg_instruct.signals.leads import canonical_lead_index
from ecg_instruct.signals.quality import QualityConfig, check_and_repair, check_batch
from ecg_instruct.signals.resample import fit_length, resample
from ecg_instruct.signals.storage import mv_to_counts, signals_to_arrow
from ecg_instruct.signals.wfdb_io import EcgRecord, read_record

#: Records checked and resampled together: one numpy pass per step over the batch instead of
#: per-record Python overhead. 32 x 12 x 5000 float64 is 15 MB (plus ~2x that transiently
#: inside the resampler), independent of the shard size.
BATCH_SIZE = 8
_RESAMPLE_CHUNK = 4
_INT16_MAX = 32767  # mv_to_counts' range: -32768 is WFDB's missing-sample code

#: Schema metadata key of a work shard: how its ``signal`` column is stored (see write_shard).
WORK_SIGNAL_KEY = b"ecg_instruct.work_signal"


@dataclass(frozen=True)
class CuratedSignal:
    """One curated record: ``counts`` (int16 ADC counts) when they fit int16, else ``mv``."""

    mv: np.ndarray | None  # float32 (12, n) mV; None when ``counts`` holds the signal
    adc_gain: float  # counts per mV of the source (the quantisation step is 1 / adc_gain)
    fs_raw: float
    repairs: list[str]
    #: the signal as integer ADC counts, int16; ``None`` when they do not fit int16 (then
    #: ``dtype: int16`` rejects the record)
    counts: np.ndarray | None = None

    @property
    def signal(self) -> np.ndarray:
        """float32 (12, n) mV, quantised to the ADC step: ``float32(counts * (1 / adc_gain))``,
        the same bits as ``quantise(x, 1 / adc_gain).astype(float32)``."""
        if self.mv is not None:
            return self.mv
        assert self.counts is not None
        return (self.counts * (1.0 / self.adc_gain)).astype(np.float32)


def _load(record_path: Path) -> tuple[EcgRecord, np.ndarray, float]:
    """Read one record; (record, canonical lead order, its single ADC gain)."""
    ecg = read_record(record_path)
    order = canonical_lead_index(ecg.sig_names)
    gains = np.asarray(ecg.adc_gain, dtype=np.float64)[order]
    if not np.all(gains == gains[0]):
        raise RecordReject("mixed_gain", f"leads have different ADC gains {sorted(set(gains))}")
    return ecg, order, float(gains[0]) or 200.0


def curate_record(record_path: Path, cfg: SignalsConfig, quality: QualityConfig) -> CuratedSignal:
    """Read, check, reorder, resample and quantise one record; RecordReject on any problem.

    The one-record path (records with NaN to repair, or of a rate/length unlike their shard's
    other records); :func:`curate_batch` gives the same result for many records at once.
    """
    return _curate_loaded(*_load(record_path), cfg, quality)


def _curate_loaded(ecg: EcgRecord, order: np.ndarray, gain: float, cfg: SignalsConfig,
                   quality: QualityConfig) -> CuratedSignal:
    signal, repairs = check_and_repair(ecg.signal[order], ecg.fs, quality)
    out = curate_batch(signal[None], np.array([gain]), float(ecg.fs), cfg, quality,
                       checked=True)[0]
    if isinstance(out, RecordReject):
        raise out
    return dataclasses.replace(out, repairs=repairs)


def curate_batch(
    x: np.ndarray, gains: np.ndarray, fs: float, cfg: SignalsConfig, quality: QualityConfig,
    checked: bool = False,
) -> list[CuratedSignal | RecordReject]:
    """Check, resample, fit and quantise a batch ``(B, n_leads, n)`` of finite float64 mV
    signals of one rate; per record a :class:`CuratedSignal` or the ``RecordReject`` it earned.

    ``checked``: the quality checks already ran (one-record path). Quantised once, after
    ``fit_length`` (cropping and edge padding create no new values, so that equals rounding
    after every step); for ``dtype: int16`` the counts must fit int16 (``mv_to_counts``).
    """
    n_rec = x.shape[0]
    out: list[CuratedSignal | RecordReject | None] = (
        [None] * n_rec if checked else list(check_batch(x, fs, quality)))
    keep = [b for b in range(n_rec) if out[b] is None]
    if not keep:
        return out  # type: ignore[return-value]
    try:
        y = x if len(keep) == n_rec else x[keep]
        if fs != cfg.fs:
            # a few records per call: the polyphase matmul's intermediate stays in cache
            # (one call over 32 records is ~1.7x slower per record than over 4)
            y = np.concatenate([resample(y[j : j + _RESAMPLE_CHUNK], fs, cfg.fs)
                                for j in range(0, len(y), _RESAMPLE_CHUNK)])
        y = fit_length(y, cfg.n_samples, cfg.length_policy)
    except RecordReject as exc:  # rate or length: the same for every record of the batch
        for b in keep:
            out[b] = exc.with_traceback(None)  # no frame -> out -> exception cycle
        return out  # type: ignore[return-value]
    # quantise() in two halves: the counts rint(y / step), then counts * step in mV
    step = (1.0 / gains[keep])[:, None, None]
    counts = np.rint(np.divide(y, step))
    flat = counts.reshape(len(keep), -1)
    fits = np.maximum(flat.max(axis=1), -flat.min(axis=1)) <= _INT16_MAX
    for j, b in enumerate(keep):
        # the float32 mV only where the counts cannot stand for it (the shard then stores mV)
        signal = None if fits[j] else (counts[j] * step[j]).astype(np.float32)
        out[b] = CuratedSignal(signal, float(gains[b]), fs, [],
                               counts[j].astype(np.int16) if fits[j] else None)
        if cfg.dtype == "int16" and not fits[j]:
            try:  # for its reject message
                mv_to_counts(signal, float(gains[b]))
            except RecordReject as exc:
                out[b] = exc.with_traceback(None)
            else:  # pragma: no cover - rint(k * step / step) == k for |k| < 2**15
                raise AssertionError("counts out of range but mv_to_counts accepted them")
    return out  # type: ignore[return-value]


def process_shard(
    records: list[dict], raw_roots: dict[str, str], cfg: SignalsConfig, output: str
) -> tuple[int, int]:
    """Curate one shard and write `<output>` (signals) and `<output>.rejects` atomically.

    Records are read one by one; finite ones of the same rate and length are checked and
    resampled in batches of :data:`BATCH_SIZE`, the rest one by one (:func:`curate_record`).
    Returns (records kept, records rejected).
    """
    quality = QualityConfig.from_dict(cfg.quality, source="recipe signals.quality")
    outcomes: list[CuratedSignal | RecordReject | None] = [None] * len(records)
    # (fs, n_leads, n) -> (batch buffer, gains, record positions)
    pending: dict[tuple, tuple[np.ndarray, list[float], list[int]]] = {}

    def flush(key: tuple) -> None:
        buf, gains, where = pending.pop(key)
        results = curate_batch(buf[: len(where)], np.asarray(gains), key[0], cfg, quality)
        for i, res in zip(where, results, strict=True):
            outcomes[i] = res

    for i, record in enumerate(records):
        try:
            path = safe_join(Path(raw_roots[record["source"]]), record["path"])
            ecg, order, gain = _load(path)
            finite = ecg.signal.size and np.isfinite(ecg.signal.sum())
            if not finite:
                outcomes[i] = _curate_loaded(ecg, order, gain, cfg, quality)
                continue
        except UnsafePath as exc:
            outcomes[i] = RecordReject("unsafe_path", str(exc))
            continue
        except RecordReject as exc:
            # without its traceback: frame -> outcomes -> exception -> frame is a cycle that
            # keeps the whole shard's arrays alive until the cyclic GC happens to run
            outcomes[i] = exc.with_traceback(None)
            continue
        key = (float(ecg.fs), len(order), ecg.signal.shape[1])
        if key not in pending:
            pending[key] = (np.empty((BATCH_SIZE, *key[1:])), [], [])
        buf, gains, where = pending[key]
        np.take(ecg.signal, order, axis=0, out=buf[len(where)])
        gains.append(gain)
        where.append(i)
        if len(where) == BATCH_SIZE:
            flush(key)
    for key in list(pending):
        flush(key)

    kept = [(record, res) for record, res in zip(records, outcomes, strict=True)
            if not isinstance(res, RecordReject)]
    rejects = [(record, res.reason, res.detail)
               for record, res in zip(records, outcomes, strict=True)
               if isinstance(res, RecordReject)]
    table = _work_table([r["id"] for r, _ in kept], [c for _, c in kept])  # type: ignore[misc]
    reject_table = pa.table(
        {
            "id": [r["id"] for r, _, _ in rejects],
            "source": [r["source"] for r, _, _ in rejects],
            "stage": ["signals"] * len(rejects),
            "reason": [reason for _, reason, _ in rejects],
            "detail": [_portable_detail(detail, raw_roots[r["source"]]) for r, _, detail in rejects],
        },
        schema=REJECT_SCHEMA,
    )
    _write_atomic(reject_table, output + ".rejects")  # the signals file, written last, marks done
    # no statistics: min/max of 24-120 kB binary values are byte-wise compares (~0.5 ms per
    # 500 Hz record) and nothing reads them
    _write_atomic(table, output, compression="none", use_dictionary=["id"],
                  write_statistics=False)
    return len(kept), len(rejects)


def _work_table(ids: list[str], curated: list[CuratedSignal]) -> pa.Table:
    """A work shard: one fixed-size binary value per record holding its whole signal.

    Writing ``list<list<float32>>`` to Parquet costs ~0.15 ms per 12 x 1000 record in
    repetition levels alone (and ~1.3 ms per 12 x 5000 record with zstd + dictionary); one
    binary value per record is a memcpy. The bytes are int16 ADC counts (little-endian,
    C order) plus the exact quantisation step per record, so the mV values come back
    bit-identical (``float32(counts * step)`` is how they were computed); if any record's
    counts do not fit int16 the shard stores float32 mV instead. Uncompressed: 2 bytes per
    sample (24 kB per 12 x 1000 record, 120 kB per 12 x 5000). :func:`read_work_shard` turns
    it back into the published column type.
    """
    as_counts = all(c.counts is not None for c in curated)
    first = curated[0] if curated else None
    shape = (first.counts if first.counts is not None else first.signal).shape if first else (0, 0)
    dtype = np.dtype("<i2") if as_counts else np.dtype("<f4")
    width = int(np.prod(shape)) * dtype.itemsize
    data = np.empty((len(curated), *shape), dtype=dtype)
    for j, c in enumerate(curated):
        data[j] = c.counts if as_counts else c.signal
    signal = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(max(width, 1)), len(curated), [None, pa.py_buffer(data)])
    meta = {"encoding": "counts_int16" if as_counts else "mv_float32", "shape": list(shape)}
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "signal": signal,
            "adc_gain": pa.array([c.adc_gain for c in curated], pa.float32()),
            "quant_step": pa.array([1.0 / c.adc_gain for c in curated], pa.float64()),
            "fs_raw": pa.array([c.fs_raw for c in curated], pa.float32()),
            "repairs": pa.array([c.repairs for c in curated], pa.list_(pa.string())),
        }
    )
    return table.replace_schema_metadata({WORK_SIGNAL_KEY: json.dumps(meta).encode()})


def read_work_shard(path: str | Path, dtype: str) -> pa.Table:
    """A work shard as publish needs it: ``signal`` as ``list<list<float32>>`` mV (``dtype``
    float32) or ``list<list<int16>>`` ADC counts (``dtype`` int16), plus ``id``, ``adc_gain``,
    ``fs_raw`` and ``repairs``. Shards written before the binary layout are returned as is."""
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(WORK_SIGNAL_KEY)
    if meta is None:
        return table
    info = json.loads(meta)
    n_rows, shape = table.num_rows, tuple(info["shape"])
    if not n_rows:
        table = table.drop_columns(["quant_step"]).replace_schema_metadata(None)
        return table.set_column(table.schema.get_field_index("signal"), "signal",
                                signals_to_arrow([], dtype))
    blob = table.column("signal").combine_chunks()
    size = int(np.prod(shape)) * (2 if info["encoding"] == "counts_int16" else 4)
    raw = memoryview(blob.buffers()[1])[blob.offset * size:]
    if info["encoding"] == "counts_int16":
        data = np.frombuffer(raw, dtype="<i2", count=n_rows * int(np.prod(shape)))
        data = data.reshape(n_rows, *shape)
        if dtype == "int16":
            column = _nested(data)
        else:
            step = table.column("quant_step").to_numpy()[:, None, None]
            column = _nested((data * step).astype(np.float32))
    else:
        data = np.frombuffer(raw, dtype="<f4", count=n_rows * int(np.prod(shape)))
        data = data.reshape(n_rows, *shape)
        if dtype == "int16":  # pragma: no cover - int16 shards always fit (else rejected)
            raise ValueError(f"{path}: float32 work shard for an int16 build")
        column = _nested(data)
    table = table.drop_columns(["quant_step"]).replace_schema_metadata(None)
    return table.set_column(table.schema.get_field_index("signal"), "signal", column)


def _nested(data: np.ndarray) -> pa.Array:
    """``(n_rows, n_leads, n)`` -> ``list<list<...>>`` with one buffer and computed offsets."""
    n_rows, n_leads, n = data.shape
    values = pa.array(np.ascontiguousarray(data).reshape(-1))
    inner = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n_rows * n_leads * n + 1, n, dtype=np.int32)), values)
    return pa.ListArray.from_arrays(
        pa.array(np.arange(0, n_rows * n_leads + 1, n_leads, dtype=np.int32)), inner)


def _portable_detail(detail: str, root: str) -> str:
    """One line, with the mirror's location removed: published bytes must not depend on where
    the raw files were (error messages from readers quote absolute paths)."""
    for prefix in {str(Path(root)), str(Path(root).resolve())}:
        detail = detail.replace(prefix + os.sep, "").replace(prefix, ".")
    return " ".join(detail.split())


def _write_atomic(table: pa.Table, path: str, **options) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(table, tmp, **({"compression": "zstd"} | options))
    os.replace(tmp, path)
