"""Questions-stage benchmark (``make bench``): ECG-QA questions read and joined per second.

Writes a synthetic release shaped like ECG-QA 1.0.2's PTB-XL template edition at full size
(400,000 questions in chunk files of 10,000, named by their first ``sample_id``; single-ECG and
two-ECG questions about 21,799 ECGs, in the release's field order; generated, never copied), and
build outcomes for those ECGs (most published in train/validation/test, a few rejected by
curation, a few absent), then times, on one core:

  ours     ``sources.ecgqa.read_questions`` + ``questions.join.join_questions`` (read, validate
           each sample, join by record id, split policy, rejects with reasons, messages)
  naive    the per-file pandas recipe a user writes without it: ``pd.read_json`` of each file,
           ``explode`` of ``ecg_id``, a ``merge`` with the records table and a ``groupby``
           back to one split per question (no validation, no reasons, no messages)

and ``hash``: what the questions stage does with the same files in every build before it decides
whether its work is current (``questions.stage.files_digest``: sha256 of their bytes).

Each is the best of ``--repeats`` runs. The last line is ``questions stage: N questions joined in
X s (Y questions/s; Z per CPU second; R x naive wall, S x CPU)``: CPU seconds stay meaningful on
a shared machine, where wall time also counts other jobs' turns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_signals import run_in_scratch  # noqa: E402

from ecg_instruct.questions.join import RecordOutcomes, join_questions, record_id  # noqa: E402
from ecg_instruct.questions.stage import files_digest, release_files  # noqa: E402
from ecg_instruct.sources.ecgqa import QUESTION_TYPES, read_questions, release_parts  # noqa: E402

N_QUESTIONS = 400_000
N_ECGS = 21_799  # PTB-XL's records
CHUNK = 10_000


def write_release(raw: Path, n: int, seed: int = 0) -> None:
    """`raw/ecg-qa/ecgqa/ptbxl/template/{train,valid,test}/<first sample_id>.json` (80 / 10 / 10 %),
    indented like the release."""
    rng = np.random.default_rng(seed)
    counts = {"train": int(n * 0.8), "valid": int(n * 0.1)}
    counts["test"] = n - sum(counts.values())
    attributes = ["sinus rhythm", "atrial fibrillation", "left bundle branch block",
                  "static noise", "qrs duration", "rr interval", "inferior myocardial infarction"]
    for split, count in counts.items():
        folder = raw / "ecg-qa" / "ecgqa" / "ptbxl" / "template" / split
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, count, CHUNK):
            samples = []
            for sample_id in range(start, min(count, start + CHUNK)):
                kind = QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
                two = kind.startswith("comparison")
                ecgs = [int(e) for e in rng.choice(N_ECGS, size=2 if two else 1, replace=False) + 1]
                attribute = attributes[int(rng.integers(len(attributes)))]
                samples.append({
                    "template_id": int(rng.integers(1, 71)), "question_id": sample_id % 5000,
                    "sample_id": sample_id, "question_type": kind,
                    "attribute_type": "scp_code",
                    "question": f"Does this ECG show symptoms of {attribute}?" if not two else
                    f"Does the second ECG show {attribute} that the first ECG does not?",
                    "answer": ["yes"] if rng.random() < 0.5 else ["no"],
                    "ecg_id": ecgs, "attribute": [attribute],
                })
            (folder / f"{start}.json").write_text(json.dumps(samples, indent=4))


def record_outcomes(seed: int = 0) -> tuple[RecordOutcomes, pd.DataFrame]:
    """Published (80 / 10 / 10 % by a fold draw), ~1 % rejected, ~0.5 % not in the index."""
    rng = np.random.default_rng(seed + 1)
    published, rejects = [], []
    for native in range(1, N_ECGS + 1):
        draw = rng.random()
        rid = record_id("ptbxl", native)
        if draw < 0.005:
            continue
        if draw < 0.015:
            rejects.append({"id": rid, "stage": "signals", "reason": "flat_lead",
                            "detail": "V4 flat"})
            continue
        fold = int(rng.integers(1, 11))
        published.append((rid, "train" if fold <= 8 else "validation" if fold == 9 else "test"))
    table = pd.DataFrame(published, columns=["id", "split"])
    return RecordOutcomes.from_tables(published, rejects), table


def naive(raw: Path, records: pd.DataFrame) -> int:
    """What a user's pandas script does: per-file read_json, explode, merge, groupby."""
    frames = []
    for path in sorted((raw / "ecg-qa" / "ecgqa" / "ptbxl" / "template").glob("*/*.json")):
        frame = pd.read_json(path)
        frame["release_split"] = path.parent.name
        frames.append(frame)
    questions = pd.concat(frames, ignore_index=True)
    exploded = questions[["sample_id", "release_split", "ecg_id"]].explode("ecg_id")
    exploded["id"] = "ptbxl/" + exploded["ecg_id"].astype(int).map("{:05d}".format)
    joined = exploded.merge(records, on="id", how="left")
    per_question = joined.groupby(["release_split", "sample_id"])["split"].agg(
        lambda s: s.iloc[0] if s.notna().all() and s.nunique() == 1 else None)
    return len(per_question)


def _timed(work):
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _run(args: argparse.Namespace, tmp: Path) -> None:
    raw = tmp / "raw"
    if not (raw / "ecg-qa").exists():
        started = time.perf_counter()
        write_release(raw, args.n)
        print(f"release: {args.n:,} questions written in {time.perf_counter() - started:.1f} s",
              flush=True)
    outcomes, table = record_outcomes()
    best = {"ours": (float("inf"), 0.0), "naive": (float("inf"), 0.0),
            "hash": (float("inf"), 0.0)}
    files = release_files(raw, release_parts(raw, ["ptbxl"], ["template"]))
    for _ in range(args.repeats):
        wall, cpu, _digest = _timed(lambda: files_digest(files))
        best["hash"] = min(best["hash"], (wall, cpu))
        wall, cpu, result = _timed(lambda: join_questions(
            read_questions(raw, ["ptbxl"], ["template"]), outcomes))
        assert result.n_in == args.n
        best["ours"] = min(best["ours"], (wall, cpu))
        wall, cpu, n = _timed(lambda: naive(raw, table))
        assert n == args.n
        best["naive"] = min(best["naive"], (wall, cpu))
    reasons = pd.Series([r["reason"] for r in result.rejects]).value_counts().to_dict()
    print(f"published {len(result.rows):,}, rejected {reasons}")
    for name in ("ours", "naive"):
        wall, cpu = best[name]
        print(f"{name:6s} {args.n / wall:10,.0f} questions/s ({wall:.2f} s, {cpu:.2f} CPU s)")
    (ours, ours_cpu), (base, base_cpu) = best["ours"], best["naive"]
    size = sum(path.stat().st_size for _, path in files)
    print(f"hash   {size / 1e6:,.1f} MB of question files in {best['hash'][1] * 1e3:.0f} ms CPU "
          f"({best['hash'][1] / ours_cpu:.1%} of ours)")
    print(f"questions stage: {args.n:,} questions joined in {ours:.2f} s "
          f"({args.n / ours:,.0f} questions/s; {args.n / ours_cpu:,.0f} per CPU second; "
          f"{base / ours:.2f} x naive wall, {base_cpu / ours_cpu:.2f} x CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N_QUESTIONS, help="questions in the release")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder for the release, kept (and reused) after the run")
    run_in_scratch(_run, parser.parse_args(), "bench-ecgqa-")


if __name__ == "__main__":
    main()
