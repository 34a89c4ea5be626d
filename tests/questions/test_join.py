"""Joining questions to the build's records: ids, split policies, every question accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.questions.join import (
    RecordOutcomes,
    join_questions,
    leakage_counts,
    question_messages,
    record_id,
)
from ecg_instruct.sources.ecgqa import read_questions
from questions.ecgqa_files import sample, write_part


def test_record_ids_match_the_source_configs():
    assert record_id("ptbxl", 17229) == "ptbxl/17229"
    assert record_id("ptbxl", 1) == "ptbxl/00001"
    assert record_id("mimic", 40689238) == "mimic/40689238"


def test_messages_hold_one_placeholder_per_ecg_in_order():
    one = question_messages("Does this ECG show noise?", ["no"], 1)
    assert [m["role"] for m in one] == ["system", "user", "assistant"]
    assert one[1]["content"] == "<ecg>\nDoes this ECG show noise?" and one[2]["content"] == "no"
    two = question_messages("Which values differ?", ["qrs duration", "rr interval"], 2)
    assert two[1]["content"] == "First ECG: <ecg>\nSecond ECG: <ecg>\nWhich values differ?"
    assert two[2]["content"] == "qrs duration, rr interval"


@pytest.fixture
def questions(tmp_path: Path) -> list[dict]:
    write_part(tmp_path, "ptbxl", "template", "train", [
        sample(0, [1], ["yes"]),              # published, train
        sample(1, [9], ["no"]),               # ECG 9 rejected by curation
        sample(2, [99999], ["no"]),           # not in the mirror
        sample(3, [1, 2], ["none"]),          # train + train: published
        sample(4, [1, 10], ["none"]),         # train + test: cross_split
        sample(5, [], ["no"]),                # malformed
    ])
    write_part(tmp_path, "ptbxl", "template", "test", [sample(0, [1], ["no"]),
                                                       sample(1, [10], ["yes"])])
    return read_questions(tmp_path, ["ptbxl"], ["template"])


RECORDS = RecordOutcomes.from_tables(
    [("ptbxl/00001", "train"), ("ptbxl/00002", "train"), ("ptbxl/00010", "test")],
    [{"id": "ptbxl/00009", "stage": "signals", "reason": "flat_lead", "detail": "V4 flat"}])


def test_default_policy_takes_the_split_of_the_ecgs(questions: list[dict]):
    result = join_questions(questions, RECORDS)
    assert result.n_in == len(questions) == 8
    published = {row["id"]: row for row in result.rows}
    rejected = {row["id"]: row for row in result.rejects}
    assert set(published) | set(rejected) == {q["id"] for q in questions}
    assert not set(published) & set(rejected)
    assert published["ecgqa/ptbxl/template/train/0"]["split"] == "train"
    # ECG-QA's test question about a train ECG goes to train, never to test
    assert published["ecgqa/ptbxl/template/test/0"]["split"] == "train"
    assert published["ecgqa/ptbxl/template/test/1"]["split"] == "test"
    assert published["ecgqa/ptbxl/template/train/3"]["ecg_ids"] == ["ptbxl/00001", "ptbxl/00002"]
    assert {k: v["reason"] for k, v in rejected.items()} == {
        "ecgqa/ptbxl/template/train/1": "missing_ecg",
        "ecgqa/ptbxl/template/train/2": "missing_ecg",
        "ecgqa/ptbxl/template/train/4": "cross_split",
        "ecgqa/ptbxl/template/train/5": "malformed_question",
    }
    assert rejected["ecgqa/ptbxl/template/train/1"]["detail"] == \
        "ptbxl/00009 rejected by curation (signals/flat_lead: V4 flat)"
    assert "ptbxl/99999 is not in this build's index (not in the mirror)" in \
        rejected["ecgqa/ptbxl/template/train/2"]["detail"]
    assert rejected["ecgqa/ptbxl/template/train/4"]["detail"] == \
        "ptbxl/00001 is in train, ptbxl/00010 is in test"
    assert all(r["stage"] == "questions" and r["source"] == "ecgqa" for r in result.rejects)
    # leakage-free: every ECG of a question sits in that question's split
    for row in result.rows:
        assert {RECORDS.published[e] for e in row["ecg_ids"]} == {row["split"]}
    assert all(c["elsewhere"] == 0 for c in leakage_counts(result.rows, RECORDS).values())


def test_benchmark_policy_keeps_the_release_splits_and_counts_shared_ecgs(questions):
    result = join_questions(questions, RECORDS, policy="benchmark")
    published = {row["id"]: row["split"] for row in result.rows}
    assert published["ecgqa/ptbxl/template/test/0"] == "test"
    assert published["ecgqa/ptbxl/template/train/4"] == "train"  # no cross_split here
    assert [r["reason"] for r in result.rejects] == ["missing_ecg", "missing_ecg",
                                                      "malformed_question"]
    counts = leakage_counts(result.rows, RECORDS)
    # train questions use ECGs 1, 2, 10: 10 is a test record, 1 is in a test question too
    assert counts["train"] == {"ecgs": 3, "elsewhere": 2}
    # test questions use 1 (a train record) and 10 (in a train question)
    assert counts["test"] == {"ecgs": 2, "elsewhere": 2}
