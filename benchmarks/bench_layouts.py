"""What the published signal layout costs to write: CPU per record and bytes per record.

Not part of ``make bench``: this is the measurement behind issue 17's open decision. At 500 Hz
the publish stage is bound by encoding the signal column. Is that bound by the nested
``list<list<float32>>`` layout that ``datasets``' ``Array2D`` needs, by its dictionary
encoding, or by compression? Each row writes the same records (generated like
``bench_build.py``'s mirror: 500 Hz x 10 s, quantised to a 1 uV ADC step) to an in-memory
Parquet file of 128-row row groups, one process, best of two, CPU seconds.

    python benchmarks/bench_layouts.py [--n 512]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
LEAF = "signal.list.element.list.element"


def records(n: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """(int16 counts (n, 12, 5000), mV per count): bench_build's signals at PTB-XL's gain."""
    from bench_build import varied_ecg
    from bench_signals import _base_waveforms

    rng = np.random.default_rng(seed)
    bases, t = _base_waveforms(3, 500, 10.0), np.arange(5000) / 500
    out = np.empty((n, 12, 5000), np.int16)
    for i in range(n):
        out[i] = np.rint(varied_ecg(rng, bases[i % 3], t) * 1000)
    return out, 0.001


def nested(values: np.ndarray) -> pa.Array:
    rows, leads, samples = values.shape
    inner = pa.ListArray.from_arrays(
        pa.array(np.arange(0, rows * leads * samples + 1, samples, dtype=np.int32)),
        pa.array(values.reshape(-1)))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, rows * leads + 1, leads, dtype=np.int32)),
                                    inner)


def blob(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(values[0].nbytes), len(values),
                                                [None, pa.py_buffer(values)])


def cost(column: pa.Array, **options) -> tuple[float, int]:
    """(CPU seconds, bytes) of writing `column` as the file's one column."""
    best, size = float("inf"), 0
    for _ in range(2):
        sink = io.BytesIO()
        started = time.process_time()
        pq.write_table(pa.table({"signal": column}), sink, row_group_size=128, **options)
        best = min(best, time.process_time() - started)
        size = len(sink.getvalue())
    return best, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512, help="records written per layout")
    args = parser.parse_args(argv)
    counts, step = records(args.n)
    mv = (counts * step).astype(np.float32)
    diff = np.diff(counts, axis=2, prepend=0).astype(np.int16)
    zstd = {"compression": "zstd", "compression_level": 3}
    rows = [
        ("published now: nested float32, dictionary + zstd", nested(mv),
         {**zstd, "use_dictionary": True, "dictionary_pagesize_limit": 1 << 20}),
        ("nested float32, dictionary, uncompressed", nested(mv),
         {"compression": "none", "use_dictionary": True}),
        ("nested float32, BYTE_STREAM_SPLIT + zstd", nested(mv),
         {**zstd, "use_dictionary": False, "column_encoding": {LEAF: "BYTE_STREAM_SPLIT"}}),
        ("nested int16 counts, DELTA_BINARY_PACKED + zstd (dtype: int16)", nested(counts),
         {**zstd, "use_dictionary": False, "column_encoding": {LEAF: "DELTA_BINARY_PACKED"}}),
        ("one binary value per record, float32, zstd", blob(mv), {**zstd, "use_dictionary": False}),
        ("one binary value per record, int16 counts, zstd", blob(counts),
         {**zstd, "use_dictionary": False}),
        ("one binary value per record, int16 differences, zstd", blob(diff),
         {**zstd, "use_dictionary": False}),
        ("one binary value per record, int16 differences, lz4", blob(diff),
         {"compression": "lz4", "use_dictionary": False}),
        ("one binary value per record, int16 counts, uncompressed", blob(counts),
         {"compression": "none", "use_dictionary": False}),
    ]
    print(f"{args.n} records, 500 Hz x 10 s, 12 leads; one process, CPU per record to write")
    print(f"  {'layout':<66}{'ms/record':>10}{'kB/record':>11}")
    for label, column, options in rows:
        seconds, size = cost(column, **options)
        print(f"  {label:<66}{seconds / args.n * 1e3:>10.2f}{size / args.n / 1e3:>11.1f}")


if __name__ == "__main__":
    main()
