"""The questions stage: ECG-QA questions -> the `ecgqa` config + question rejects.

Runs once the records are curated and their splits are final (it needs to know which ECGs were
published, and where), inside the publish step, writing into the staging folder. It reads the
release's question files every build: 400,000 questions are read and joined in seconds
(`benchmarks/bench_ecgqa.py`), less than checking whether they changed would save.

Accounting: questions in = published + rejected, each question once, checked here before
anything is swapped into place (an `AccountingError` is a bug, never a user error).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.recipe import EcgqaConfig
from ecg_instruct.questions.join import RecordOutcomes, join_questions, leakage_counts
from ecg_instruct.questions.publish import (
    CONFIG_NAME,
    QuestionsInfo,
    read_question_ids,
    write_question_files,
)
from ecg_instruct.schema import rejects_frame
from ecg_instruct.sources.ecgqa import read_questions, variants_of


def run_questions(
    raw_dir: Path, cfg: EcgqaConfig, sources: list[str], ecg_token: str,
    published: Iterable[tuple[str, str]], record_rejects: pd.DataFrame, staging: Path,
    filtered: bool = False,
) -> tuple[QuestionsInfo, pd.DataFrame]:
    """Read, join, write `staging/data/ecgqa/`; returns what was done and the rejects."""
    variants = list(variants_of(cfg.variant))
    records = RecordOutcomes.from_tables(published, record_rejects.to_dict("records"), filtered)
    questions = read_questions(raw_dir, sources, variants)
    result = join_questions(questions, records, cfg.split, ecg_token)
    info = QuestionsInfo(policy=cfg.split, variants=variants, n_in=len(questions))
    info.split_bytes = write_question_files(result.rows, staging / "data" / CONFIG_NAME)
    for row in result.rows:
        info.counts[row["split"]] = info.counts.get(row["split"], 0) + 1
        info.two_ecg += len(row["ecg_ids"]) == 2
    for reject in result.rejects:
        info.reasons[reject["reason"]] = info.reasons.get(reject["reason"], 0) + 1
    info.by_type = _type_counts(result.rows)
    if cfg.split == "benchmark":
        info.leakage = leakage_counts(result.rows, records)
    rejects = rejects_frame(result.rejects)
    _check(questions, read_question_ids(staging / "data" / CONFIG_NAME), rejects)
    return info, rejects


def _type_counts(rows: list[dict]) -> list[dict]:
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["source"], row["question_type"], row["split"])
        counts[key] = counts.get(key, 0) + 1
    return [{"source": s, "question_type": t, "split": sp, "n": n}
            for (s, t, sp), n in sorted(counts.items())]


def _check(questions: list[dict], published: list[str], rejects: pd.DataFrame) -> None:
    """Questions in = published + rejected, every question exactly once."""
    read = [q["id"] for q in questions]
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
