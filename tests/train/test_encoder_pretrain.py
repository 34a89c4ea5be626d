"""Stage 0's targets: what the training reports, or the training questions, say about each ECG."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_instruct.train.encoder_pretrain import question_targets


def _q(qtype: str, ecgs: list[str], answer: list[str], attribute: list[str] | None,
       template: int) -> dict:
    return {"question_type": qtype, "template_id": template, "attribute": attribute,
            "answer": answer, "ecg_ids": ecgs}


def _labels(questions: list[dict]) -> dict[str, dict[str, float]]:
    """ECG -> {key: 0/1} of the known entries."""
    keys, ecgs, y, mask = question_targets(questions)
    return {ecg: {k: float(y[r, c]) for c, k in enumerate(keys) if mask[r, c]}
            for r, ecg in enumerate(ecgs)}


def test_verify_choose_and_query_answers_become_labels_of_their_ecg():
    labels = _labels([
        _q("single-verify", ["ptbxl/1"], ["yes"], ["atrial fibrillation"], 1),
        _q("single-verify", ["ptbxl/1"], ["no"], ["sinus rhythm"], 1),
        _q("single-verify", ["ptbxl/2"], ["not sure"], ["sinus rhythm"], 1),  # no label
        _q("single-choose", ["ptbxl/2"], ["normal ecg"], ["normal ecg", "afib"], 2),
        _q("single-choose", ["ptbxl/3"], ["both"], ["a", "b"], 2),
        _q("single-choose", ["ptbxl/3"], ["none"], ["c", "d"], 2),
        _q("single-query", ["ptbxl/1"], ["atrial fibrillation", "lbbb"], None, 3),
        _q("single-query", ["ptbxl/2"], ["normal ecg"], None, 3),
        _q("single-query", ["ptbxl/3"], ["none"], None, 3),
    ])
    assert labels["ptbxl/1"] == {
        "1|atrial fibrillation": 1.0, "1|sinus rhythm": 0.0,
        # query: every term of template 3's answers, present or not
        "3|atrial fibrillation": 1.0, "3|lbbb": 1.0, "3|normal ecg": 0.0}
    assert labels["ptbxl/2"] == {"2|normal ecg": 1.0, "2|afib": 0.0, "3|atrial fibrillation": 0.0,
                                 "3|lbbb": 0.0, "3|normal ecg": 1.0}
    assert labels["ptbxl/3"] == {"2|a": 1.0, "2|b": 1.0, "2|c": 0.0, "2|d": 0.0,
                                 "3|atrial fibrillation": 0.0, "3|lbbb": 0.0, "3|normal ecg": 0.0}


def test_comparisons_are_left_out_and_contradictions_left_unknown():
    keys, ecgs, y, mask = question_targets([
        _q("comparison_irrelevant-verify", ["ptbxl/1", "ptbxl/2"], ["yes"], ["x"], 6),
        _q("single-verify", ["ptbxl/3"], ["yes"], ["x"], 1),
        _q("single-verify", ["ptbxl/3"], ["no"], ["x"], 1),  # the same question, other answer
        _q("single-verify", ["ptbxl/3"], ["yes"], ["y"], 1),
    ])
    assert ecgs == ["ptbxl/3"]  # the pair's ECGs got no label of their own
    assert keys == ["1|y"]  # "1|x" was contradicted: unknown, not a guess
    assert y.tolist() == [[1.0]] and mask.tolist() == [[1.0]]


def test_the_sample_questions_label_every_ecg_and_every_label_is_learnable(ecgqa_build):
    """On a built `ecgqa` config every train ECG with a single question gets labels, and each
    label has both values somewhere (a label always 1 or always 0 teaches nothing)."""
    datasets = pytest.importorskip("datasets")
    _, out, _ = ecgqa_build
    ds = datasets.load_dataset(str(out), "ecgqa", split="train")
    rows = ds.select_columns(["question_type", "template_id", "attribute", "answer",
                              "ecg_ids"]).to_list()
    keys, ecgs, y, mask = question_targets(rows)
    single = {q["ecg_ids"][0] for q in rows if len(q["ecg_ids"]) == 1}
    assert set(ecgs) == single and mask.sum(1).min() >= 1
    known_values = [set(y[mask[:, c] > 0, c].tolist()) for c in range(len(keys))]
    assert sum(v == {0.0, 1.0} for v in known_values) >= len(keys) // 2
    assert np.all((y == 0) | (mask == 1))  # a 1 is never outside the known mask


def test_question_rows_without_their_fields_are_a_one_line_error():
    """Rows that reference ECGs but carry no question fields (another tool's config) cannot
    give stage 0 labels: one line with the fix, not a shape error deep in the encoder."""
    from ecg_instruct.errors import UserError
    from ecg_instruct.train.data import QuestionSignals, Split
    from ecg_instruct.train.encoder_pretrain import _stage_data

    signals = QuestionSignals.__new__(QuestionSignals)
    signals.store, signals.ecg_ids = None, [["ptbxl/00001", "ptbxl/00002"]]
    split = Split(ids=["q"], reports=["yes"], prompts=[[1]], targets=[[2]], fs=[100],
                  signals=signals)
    with pytest.raises(UserError, match="--encoder-pretrain-steps 0"):
        _stage_data(split)
