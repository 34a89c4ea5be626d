"""Stage 4 (signals): one shard of index rows -> curated signals or named rejects.

Runs in worker processes: everything a worker needs arrives as plain arguments, and a shard's
output appears under its final name only once completely written (that rename is what makes the
shard "done" for a resumed build).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.build.recipe import SignalsConfig
from ecg_instruct.build.workio import temporary
from ecg_instruct.errors import RecordReject
from ecg_instruct.index.windows import split_window
from ecg_instruct.paths import UnsafePath, safe_join_str
from ecg_instruct.schema import REJECT_SCHEMA
from ecg_instruct.signals import kernels
from ecg_instruct.signals.fingerprint import fingerprint_counts, fingerprint_mv, fingerprint_record
from ecg_instruct.signals.kernels import STAT_MIN, STAT_SUM
from ecg_instruct.signals.leads import CANONICAL_LEADS, canonical_lead_index
from ecg_instruct.signals.prefetch import PREFETCH_AHEAD, prefetch
from ecg_instruct.signals.quality import (
    QualityConfig,
    block_sum_dtype,
    check_and_repair,
    check_batch,
    heart_rate_block,
    lead_stats,
    window_samples,
)
from ecg_instruct.signals.resample import fit_length, rate_ratio, resample
from ecg_instruct.signals.storage import mv_to_counts, signals_to_arrow
from ecg_instruct.signals.wfdb_io import (
    INVALID_SAMPLE_16,
    EcgRecord,
    WfdbHeader,
    checksum_mismatch,
    dat_path,
    read_digital,
    read_header,
    read_record,
)

N_LEADS = len(CANONICAL_LEADS)

#: Records checked and resampled together: one compiled pass or numpy call per step over the
#: batch instead of per-record Python overhead. 32 x 12 x 5000 int16 counts are 3.8 MB (the
#: float32 spectrum of the noise check ~8 MB more), independent of the shard size.
BATCH_SIZE = 32
_INT16_MAX = 32767  # mv_to_counts' range: -32768 is WFDB's missing-sample code
#: Batches of different (rate, length) open at once in a shard; beyond it they are flushed and
#: dropped, so a shard of many record lengths cannot hold many batch buffers.
_MAX_OPEN_BATCHES = 4

#: Schema metadata key of a work shard: how its ``signal`` column is stored (see write_shard).
WORK_SIGNAL_KEY = b"ecg_instruct.work_signal"
#: File name suffix of a signals work shard (an Arrow IPC file, see _write_work_shard); its
#: rejects are ``<shard>.rejects`` (Parquet).
WORK_SHARD_SUFFIX = ".arrow"


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
    #: content hash of the record as stored (``signals/fingerprint.py``), for duplicates
    fingerprint: str = ""

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
    ecg, order, gain = _load(record_path)
    out = _curate_loaded(ecg, order, gain, cfg, quality)
    fingerprint = fingerprint_record(ecg.digital, ecg.signal, order,
                                     np.asarray(ecg.baseline, dtype=np.int64), gain, ecg.fs)
    return dataclasses.replace(out, fingerprint=fingerprint)


def _curate_loaded(ecg: EcgRecord, order: np.ndarray, gain: float, cfg: SignalsConfig,
                   quality: QualityConfig) -> CuratedSignal:
    signal, repairs = check_and_repair(ecg.signal[order], ecg.fs, quality)
    out = curate_batch(signal[None], np.array([gain]), float(ecg.fs), cfg, quality,
                       checked=True)[0]
    if isinstance(out, RecordReject):
        raise out
    return dataclasses.replace(out, repairs=repairs)


def curate_code15(tracing: np.ndarray, cfg: SignalsConfig, quality: QualityConfig) -> CuratedSignal:
    """One CODE-15% tracing as stored ((4096, 12) float32, canonical lead order): padding
    stripped, then checked, resampled and rounded like any record, with the release's float
    values rounded to :data:`~ecg_instruct.sources.code15.ADC_GAIN` counts per mV."""
    from ecg_instruct.sources.code15 import ADC_GAIN, FS, LEADS, MV_PER_UNIT, strip_padding

    stored = strip_padding(tracing)
    mv = stored.astype(np.float64) * MV_PER_UNIT
    n = len(LEADS)
    ecg = EcgRecord(signal=mv, fs=float(FS), sig_names=list(LEADS),
                    adc_gain=np.full(n, ADC_GAIN), baseline=np.zeros(n, dtype=np.int64))
    out = _curate_loaded(ecg, np.arange(n), ADC_GAIN, cfg, quality)
    return dataclasses.replace(out, fingerprint=fingerprint_mv(stored, FS))


def curate_window(path: str, window: int, cfg: SignalsConfig, quality: QualityConfig,
                  last_read: dict[str, tuple] | None = None) -> CuratedSignal:
    """Window `window` of a record (``ecg_instruct/index/windows.py``): source samples
    ``[window * L, (window + 1) * L)`` with ``L = round(duration_s * fs)``, curated like a
    record of their own. ``last_read`` keeps the last record read (its windows are consecutive
    in id order, so a 30-minute record is read once, not once per window)."""
    cache = last_read if last_read is not None else {}
    if path not in cache:
        cache.clear()
        cache[path] = _load(Path(path))
    ecg, order, gain = cache[path]
    length = int(round(cfg.duration_s * ecg.fs))
    start, n = window * length, ecg.signal.shape[1]
    if start + length > n:
        raise RecordReject("wrong_length", f"window {window} ({length} samples from {start}) "
                                           f"ends after the record's {n} samples")
    part = dataclasses.replace(
        ecg, signal=ecg.signal[:, start:start + length],
        digital=None if ecg.digital is None else ecg.digital[:, start:start + length])
    out = _curate_loaded(part, order, gain, cfg, quality)
    fingerprint = fingerprint_record(part.digital, part.signal, order,
                                     np.asarray(ecg.baseline, dtype=np.int64), gain, ecg.fs)
    return dataclasses.replace(out, fingerprint=fingerprint)


def curate_batch(
    x: np.ndarray, gains: np.ndarray, fs: float, cfg: SignalsConfig, quality: QualityConfig,
    checked: bool = False,
) -> list[CuratedSignal | RecordReject]:
    """Check, resample, fit and quantise a batch ``(B, n_leads, n)`` of finite float64 mV
    signals of one rate; per record a :class:`CuratedSignal` or the ``RecordReject`` it earned.

    The millivolt entry point (one-record path, tests): the signals are rounded to whole ADC
    counts ``rint(x * gain)`` (a no-op for signals read from WFDB; the ADC grid again after a
    NaN repair interpolated between samples) and take the stage's route for counts
    (:func:`curate_counts`). ``checked``: the quality checks already ran.
    """
    gains = np.asarray(gains, dtype=np.float64)
    counts = np.rint(x * gains[:, None, None])
    if counts.size and np.abs(counts).max() <= _INT16_MAX:
        counts = counts.astype(np.int16)  # the stage's exact types (and compiled kernels)
    return curate_counts(counts, np.zeros(counts.shape[:2]), gains, fs, cfg, quality,
                         checked=checked)


def curate_counts(
    counts: np.ndarray, baselines: np.ndarray, gains: np.ndarray, fs: float, cfg: SignalsConfig,
    quality: QualityConfig, checked: bool = False, stats: np.ndarray | None = None,
    block_sums: np.ndarray | None = None, select: list[int] | None = None,
) -> list[CuratedSignal | RecordReject]:
    """The curation of a batch of ADC counts ``(B, n_leads, n)`` (int16 as read, or float64)
    with per-lead ``baselines`` (B, n_leads) and per-record ``gains`` (counts per mV).

    Quality checks on the counts, then ``rint(resample(counts - baseline))``: resampling in
    count units and rounding to whole counts is the "round to the ADC step after every
    processing step" of the recipe, without a float copy of the input (``fit_length`` before
    rounding or after: cropping and edge padding create no new values). For ``dtype: int16`` the
    counts must fit int16 (``mv_to_counts``' message otherwise).

    ``select``: curate only these records of the batch (outcomes in that order), reading them
    in place: copying the rest of a batch out costs more than checking all of it.
    """
    n_rec = counts.shape[0]
    candidates = list(range(n_rec)) if select is None else select
    verdicts: list[RecordReject | None] = (
        [None] * n_rec if checked
        else check_batch(counts, fs, quality, scale=1.0 / gains, stats=stats,
                         block_sums=block_sums, baselines=baselines))
    out: dict[int, CuratedSignal | RecordReject] = {
        b: verdicts[b] for b in candidates if verdicts[b] is not None}  # type: ignore[misc]
    keep = [b for b in candidates if verdicts[b] is None]
    if not keep:
        return [out[b] for b in candidates]
    try:
        y = _resample_counts(counts, baselines, fs, cfg.fs,
                             None if len(keep) == n_rec else np.asarray(keep))
        y = fit_length(y, cfg.n_samples, cfg.length_policy)
    except RecordReject as exc:  # rate or length: the same for every record of the batch
        for b in keep:
            out[b] = exc.with_traceback(None)  # no frame -> out -> exception cycle
        return [out[b] for b in candidates]
    if y.dtype == np.int16:  # counts as stored (-32768, the missing-sample code, never gets here)
        fits = np.ones(len(keep), dtype=bool)
        as_int16 = y
    elif y.dtype.kind == "f":  # resampled: round to whole counts and cast in one pass
        y = np.ascontiguousarray(y)  # (a cropped view): rounded in place, y is used below
        as_int16 = np.empty(y.shape, np.int16)  # rows that do not fit stay unused
        fits = np.empty(len(keep), dtype=bool)
        kernels.round_to_int16(y.reshape(len(keep), -1), as_int16.reshape(len(keep), -1), fits)
    else:  # int32 counts minus baselines
        flat = y.reshape(len(keep), -1)
        fits = np.maximum(flat.max(axis=1), -flat.min(axis=1)) <= _INT16_MAX
        as_int16 = y.astype(np.int16)  # one cast for the batch; rows that do not fit are unused
    for j, b in enumerate(keep):
        gain = float(gains[b])
        # the float32 mV only where the counts cannot stand for it (the shard then stores mV)
        signal = None if fits[j] else (y[j].astype(np.float64) * (1.0 / gain)).astype(np.float32)
        out[b] = CuratedSignal(signal, gain, fs, [], as_int16[j] if fits[j] else None)
        if cfg.dtype == "int16" and not fits[j]:
            try:  # for its reject message
                mv_to_counts(signal, gain)
            except RecordReject as exc:
                out[b] = exc.with_traceback(None)
            else:  # pragma: no cover - rint(k * step / step) == k for |k| < 2**15
                raise AssertionError("counts out of range but mv_to_counts accepted them")
    return [out[b] for b in candidates]


def _resample_counts(c: np.ndarray, baselines: np.ndarray, fs: float, fs_out: float,
                     records: np.ndarray | None = None) -> np.ndarray:
    """``resample(c - baseline)`` in count units (int16/int32 when no resampling is needed,
    float32 for the compiled decimation, float64 otherwise; floats are rounded to whole
    counts by the caller), of the ``records`` of the batch ``c`` (all when None)."""
    up, down = rate_ratio(fs, fs_out)
    if up == down:
        if records is not None:
            c, baselines = c[records], baselines[records]
        if c.dtype == np.int16 and not baselines.any():  # PTB-XL, MIMIC-IV-ECG: as stored
            return c.copy()
        if np.issubdtype(c.dtype, np.integer):
            return c.astype(np.int32) - baselines.astype(np.int32)[..., None]
        return np.rint(c - baselines[..., None])
    # float32 for the compiled decimation (whole counts < 2**24 are exact), float64 otherwise
    dtype = np.float32 if up == 1 else np.float64
    return resample(c, fs, fs_out, offsets=baselines, dtype=dtype, records=records)


def process_shard(
    records: list[dict], raw_roots: dict[str, str], cfg: SignalsConfig, output: str
) -> tuple[int, int]:
    """Curate one shard and write `<output>` (signals) and `<output>.rejects` atomically.

    Format-16 twelve-lead records (all of PTB-XL and MIMIC-IV-ECG) take the fast path: their
    int16 counts go straight from the ``.dat`` file into a batch of :data:`BATCH_SIZE`
    records of one rate and length, which is checksummed, checked, resampled and quantised
    together. Anything else (other formats, missing or extra leads, mixed gains, missing
    samples to repair) takes the one-record path, :func:`curate_record`, with the same
    reasons in the same order. Returns (records kept, records rejected).

    Run it under :func:`~ecg_instruct.signals.heap.retained_heap` (the pipeline does): batches
    then reuse their temporaries' pages instead of faulting in new ones.
    """
    quality = QualityConfig.from_dict(cfg.quality, source="recipe signals.quality")
    outcomes: list[CuratedSignal | RecordReject | None] = [None] * len(records)
    # buffers reused for the whole shard: fresh ones per record or batch cost more in page
    # faults (~70 us per record on a VM) than the work done on them
    pending: dict[tuple, _Batch] = {}
    scratch = _Scratch()

    def flush(key: tuple) -> None:
        batch = pending[key]
        for i, res in batch.curate(key[0], cfg, quality):
            outcomes[i] = res
        batch.reset()

    parts = None  # CODE-15% part files, opened on first use and closed with the shard
    last_read: dict[str, tuple] = {}  # the record whose windows are being curated
    ahead = _prefetcher(records, raw_roots)
    for i, record in enumerate(records):
        ahead(i)
        if record["source"] == "code15":
            if parts is None:
                from ecg_instruct.sources.code15 import PartFiles

                parts = PartFiles(raw_roots["code15"])
            try:
                outcomes[i] = curate_code15(parts.read_tracing(record["path"]), cfg, quality)
            except RecordReject as exc:
                outcomes[i] = exc.with_traceback(None)
            continue
        base, window = split_window(record["path"])
        if window is not None:  # length_policy window: one recipe-length part of a record
            try:
                path = safe_join_str(raw_roots[record["source"]], base)
                outcomes[i] = curate_window(path, window, cfg, quality, last_read)
            except UnsafePath as exc:
                outcomes[i] = RecordReject("unsafe_path", str(exc))
            except RecordReject as exc:
                outcomes[i] = exc.with_traceback(None)
            continue
        try:
            path = safe_join_str(raw_roots[record["source"]], record["path"])
            loaded = _read_counts(path, scratch)
            if loaded is None:
                outcomes[i] = curate_record(Path(path), cfg, quality)
                continue
        except UnsafePath as exc:
            outcomes[i] = RecordReject("unsafe_path", str(exc))
            continue
        except RecordReject as exc:
            # without its traceback: frame -> outcomes -> exception -> frame is a cycle that
            # keeps the whole shard's arrays alive until the cyclic GC happens to run
            outcomes[i] = exc.with_traceback(None)
            continue
        header, raw, order, gain = loaded
        key = (float(header.fs), raw.shape[0])
        batch = pending.get(key)
        if batch is None:
            if len(pending) >= _MAX_OPEN_BATCHES:  # an archive of many lengths: bound memory
                for open_key, open_batch in pending.items():
                    if open_batch.where:
                        flush(open_key)
                pending.clear()
            batch = pending[key] = _Batch(raw.shape[0], key[0])
        batch.add(i, path, header, raw, order, gain)
        if batch.full:
            flush(key)
    for key, batch in pending.items():
        if batch.where:
            flush(key)
    if parts is not None:
        parts.close()

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
    _write_work_shard(table, output)
    return len(kept), len(rejects)


class _Scratch:
    """One growing int16 buffer that every record's raw samples are read into in turn."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, dtype="<i2")

    def get(self, n_values: int) -> np.ndarray:
        if self.buffer.size < n_values:
            self.buffer = np.empty(n_values, dtype="<i2")
        return self.buffer


def _prefetcher(records: list[dict], raw_roots: dict[str, str]) -> Callable[[int], None]:
    """`ahead(i)`: before record `i` is read, queue the reads of record `i + PREFETCH_AHEAD`
    (and, at the start, of the records up to it). WFDB records of PTB-XL and MIMIC-IV-ECG
    only: Challenge 2021 `.mat` and CODE-15% HDF5 files are read as they were."""
    def files(j: int) -> str | None:
        record = records[j]
        if record["source"] not in ("ptbxl", "mimic") or split_window(record["path"])[1] is not None:
            return None
        try:
            return safe_join_str(raw_roots[record["source"]], record["path"])
        except (UnsafePath, KeyError):
            return None

    def ahead(i: int) -> None:
        for j in (range(min(PREFETCH_AHEAD + 1, len(records))) if i == 0
                  else (i + PREFETCH_AHEAD,)):
            if j < len(records) and (path := files(j)) is not None:
                prefetch(path)

    return ahead


def _read_counts(path: str,
                 scratch: _Scratch) -> tuple[WfdbHeader, np.ndarray, np.ndarray, float] | None:
    """A fast-path record's (header, interleaved int16 counts, canonical lead order, gain);
    ``None`` when the record needs the one-record path (which then also gives the reject of
    a missing lead or mixed gains, after the reader's own checks, as it always did)."""
    header = read_header(path)
    if not header.fast_path_ok or header.n_sig != N_LEADS:
        return None
    raw, gains = read_digital(path, header, out=scratch.get)
    try:
        order = canonical_lead_index(header.sig_names)
    except RecordReject:
        return None
    values = gains.tolist()
    if values.count(values[0]) != len(values):  # mixed gains: the one-record path
        return None
    return header, raw, order, float(values[0]) or 200.0


class _Batch:
    """Up to :data:`BATCH_SIZE` fast-path records of one rate and length, as canonical-order
    int16 counts, and what is needed to check them against their headers."""

    def __init__(self, n: int, fs: float):
        self.counts = np.empty((BATCH_SIZE, N_LEADS, n), dtype=np.int16)
        self.block = heart_rate_block(fs)
        self.baselines = np.empty((BATCH_SIZE, N_LEADS), dtype=np.int64)
        #: the header's checksum of each canonical lead, mod 2**16 (-1: the header has none)
        self.checksums = np.empty((BATCH_SIZE, N_LEADS), dtype=np.int64)
        self.gains: list[float] = []
        self.where: list[int] = []
        self.paths: list[str] = []
        self.headers: list[WfdbHeader] = []
        self.orders: list[np.ndarray] = []
        self.fingerprints: list[str] = []

    @property
    def full(self) -> bool:
        return len(self.where) == BATCH_SIZE

    def reset(self) -> None:
        """Empty, keeping the buffers (nothing curated refers to them)."""
        for items in (self.gains, self.where, self.paths, self.headers, self.orders,
                      self.fingerprints):
            items.clear()

    def add(self, i: int, path: str, header: WfdbHeader, raw: np.ndarray, order: np.ndarray,
            gain: float) -> None:
        j = len(self.where)
        kernels.gather_leads(raw, order, self.counts[j])
        self.baselines[j] = header.baseline[order]
        sums = header.checksums
        if None in sums:
            self.checksums[j] = -1
        else:  # mod 2**16 on Python ints: a corrupt header may hold a number beyond int64
            self.checksums[j] = [sums[k] % 65536 for k in order.tolist()]
        self.gains.append(gain)
        self.where.append(i)
        self.paths.append(path)
        self.headers.append(header)
        self.orders.append(order)
        self.fingerprints.append(
            fingerprint_counts(self.counts[j], self.baselines[j], gain, header.fs))

    def curate(self, fs: float, cfg: SignalsConfig,
               quality: QualityConfig) -> list[tuple[int, CuratedSignal | RecordReject]]:
        """(record position, outcome) for every record of the batch."""
        n = len(self.where)
        counts = self.counts[:n]
        stats = lead_stats(counts, window_samples(quality, fs))
        # the heart-rate envelope's block sums (exact integers), handed to the checks
        sums = np.empty((n, N_LEADS, counts.shape[2] // self.block),
                        dtype=block_sum_dtype(counts.dtype, self.block))
        kernels.block_sums(counts, self.block, sums.dtype.type(0), sums)
        expected = self.checksums[:n]
        corrupt = np.any((expected >= 0)
                         & (stats[..., STAT_SUM].astype(np.int64) % 65536 != expected), axis=1)
        missing = stats[..., STAT_MIN].min(axis=1) == INVALID_SAMPLE_16
        results: list[tuple[int, CuratedSignal | RecordReject]] = []
        good = []
        for j in range(n):
            if corrupt[j]:  # the reader's own message, naming the leads in header order
                header = self.headers[j]
                lead_sums = np.empty(N_LEADS, dtype=np.int64)
                lead_sums[self.orders[j]] = stats[j, :, STAT_SUM]
                reject = checksum_mismatch(lead_sums, header, dat_path(self.paths[j], header))
                assert reject is not None
                results.append((self.where[j], reject))
            elif missing[j]:  # samples to repair: the one-record path
                try:
                    results.append((self.where[j],
                                    curate_record(Path(self.paths[j]), cfg, quality)))
                except RecordReject as exc:
                    results.append((self.where[j], exc.with_traceback(None)))
            else:
                good.append(j)
        if good:  # checked in place with the rest of the batch (cheaper than a copy)
            out = curate_counts(counts, self.baselines[:n], np.asarray(self.gains), fs, cfg,
                                quality, stats=stats, block_sums=sums,
                                select=None if len(good) == n else good)
            for j, res in zip(good, out, strict=True):
                if isinstance(res, CuratedSignal):  # a fresh object: set, not copied (4 us)
                    object.__setattr__(res, "fingerprint", self.fingerprints[j])
                results.append((self.where[j], res))
        return results


def _work_table(ids: list[str], curated: list[CuratedSignal]) -> pa.Table:
    """A work shard: one fixed-size binary value per record holding its whole signal
    (written by :func:`_write_work_shard`).

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
            "fingerprint": pa.array([c.fingerprint for c in curated], pa.string()),
        }
    )
    return table.replace_schema_metadata({WORK_SIGNAL_KEY: json.dumps(meta).encode()})


@dataclass(frozen=True)
class WorkRows:
    """Rows of a work shard as publish takes them: the signals as one ``(n, leads, samples)``
    array (int16 ADC counts with each row's mV step, or float32 mV when a shard's counts did
    not fit int16) beside the other columns publish copies (``id``, ``adc_gain``, ``fs_raw``,
    ``repairs``).

    Publish slices, filters and joins these before any conversion, so a file that takes 40 rows
    of a shard converts 40 rows, one row group at a time.
    """

    columns: pa.Table
    data: np.ndarray
    steps: np.ndarray | None  # mV per count, per row; None when ``data`` is float32 mV

    @property
    def num_rows(self) -> int:
        return self.columns.num_rows

    def take(self, positions: np.ndarray) -> WorkRows:
        return WorkRows(self.columns.take(pa.array(positions, pa.int64())), self.data[positions],
                        None if self.steps is None else self.steps[positions])

    def slice(self, start: int, stop: int) -> WorkRows:
        return WorkRows(self.columns.slice(start, stop - start), self.data[start:stop],
                        None if self.steps is None else self.steps[start:stop])

    @staticmethod
    def concat(parts: list[WorkRows]) -> WorkRows:
        if len(parts) == 1:
            return parts[0]
        if len({p.steps is None for p in parts}) > 1:  # counts beside mV: all as mV
            parts = [p.as_mv() for p in parts]
        steps = None if parts[0].steps is None else np.concatenate([p.steps for p in parts])
        return WorkRows(pa.concat_tables([p.columns for p in parts]).combine_chunks(),
                        np.concatenate([p.data for p in parts]), steps)

    def as_mv(self) -> WorkRows:
        """float32 mV, computed as the signal stage defined them: ``float32(counts * step)``."""
        if self.steps is None:
            return self
        mv = np.empty(self.data.shape, np.float32)
        for row, (counts, step) in enumerate(zip(self.data, self.steps, strict=True)):
            # row by row: the float64 product is 0.5 MB at 500 Hz, not the batch's 60 MB
            np.multiply(counts, step, out=mv[row], casting="same_kind", dtype=np.float64)
        return WorkRows(self.columns, mv, None)

    def signal_column(self, dtype: str) -> pa.Array:
        """The published ``signal`` column: ``list<list<float32>>`` mV or ``list<list<int16>>``
        counts (``dtype``)."""
        if dtype == "int16":
            if self.steps is None:  # pragma: no cover - int16 shards always fit (else rejected)
                raise ValueError("float32 work shard for an int16 build")
            return _nested(self.data)
        return _nested(self.as_mv().data)


def read_work_rows(path: str | Path) -> WorkRows:
    """A work shard's rows; its signal bytes stay in the memory-mapped file until used."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    info = json.loads(table.schema.metadata[WORK_SIGNAL_KEY])
    n_rows, shape = table.num_rows, tuple(info["shape"])
    counts = info["encoding"] == "counts_int16"
    if n_rows:
        # a work file holds one batch: use its chunk where it is mapped (combine_chunks copies)
        chunks = table.column("signal").chunks
        blob = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
        size = int(np.prod(shape)) * (2 if counts else 4)
        raw = memoryview(blob.buffers()[1])[blob.offset * size:]
        data = np.frombuffer(raw, dtype="<i2" if counts else "<f4",
                             count=n_rows * int(np.prod(shape))).reshape(n_rows, *shape)
    else:
        data = np.zeros((0, N_LEADS, 0), np.int16 if counts else np.float32)
    steps = table.column("quant_step").to_numpy() if counts else None
    columns = _drop_work_columns(table).drop_columns(["signal"])
    return WorkRows(columns, data, steps)


def read_work_shard(path: str | Path, dtype: str) -> pa.Table:
    """A work shard as publish needs it: ``signal`` as ``list<list<float32>>`` mV (``dtype``
    float32) or ``list<list<int16>>`` ADC counts (``dtype`` int16), plus ``id``, ``adc_gain``,
    ``fs_raw`` and ``repairs``."""
    rows = read_work_rows(path)
    column = (rows.signal_column(dtype) if rows.num_rows else signals_to_arrow([], dtype))
    return rows.columns.add_column(1, "signal", column)



def _drop_work_columns(table: pa.Table) -> pa.Table:
    """What publish does not take from a work shard: the quantisation step (already applied)
    and the fingerprint (read by ``ecg_instruct.publish.duplicates`` via :func:`work_shard_fingerprints`)."""
    names = [n for n in ("quant_step", "fingerprint") if n in table.column_names]
    return table.drop_columns(names).replace_schema_metadata(None)


def work_shard_fingerprints(path: str | Path) -> tuple[list[str], list[str]]:
    """(ids, fingerprints) of the records a work shard kept; ``KeyError`` for a shard written
    before fingerprints existed (the pipeline then does that shard again)."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
        return table.column("id").to_pylist(), table.column("fingerprint").to_pylist()


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


def _write_work_shard(table: pa.Table, path: str) -> None:
    """The signals of a shard as an Arrow IPC file, uncompressed, under a temporary name first.

    Why not Parquet: its writer copies every 24-120 kB signal value into data pages before
    the file gets them; Arrow IPC hands the column's buffer to the file as it is (9 instead
    of 17 us per 100 Hz record). Work shards are read back only by this package
    (:func:`read_work_shard`, :func:`work_shard_ids`). (Parquet shards of earlier versions
    are not ``<shard>.arrow`` files: a resumed build does those shards again.)
    """
    with temporary(path) as tmp:
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)


def work_shard_ids(path: str | Path) -> list[str]:
    """The ids of the records a work shard kept, in order (the file is mapped, not read: the
    signals stay on disk)."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all().column("id").to_pylist()


def _write_atomic(table: pa.Table, path: str, **options) -> None:
    with temporary(path) as tmp:
        pq.write_table(table, tmp, **({"compression": "zstd"} | options))
        os.replace(tmp, path)
