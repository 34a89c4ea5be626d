"""Signal curation: WFDB -> canonical 12-lead, quality-checked, resampled, quantised mV.

The building blocks the signal stage chains per record::

    rec = read_record(path)                                   # wfdb_io: fast format-16 reader
    x = rec.signal[canonical_lead_index(rec.sig_names)]       # leads: canonical order
    x, notes = check_and_repair(x, rec.fs, quality_cfg)       # quality: named rejects
    x = resample(x, rec.fs, fs_out)                           # resample: resample_poly
    x = fit_length(x, n_target, policy)
    x = quantise(x, 1 / output_gain(rec.adc_gain)).astype(np.float32)
    column = signals_to_arrow([x, ...])                       # storage: Parquet column

That is the one-record path (``curate.curate_record``). The stage's fast path does the same
on int16 ADC counts read straight from the ``.dat`` files, a batch at a time, through the
compiled loops in ``kernels.py`` (``curate.process_shard``); both give the same results.

Each step raises :class:`~ecg_instruct.errors.RecordReject` for a bad record. The function
``resample`` is deliberately not re-exported here: it would shadow the ``resample`` module as an
attribute of this package; import it from ``ecg_instruct.signals.resample``.
"""

from ecg_instruct.signals.leads import CANONICAL_LEADS, canonical_lead_index, to_canonical
from ecg_instruct.signals.quality import QUALITY_REASONS, QualityConfig, check_and_repair
from ecg_instruct.signals.resample import fit_length, quantise
from ecg_instruct.signals.storage import (
    counts_to_mv,
    mv_to_counts,
    output_gain,
    parquet_write_options,
    signal_arrow_type,
    signals_to_arrow,
)
from ecg_instruct.signals.wfdb_io import EcgRecord, WfdbHeader, parse_header, read_record

__all__ = [
    "CANONICAL_LEADS", "QUALITY_REASONS", "EcgRecord", "QualityConfig", "WfdbHeader",
    "canonical_lead_index", "check_and_repair", "counts_to_mv", "fit_length", "mv_to_counts",
    "output_gain", "parquet_write_options", "parse_header", "quantise", "read_record",
    "signal_arrow_type", "signals_to_arrow", "to_canonical",
]
