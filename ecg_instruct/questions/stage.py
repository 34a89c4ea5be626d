"""The questions stage: ECG-QA questions -> the `ecgqa` config + question rejects.

Runs once the records are curated and their splits are final (it needs to know which ECGs were
published, and where), inside the publish step, writing into the staging folder. It reads the
release's question files every build (`benchmarks/bench_ecgqa.py` measures the read and join),
so a changed question file can never be served from stale work.

Accounting: questions in = published + rejected, each question once, checked here before
anything is swapped into place (an `AccountingError` is a bug, never a user error).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.recipe import EcgqaConfig
from ecg_instruct.questions.join import RecordOutcomes, join_question, leakage_counts_by_split
from ecg_instruct.questions.publish import (
    CONFIG_NAME,
    QuestionFiles,
    QuestionsInfo,
    read_question_ids,
)
from ecg_instruct.schema import rejects_frame
from ecg_instruct.sources.ecgqa import iter_questions, release_parts, variants_of


def run_questions(
    raw_dir: Path, cfg: EcgqaConfig, sources: list[str], ecg_token: str,
    published: Iterable[tuple[str, str]], record_rejects: pd.DataFrame, staging: Path,
    filtered: bool = False,
) -> tuple[QuestionsInfo, pd.DataFrame]:
    """Read, join, write `staging/data/ecgqa/`; returns what was done and the rejects.

    Streamed a release file at a time (a file holds 10,000 questions): what stays in memory is
    every question's id (for the accounting check), the rejects, and per split the ECG ids
    (for the benchmark policy's leakage counts)."""
    variants = list(variants_of(cfg.variant))
    records = RecordOutcomes.from_tables(published, record_rejects.to_dict("records"), filtered)
    info = QuestionsInfo(policy=cfg.split, variants=variants)
    folder = staging / "data" / CONFIG_NAME
    files = QuestionFiles(folder)
    read_ids: list[str] = []
    reject_rows: list[dict] = []
    types: dict[tuple[str, str, str], int] = {}
    ecgs_by_split: dict[str, set[str]] = {}
    for part in release_parts(raw_dir, sources, variants):
        batch: list[dict] = []
        for question in iter_questions(part):
            read_ids.append(question["id"])
            row, reject = join_question(question, records, cfg.split, ecg_token)
            if row is None:
                reject_rows.append(reject)
                info.reasons[reject["reason"]] = info.reasons.get(reject["reason"], 0) + 1
                continue
            batch.append(row)
            info.counts[row["split"]] = info.counts.get(row["split"], 0) + 1
            info.two_ecg += len(row["ecg_ids"]) == 2
            key = (row["source"], row["question_type"], row["split"])
            types[key] = types.get(key, 0) + 1
            if cfg.split == "benchmark":
                ecgs_by_split.setdefault(row["split"], set()).update(row["ecg_ids"])
            if len(batch) >= BATCH_ROWS:
                files.add(batch)
                batch = []
        files.add(batch)
    info.split_bytes = files.close()
    info.n_in = len(read_ids)
    info.by_type = [{"source": s, "question_type": t, "split": sp, "n": n}
                    for (s, t, sp), n in sorted(types.items())]
    if cfg.split == "benchmark":
        info.leakage = leakage_counts_by_split(ecgs_by_split, records)
    rejects = rejects_frame(reject_rows)
    _check(read_ids, read_question_ids(folder), rejects)
    return info, rejects


#: Questions joined before their rows go to the Arrow writer.
BATCH_ROWS = 10_000


def _check(read: list[str], published: list[str], rejects: pd.DataFrame) -> None:
    """Questions in = published + rejected, every question exactly once."""
    rejected = rejects["id"].tolist()
    out = published + rejected
    problems = []
    if len(set(read)) != len(read):
        problems.append("question ids read twice")
    if len(set(out)) != len(out):
        problems.append("questions both published and rejected, or counted twice")
    if set(out) != set(read):
        lost = sorted(set(read) - set(out))[:3]
        extra = sorted(set(out) - set(read))[:3]
        problems.append(f"lost {lost}, out of nowhere {extra}")
    if problems:
        raise AccountingError("question accounting violation: " + "; ".join(problems))
