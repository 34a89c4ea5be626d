"""Signal-stage benchmark (``make bench``): our curation chain against the naive peer pipeline.

Generates a corpus of N WFDB records in the real sources' conventions (half PTB-XL style: gain
1000, ``AVR`` names, signed checksums; half MIMIC-IV-ECG style: gain 200, aVF before aVL), with
a few defective records so the reject paths run too, then measures in one run:

  raw      ``np.fromfile`` of every .dat, nothing else: the I/O limit
  naive    ``wfdb.rdsamp`` + FFT ``scipy.signal.resample`` per record, one process (peer code)
  reader   ``read_record`` alone
  stage-1  the full signal stage (read, leads, quality, resample, quantise, Parquet shard), one
           process
  stage-W  the same over all workers (a process pool over shards)
  RSS      peak RSS per worker for N records and for ``--rss-factor`` x N (files reused)

The corpus sits in the page cache for every measurement (it was just written), so all rows
compare CPU cost, not disk speed. The last line is ``signal-stage speedup vs naive: X``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CANONICAL = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MIMIC_NAMES = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]


# ---------------------------------------------------------------------------------------------
# corpus


def _base_waveforms(k: int, fs: int, seconds: float) -> list[np.ndarray]:
    """k neurokit2 12-lead simulations (canonical order, Einthoven-consistent limb leads)."""
    import neurokit2 as nk

    out = []
    for i in range(k):
        df = nk.ecg_simulate(duration=seconds, sampling_rate=fs, heart_rate=55 + 12 * i,
                             method="multileads", random_state=i)
        x = df[CANONICAL].to_numpy().T.copy()
        x[2] = x[1] - x[0]
        x[3] = -(x[0] + x[1]) / 2
        x[4] = x[0] - x[1] / 2
        x[5] = x[1] - x[0] / 2
        out.append(x)
    return out


def _write_wfdb(directory: Path, name: str, x: np.ndarray, fs: int, gain: float,
                names: list[str], signed_checksum: bool) -> None:
    """Format-16 record with the header layout wfdb.wrsamp writes (checked against wfdb)."""
    counts = np.rint(np.clip(np.nan_to_num(x, nan=-1e9) * gain, -32768, 32767)).astype("<i2")
    counts.T.tofile(directory / f"{name}.dat")
    sums = counts.astype(np.int64).sum(axis=1) % 65536
    lines = [f"{name} 12 {fs} {x.shape[1]}"]
    for i, lead in enumerate(names):
        cs = int(sums[i]) - 65536 if signed_checksum and sums[i] > 32767 else int(sums[i])
        lines.append(f"{name}.dat 16 {gain:.1f}(0)/mV 16 0 {int(counts[i, 0])} {cs} 0 {lead}")
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")


def make_corpus(root: Path, n: int, fs: int = 500, seconds: float = 10.0,
                defect_share: float = 0.02, seed: int = 0) -> list[dict]:
    """Write n records under root; returns index rows {id, source, path} like stage 1 makes."""
    rng = np.random.default_rng(seed)
    bases = _base_waveforms(6, fs, seconds)
    n_samples = bases[0].shape[1]
    t = np.arange(n_samples) / fs
    rows = []
    for i in range(n):
        mimic = i % 2 == 1
        x = np.roll(bases[i % len(bases)], rng.integers(n_samples), axis=1)
        x = x * rng.uniform(0.7, 1.3, (12, 1)) + rng.normal(0, 0.01, x.shape)
        x += rng.uniform(0.05, 0.4) * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t
                                             + rng.uniform(0, 6.3))
        defect = rng.random() < defect_share
        if defect:
            kind = rng.integers(3)
            if kind == 0:
                x[rng.integers(12)] = 0.0  # flat lead
            elif kind == 1:
                x[rng.integers(12), 1000:1300] = np.nan  # long NaN run
            else:
                x[rng.integers(12)] *= 40  # implausible amplitude
        if mimic:
            name, source = f"{40000000 + i}", "mimic"
            sub = Path("files") / f"p{i % 100:04d}"
            order = [CANONICAL.index(nm) for nm in MIMIC_NAMES]
            gain, names, signed = 200.0, MIMIC_NAMES, False
        else:
            name, source = f"{i + 1:05d}_hr", "ptbxl"
            sub = Path("records500") / f"{(i // 1000) * 1000:05d}"
            order = list(range(12))  # PTB-XL: canonical order, upper-case AVR/AVL/AVF
            gain, names, signed = 1000.0, PTBXL_NAMES, True
        (root / source / sub).mkdir(parents=True, exist_ok=True)
        _write_wfdb(root / source / sub, name, x[order], fs, gain, names, signed)
        rows.append({"id": f"{source}/{name}", "source": source, "path": str(sub / name)})
    return rows


def _self_check(root: Path, rows: list[dict]) -> None:
    """The generated headers read identically through wfdb and through our reader."""
    import wfdb

    from ecg_instruct.signals.wfdb_io import read_record

    for row in rows[:2]:
        path = root / row["source"] / row["path"]
        ref, _ = wfdb.rdsamp(str(path))
        ours = read_record(path).signal
        if not np.array_equal(ref.T, ours, equal_nan=True):
            sys.exit(f"self-check failed: {path} reads differently through wfdb")


# ---------------------------------------------------------------------------------------------
# measurements


def _paths(root: Path, rows: list[dict]) -> list[str]:
    return [str(root / r["source"] / r["path"]) for r in rows]


def bench_raw(paths: list[str]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        np.fromfile(p + ".dat", dtype="<i2")
    return len(paths) / (time.perf_counter() - t0)


def bench_naive(paths: list[str], fs_out: int, n_out: int) -> float:
    import wfdb
    from scipy import signal as sps

    t0 = time.perf_counter()
    for p in paths:
        x, fields = wfdb.rdsamp(p)
        sps.resample(x, n_out, axis=0)
    return len(paths) / (time.perf_counter() - t0)


def bench_reader(paths: list[str]) -> float:
    from ecg_instruct.errors import RecordReject
    from ecg_instruct.signals.wfdb_io import read_record

    t0 = time.perf_counter()
    for p in paths:
        try:
            read_record(p)
        except RecordReject:
            pass
    return len(paths) / (time.perf_counter() - t0)


def _shard_job(args: tuple) -> tuple[int, int, int, int]:
    """Worker: one shard through the real stage; (kept, rejected, bytes written, peak RSS KiB)."""
    from ecg_instruct.recipe import SignalsConfig
    from ecg_instruct.signals.stage import process_shard

    records, root, cfg_kwargs, out, keep = args
    cfg = SignalsConfig(**cfg_kwargs)
    roots = {"ptbxl": str(Path(root) / "ptbxl"), "mimic": str(Path(root) / "mimic")}
    kept, rejected = process_shard(records, roots, cfg, out)
    size = os.path.getsize(out) + os.path.getsize(out + ".rejects")
    if not keep:  # the RSS runs reuse the corpus many times: do not fill the disk
        os.remove(out)
        os.remove(out + ".rejects")
    return kept, rejected, size, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _warm(_: int) -> int:
    import ecg_instruct.signals.stage  # noqa: F401  (imports numpy/scipy/pyarrow once per worker)

    return os.getpid()


def run_stage(rows: list[dict], root: Path, out_dir: Path, cfg_kwargs: dict, shard: int,
              workers: int, keep: bool = True) -> dict:
    """Process rows in shards; workers == 0 means in this process. Timed after pool warm-up."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(rows[i:i + shard], str(root), cfg_kwargs, str(out_dir / f"shard-{i // shard:05d}"),
             keep) for i in range(0, len(rows), shard)]
    if workers == 0:
        t0 = time.perf_counter()
        results = [_shard_job(j) for j in jobs]
        elapsed = time.perf_counter() - t0
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_warm, range(workers * 2)))
            t0 = time.perf_counter()
            results = list(pool.map(_shard_job, jobs))
            elapsed = time.perf_counter() - t0
    kept = sum(r[0] for r in results)
    return {"rate": len(rows) / elapsed, "kept": kept, "rejected": sum(r[1] for r in results),
            "bytes": sum(r[2] for r in results), "rss_kib": max(r[3] for r in results)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="records in the corpus (default 2000)")
    ap.add_argument("--fs-out", type=int, default=100, help="target rate (corpus is 500 Hz)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shard-size", type=int, default=256)
    ap.add_argument("--dtype", choices=["float32", "int16"], default="float32")
    ap.add_argument("--rss-factor", type=int, default=10,
                    help="also run the pool over this many x N records to show flat RSS (0: skip)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the corpus/output here")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-signals-")) if args.keep is None else args.keep
    try:
        _run(args, tmp)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path) -> None:
    root = tmp / "raw"
    t0 = time.perf_counter()
    rows = make_corpus(root, args.n)
    paths = _paths(root, rows)
    _self_check(root, rows)
    raw_bytes = sum(os.path.getsize(p + ".dat") + os.path.getsize(p + ".hea") for p in paths)
    print(f"corpus: {args.n} records (500 Hz x 10 s, 12 leads), {raw_bytes / args.n / 1e3:.1f} kB "
          f"per record as WFDB, generated in {time.perf_counter() - t0:.1f} s", flush=True)
    n_out = int(args.fs_out * 10)
    cfg = {"fs": args.fs_out, "duration_s": 10.0, "dtype": args.dtype}

    raw = bench_raw(paths)
    naive = bench_naive(paths, args.fs_out, n_out)
    reader = bench_reader(paths)
    single = run_stage(rows, root, tmp / "out-1", cfg, args.shard_size, workers=0)
    multi = run_stage(rows, root, tmp / "out-w", cfg, args.shard_size, workers=args.workers)
    other = "int16" if args.dtype == "float32" else "float32"
    sub = rows[: min(len(rows), 4 * args.shard_size)]
    alt = run_stage(sub, root, tmp / "out-alt", {**cfg, "dtype": other}, args.shard_size, 0)

    cores = args.workers
    print(f"{'measurement':<34}{'records/s':>12}{'per core':>12}")
    for label, rate, n_cores in (
        ("raw np.fromfile (I/O limit)", raw, 1),
        ("naive: wfdb.rdsamp + FFT resample", naive, 1),
        ("our reader alone", reader, 1),
        ("full stage, 1 process", single["rate"], 1),
        (f"full stage, {cores} workers", multi["rate"], cores),
    ):
        print(f"{label:<34}{rate:>12.0f}{rate / n_cores:>12.0f}")
    print(f"kept {multi['kept']}, rejected {multi['rejected']} (injected defects)")
    print(f"reader vs naive: {reader / naive:.1f}x; full stage per core vs naive: "
          f"{multi['rate'] / cores / naive:.1f}x; raw-read limit / full stage (all workers): "
          f"{raw / multi['rate']:.1f}x")
    for dtype, res in ((args.dtype, multi), (other, alt)):
        print(f"bytes per record on disk ({dtype}, {args.fs_out} Hz, stage shards): "
              f"{res['bytes'] / max(res['kept'], 1) / 1e3:.1f} kB")
    print(f"peak RSS per worker, N={args.n}: {multi['rss_kib'] / 1024:.0f} MiB", flush=True)
    if args.rss_factor > 1:
        big = rows * args.rss_factor
        res = run_stage(big, root, tmp / "out-rss", cfg, args.shard_size, args.workers,
                        keep=False)
        print(f"peak RSS per worker, N={len(big)}: {res['rss_kib'] / 1024:.0f} MiB "
              f"({res['rate']:.0f} records/s)")
    print(f"signal-stage speedup vs naive: {multi['rate'] / naive:.1f}")


if __name__ == "__main__":
    main()
