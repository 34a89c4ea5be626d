"""Index-stage benchmark (``make bench``): `build_index` on a full-size MIMIC-IV-ECG release.

Writes the metadata of an 800,035-record MIMIC-IV-ECG 1.0 mirror (``record_list.csv`` and
``machine_measurements.csv`` with the real column sets; no signal files: the index stage never
opens them) and measures, on one core:

  index    ``build_index`` for the mirror (read both CSVs, clean, join, split per patient)
  hash     what the build does next under the same ``index`` timer: the index and its rejects
           serialised to Parquet, whose bytes key the work folder (``index.stage.index_digest``)

The mirror is shaped like the release where it matters for speed: ~161k patients (5 records
each), 1-7 statements of a few hundred distinct ones per record (some with a quoted comma),
the 29999 sentinel in some measurement cells, the measurements in another row order than the
record list, and a few records without a measurements row. The last line is
``index stage: N records in X s (Y records/s)`` (index + hash).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_signals import run_in_scratch  # noqa: E402

try:
    from ecg_instruct.sample.mirror import MIMIC_MEASUREMENT_COLUMNS, MIMIC_RECORD_COLUMNS
except ImportError:  # a checkout before the sample package
    from ecg_instruct.sample import MIMIC_MEASUREMENT_COLUMNS, MIMIC_RECORD_COLUMNS

#: Records in MIMIC-IV-ECG 1.0 (and ~161k patients).
RELEASE_RECORDS = 800_035
RECORDS_PER_PATIENT = 5


def _statement_vocabulary(rng: np.random.Generator, size: int = 400) -> np.ndarray:
    """Machine statements as the release has them: short phrases, a few with a comma."""
    words = ["Sinus rhythm", "Sinus bradycardia", "Sinus tachycardia", "Atrial fibrillation",
             "Left axis deviation", "Right bundle branch block", "Left ventricular hypertrophy",
             "Possible anterior infarct - age undetermined", "Borderline ECG", "Normal ECG",
             "Abnormal ECG", "Low QRS voltages in precordial leads", "Prolonged QT interval",
             "Nonspecific T wave abnormalities", "Inferior/lateral ST-T changes",
             "Poor R wave progression - probable normal variant", "with 1st degree A-V block",
             "Premature ventricular contractions", "Lateral leads, possible ischemia"]
    picks = rng.integers(len(words), size=(size, 2))
    return np.array([words[a] if a == b else f"{words[a]}, {words[b].lower()}"
                     if (a + b) % 7 == 0 else f"{words[a]} {words[b].lower()}"
                     for a, b in picks])


def write_mirror(root: Path, n: int, seed: int = 0) -> int:
    """`root/mimic-iv-ecg/{record_list,machine_measurements}.csv` for `n` records (~1 in 1,000
    without a measurements row); returns how many have none."""
    rng = np.random.default_rng(seed)
    folder = root / "mimic-iv-ecg"
    folder.mkdir(parents=True, exist_ok=True)
    n_subjects = max(1, n // RECORDS_PER_PATIENT)
    subjects = np.sort(rng.choice(np.arange(10_000_000, 20_000_000), n_subjects, replace=False))
    subject = np.sort(subjects[rng.integers(n_subjects, size=n)])
    study = rng.choice(np.arange(40_000_000, 60_000_000), n, replace=False)
    subject_s, study_s = subject.astype(str), study.astype(str)
    prefix = pd.Series(subject_s).str[:4].to_numpy(dtype=object)
    path = "files/p" + prefix + "/p" + subject_s.astype(object) + "/s" + study_s.astype(object) \
        + "/" + study_s.astype(object)
    seconds = rng.integers(0, 10**8, size=n)
    ecg_time = (np.datetime64("2110-01-01T00:00:00") + seconds).astype(str)
    ecg_time = np.char.replace(ecg_time, "T", " ")
    pd.DataFrame({"subject_id": subject_s, "study_id": study_s, "file_name": study_s,
                  "ecg_time": ecg_time, "path": path})[MIMIC_RECORD_COLUMNS].to_csv(
        folder / "record_list.csv", index=False)

    vocabulary = np.append(_statement_vocabulary(rng), "").astype(object)  # pointers, not U100
    n_statements = rng.integers(1, 8, size=n)
    columns: dict[str, np.ndarray] = {"subject_id": subject_s, "study_id": study_s,
                                      "cart_id": rng.integers(6_000_000, 7_000_000, n).astype(str),
                                      "ecg_time": ecg_time}
    for k in range(18):
        cells = rng.integers(len(vocabulary) - 1, size=n)
        columns[f"report_{k}"] = vocabulary[np.where(k < n_statements, cells, -1)]
    columns["bandwidth"] = np.full(n, "0.005-150 Hz")
    columns["filtering"] = np.full(n, "60 Hz notch Baseline filter")
    for name, low, high in (("rr_interval", 400, 1500), ("p_onset", 20, 60), ("p_end", 100, 160),
                            ("qrs_onset", 180, 220), ("qrs_end", 250, 330), ("t_end", 500, 650),
                            ("p_axis", -60, 120), ("qrs_axis", -90, 180), ("t_axis", -60, 150)):
        values = rng.integers(low, high, size=n).astype(str)
        columns[name] = np.where(rng.random(n) < 0.05, "29999", values)
    measurements = pd.DataFrame(columns)[MIMIC_MEASUREMENT_COLUMNS]
    keep = rng.random(n) >= 0.001  # a record without a measurements row now and then
    measurements = measurements[keep].sort_values("study_id", kind="stable")
    measurements.to_csv(folder / "machine_measurements.csv", index=False)
    return int((~keep).sum())


def _stored_index_bytes():
    """`index.stored.stored_index_bytes`, or where older commits had it: `stored_index`, or
    inline before it was a function (so that `PYTHONPATH=<older checkout>` times the same step)."""
    try:
        from ecg_instruct.index.stored import stored_index_bytes
    except ImportError:
        try:
            from ecg_instruct.stored_index import stored_index_bytes
            return stored_index_bytes
        except ImportError:
            pass
        import json

        from ecg_instruct.workio import parquet_bytes

        def stored_index_bytes(index: pd.DataFrame, rejects: pd.DataFrame) -> tuple[bytes, bytes]:
            stored = index.copy()
            stored["measurements"] = [json.dumps(v, sort_keys=True) if isinstance(v, dict)
                                      else "" for v in index["measurements"]]
            return parquet_bytes(stored), parquet_bytes(rejects.astype(str))
    return stored_index_bytes


def _run(args: argparse.Namespace, tmp: Path) -> None:
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.index.table import build_index

    raw = tmp / "raw"
    started = time.perf_counter()
    if not (raw / "mimic-iv-ecg" / "machine_measurements.csv").exists():
        # in a child process: its memory (GBs of generated strings) is not the index's
        writer = multiprocessing.get_context("fork").Process(target=write_mirror,
                                                             args=(raw, args.n))
        writer.start()
        writer.join()
        if writer.exitcode:
            raise SystemExit(f"writing the mirror failed (exit code {writer.exitcode})")
        print(f"mirror: {args.n:,} records, CSVs written in {time.perf_counter() - started:.1f} s",
              flush=True)
    recipe = load_recipe("meit")
    index_s, index_cpu, (index, rejects) = _timed(lambda: build_index(raw, recipe, ["mimic"]))
    hash_s, hash_cpu, content = _timed(lambda: _stored_index_bytes()(index, rejects))
    n = len(index) + len(rejects)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"build_index: {len(index):,} rows + {len(rejects):,} rejects in {index_s:.2f} s "
          f"({n / index_s:,.0f} records/s; {index_cpu:.2f} CPU s)")
    print(f"index hash:  {sum(len(b) for b in content) / 1e6:.1f} MB of Parquet in {hash_s:.2f} s "
          f"({n / hash_s:,.0f} records/s; {hash_cpu:.2f} CPU s)")
    print(f"peak RSS: {peak_mb:,.0f} MB")
    total = index_s + hash_s
    print(f"index stage: {n:,} records in {total:.2f} s ({n / total:,.0f} records/s; "
          f"{index_cpu + hash_cpu:.2f} CPU s)")


def _timed(work):
    """(wall s, CPU s of this process, result): CPU seconds stay meaningful on a shared
    machine, where wall time also counts other jobs' turns."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=RELEASE_RECORDS, help="records in the mirror")
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder for the mirror, kept (and reused) after the run")
    run_in_scratch(_run, parser.parse_args(), "bench-index-")


if __name__ == "__main__":
    main()
