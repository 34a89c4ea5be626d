"""ECG-QA exact match: sets after lower-casing and trimming, per type, macro, intervals."""

from __future__ import annotations

from ecg_instruct.evaluate.ecgqa_accuracy import (
    answer_set,
    ecgqa_accuracy,
    exact_match,
    majority_answers,
)


def test_answers_compare_as_sets_after_lowercasing_and_trimming():
    assert exact_match("RR interval,  QRS duration ", ["qrs duration", "rr interval"])
    assert exact_match(["Yes "], ["yes"])
    assert not exact_match("qrs duration", ["qrs duration", "rr interval"])
    assert not exact_match("", ["no"])
    assert answer_set("a, , b,a") == frozenset({"a", "b"})


def test_perfect_predictions_score_one_and_errors_show_per_type():
    answers = [["yes"], ["no"], ["qrs duration", "rr interval"], ["none"]]
    qtypes = ["single-verify", "single-verify", "comparison_irrelevant-query",
              "comparison_irrelevant-query"]
    atypes = ["scp_code", "noise", "numeric_feature", "scp_code"]
    perfect = ecgqa_accuracy([", ".join(a) for a in answers], answers, qtypes, atypes,
                             replicates=200)
    assert perfect["overall"]["accuracy"] == 1.0 and perfect["macro_question_type"]["accuracy"] == 1.0
    assert perfect["overall"]["ci95"] == [1.0, 1.0]
    mixed = ecgqa_accuracy(["yes", "yes", "rr interval, qrs duration", "sinus rhythm"], answers,
                           qtypes, atypes, replicates=200)
    assert mixed["overall"]["accuracy"] == 0.5
    verify = mixed["question_type"]["single-verify"]
    assert (verify["accuracy"], verify["n"]) == (0.5, 2)
    assert mixed["attribute_type"]["scp_code"]["accuracy"] == 0.5
    assert mixed["attribute_type"]["noise"]["accuracy"] == 0.0
    assert mixed["attribute_type"]["numeric_feature"]["accuracy"] == 1.0
    lo, hi = mixed["overall"]["ci95"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0


def test_macro_averages_question_types_not_questions():
    answers = [["yes"]] * 3 + [["a"]]
    result = ecgqa_accuracy(["yes", "yes", "yes", "b"], answers,
                            ["single-verify"] * 3 + ["single-query"], ["x"] * 4, replicates=0)
    assert result["overall"]["accuracy"] == 0.75
    assert result["macro_question_type"]["accuracy"] == 0.5


def test_majority_baseline_is_the_commonest_training_answer_of_the_type():
    train = [["yes"], ["no"], ["no"], ["no"], ["a", "b"], ["b", "a"], ["c"]]
    types = ["v", "v", "v", "v", "q", "q", "q"]
    assert majority_answers(train, types, ["v", "q", "unseen"]) == [["no"], ["a", "b"], ["no"]]
