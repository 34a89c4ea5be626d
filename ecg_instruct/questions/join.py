"""Join ECG-QA questions to the curated records of the same build, and give each a split.

Pure functions over plain tables, so the questions stage (and `make bench`) can run them on
hundreds of thousands of questions without a build around them.

- An ECG is named by our record id: PTB-XL `ecg_id` 17229 is `ptbxl/17229`, 1 is `ptbxl/00001`
  (the source configs' `id` column); MIMIC-IV-ECG `study_id` 40689238 is `mimic/40689238`.
- A question whose ECG was not published is rejected as `missing_ecg`, naming the ECG and why:
  not in this build's index (not in the mirror, or outside `--split`), or rejected by curation
  with the stage and reason it has in `rejects.parquet`.
- Split policy `ours` (default): a question goes to the split its ECGs have in this build (PTB-XL
  `strat_fold`, MIMIC-IV-ECG patient hash), so no ECG of a validation or test question is in any
  train row of any config; ECGs of different splits make the question `cross_split`.
  Policy `benchmark` keeps ECG-QA's own train/valid/test (for numbers comparable with published
  ECG-QA results), and `leakage_counts` says how many ECGs of each split appear in another split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecg_instruct.sources.ecgqa import SPLIT_NAMES

#: What a question reject's `source` and `stage` columns hold in `rejects.parquet`.
QUESTION_SOURCE = "ecgqa"
QUESTION_STAGE = "questions"
#: The system turn of every question: the answer format the metric compares.
SYSTEM_PROMPT = ("You are an expert cardiologist. Answer the question about the ECG recording(s) "
                 "with the answer terms only, separated by commas.")
ORDINALS = ("First", "Second")


def record_id(source: str, native: int) -> str:
    """Our record id for an ECG-QA `ecg_id` (PTB-XL, zero-padded to 5 like `sources/ptbxl.py`)
    or `study_id` (MIMIC-IV-ECG)."""
    if source == "ptbxl":
        return f"ptbxl/{int(native):05d}"
    return f"{source}/{int(native)}"


def answer_text(answer: Sequence[str]) -> str:
    """The assistant turn: the released answer terms, in order, joined by ", "."""
    return ", ".join(answer)


def question_messages(question: str, answer: Sequence[str], n_ecgs: int,
                      ecg_token: str = "<ecg>") -> list[dict[str, str]]:
    """system / user (one placeholder per ECG, in the question's order) / assistant (answer).

    Two ECGs are labelled first and second, the words ECG-QA's comparison questions use."""
    if n_ecgs == 1:
        prompt = f"{ecg_token}\n{question}"
    else:
        prompt = "".join(f"{ORDINALS[k]} ECG: {ecg_token}\n" for k in range(n_ecgs)) + question
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer_text(answer)}]


@dataclass(frozen=True)
class RecordOutcomes:
    """What the build did with each record: published (with its split) or rejected (why)."""

    published: Mapping[str, str]  # id -> split
    rejected: Mapping[str, str]  # id -> "stage/reason: detail"
    filtered: bool = False  # the build was limited by --source/--split

    @classmethod
    def from_tables(cls, published: Iterable[tuple[str, str]],
                    rejects: Iterable[Mapping[str, Any]], filtered: bool = False
                    ) -> RecordOutcomes:
        """From (id, split) pairs and reject rows (id, stage, reason, detail)."""
        rejected = {}
        for row in rejects:
            detail = f": {row['detail']}" if row.get("detail") else ""
            rejected[row["id"]] = f"{row['stage']}/{row['reason']}{detail}"
        return cls(dict(published), rejected, filtered)

    def why_missing(self, record: str) -> str:
        if record in self.rejected:
            return f"{record} rejected by curation ({self.rejected[record]})"
        where = "this build's index (not in the mirror, or outside --split/--source)" \
            if self.filtered else "this build's index (not in the mirror)"
        return f"{record} is not in {where}"


@dataclass
class JoinResult:
    """Published question rows and rejects, in the order the questions came."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_in(self) -> int:
        return len(self.rows) + len(self.rejects)


def _reject(question: Mapping[str, Any], reason: str, detail: str) -> dict[str, str]:
    return {"id": question["id"], "source": QUESTION_SOURCE, "stage": QUESTION_STAGE,
            "reason": reason, "detail": detail}


def join_questions(questions: Iterable[Mapping[str, Any]], records: RecordOutcomes,
                   policy: str = "ours", ecg_token: str = "<ecg>") -> JoinResult:
    """Each question (rows of `sources.ecgqa.read_questions`) published or rejected, once."""
    result = JoinResult()
    for question in questions:
        row, reject = join_question(question, records, policy, ecg_token)
        if row is not None:
            result.rows.append(row)
        else:
            result.rejects.append(reject)
    return result


def join_question(question: Mapping[str, Any], records: RecordOutcomes, policy: str = "ours",
                  ecg_token: str = "<ecg>") -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """One question: (published row, None) or (None, reject row)."""
    if policy not in ("ours", "benchmark"):
        raise ValueError(f"unknown split policy {policy!r}")
    published = records.published
    if question["problem"] is not None:
        return None, _reject(question, "malformed_question",
                             f"{question['file']}: {question['problem']}")
    ids = [record_id(question["source"], native) for native in question["ecg_native"]]
    missing = [i for i in ids if i not in published]
    if missing:
        return None, _reject(question, "missing_ecg", "; ".join(
            records.why_missing(i) for i in missing))
    splits = [published[i] for i in ids]
    if policy == "benchmark":
        split = SPLIT_NAMES[question["release_split"]]
    elif len(set(splits)) > 1:
        return None, _reject(question, "cross_split", ", ".join(
            f"{i} is in {s}" for i, s in zip(ids, splits, strict=True)))
    else:
        split = splits[0]
    return {
        "id": question["id"], "source": question["source"], "split": split,
        "variant": question["variant"], "release_split": question["release_split"],
        "sample_id": question["sample_id"],
        "messages": question_messages(question["question"], question["answer"], len(ids),
                                      ecg_token),
        "question": question["question"], "question_type": question["question_type"],
        "attribute_type": question["attribute_type"], "template_id": question["template_id"],
        "question_id": question["question_id"], "answer": list(question["answer"]),
        "attribute": question["attribute"], "ecg_ids": ids,
    }, None


def leakage_counts(rows: Iterable[Mapping[str, Any]], records: RecordOutcomes
                   ) -> dict[str, dict[str, int]]:
    """For `ecgqa.split: benchmark`: per question split, its distinct ECGs and how many of them
    also appear in another split of any config (a source config's row, or a question of another
    split). Under the default policy every count of `elsewhere` is 0 by construction."""
    ecgs_by_split: dict[str, set[str]] = {}
    for row in rows:
        ecgs_by_split.setdefault(row["split"], set()).update(row["ecg_ids"])
    return leakage_counts_by_split(ecgs_by_split, records)


def leakage_counts_by_split(ecgs_by_split: Mapping[str, set[str]], records: RecordOutcomes
                            ) -> dict[str, dict[str, int]]:
    """`leakage_counts` from each question split's set of ECG ids."""
    counts = {}
    for split, ecgs in ecgs_by_split.items():
        elsewhere = {e for e in ecgs if records.published.get(e) != split}
        for other, theirs in ecgs_by_split.items():
            if other != split:
                elsewhere |= ecgs & theirs
        counts[split] = {"ecgs": len(ecgs), "elsewhere": len(elsewhere)}
    return counts
