"""Stage 4 (signals): one shard of index rows -> curated signals or named rejects.

Runs in worker processes: everything a worker needs arrives as plain arguments, and a shard's
output appears under its final name only once completely written (that rename is what makes the
shard "done" for a resumed build).
"""

from __future__ import annotations

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
from ecg_instruct.signals.quality import QualityConfig, check_and_repair
from ecg_instruct.signals.resample import fit_length, quantise, resample
from ecg_instruct.signals.storage import signals_to_arrow
from ecg_instruct.signals.wfdb_io import read_record


@dataclass(frozen=True)
class CuratedSignal:
    signal: np.ndarray  # float32 (12, n) mV, quantised to the ADC step
    adc_gain: float  # counts per mV of the source (the quantisation step is 1 / adc_gain)
    fs_raw: float
    repairs: list[str]


def curate_record(record_path: Path, cfg: SignalsConfig, quality: QualityConfig) -> CuratedSignal:
    """Read, check, reorder, resample and quantise one record; RecordReject on any problem."""
    ecg = read_record(record_path)
    order = canonical_lead_index(ecg.sig_names)
    signal = ecg.signal[order]
    gains = np.asarray(ecg.adc_gain, dtype=np.float64)[order]
    if not np.all(gains == gains[0]):
        raise RecordReject("mixed_gain", f"leads have different ADC gains {sorted(set(gains))}")
    gain = float(gains[0]) or 200.0
    signal, repairs = check_and_repair(signal, ecg.fs, quality)
    if ecg.fs != cfg.fs:
        signal = quantise(resample(signal, ecg.fs, cfg.fs), 1.0 / gain)
    signal = fit_length(signal, cfg.n_samples, cfg.length_policy)
    signal = quantise(signal, 1.0 / gain).astype(np.float32)
    return CuratedSignal(signal, gain, float(ecg.fs), repairs)


def process_shard(
    records: list[dict], raw_roots: dict[str, str], cfg: SignalsConfig, output: str
) -> tuple[int, int]:
    """Curate one shard and write `<output>` (signals) and `<output>.rejects` atomically.

    Returns (records kept, records rejected).
    """
    quality = QualityConfig.from_dict(cfg.quality, source="recipe signals.quality")
    ids, signals, gains, fs_raw, repairs, rejects = [], [], [], [], [], []
    for record in records:
        try:
            path = safe_join(Path(raw_roots[record["source"]]), record["path"])
            curated = curate_record(path, cfg, quality)
        except UnsafePath as exc:
            rejects.append((record, "unsafe_path", str(exc)))
            continue
        except RecordReject as exc:
            rejects.append((record, exc.reason, exc.detail))
            continue
        ids.append(record["id"])
        signals.append(curated.signal)
        gains.append(curated.adc_gain)
        fs_raw.append(curated.fs_raw)
        repairs.append(curated.repairs)
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "signal": _signal_column(signals, gains, cfg.dtype),
            "adc_gain": pa.array(gains, pa.float32()),
            "fs_raw": pa.array(fs_raw, pa.float32()),
            "repairs": pa.array(repairs, pa.list_(pa.string())),
        }
    )
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
    _write_atomic(table, output)
    return len(ids), len(rejects)


def _portable_detail(detail: str, root: str) -> str:
    """One line, with the mirror's location removed: published bytes must not depend on where
    the raw files were (error messages from readers quote absolute paths)."""
    for prefix in {str(Path(root)), str(Path(root).resolve())}:
        detail = detail.replace(prefix + os.sep, "").replace(prefix, ".")
    return " ".join(detail.split())


def _signal_column(signals: list[np.ndarray], gains: list[float], dtype: str) -> pa.Array:
    """float32 mV as is; int16 as ADC counts (mV = counts / adc_gain, baseline already removed)."""
    if dtype == "int16":
        counts = [
            np.rint(s.astype(np.float64) * g).astype(np.int16)
            for s, g in zip(signals, gains, strict=True)
        ]
        return signals_to_arrow(counts, "int16")
    return signals_to_arrow(signals, "float32")


def _write_atomic(table: pa.Table, path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)

