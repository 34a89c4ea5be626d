"""The pieces of report.html that need no model: the word diff and the statement finder."""

from __future__ import annotations

from ecg_instruct.evaluate.html_report import statements_of, word_diff


def test_word_diff_marks_the_words_only_one_side_has():
    ref, gen = word_diff("Sinus rhythm. Left axis deviation.", "sinus rhythm. normal <ecg>.")
    assert ref == "Sinus rhythm. <del>Left axis deviation</del>."
    assert gen == "sinus rhythm. <ins>normal &lt;ecg&gt;</ins>."


def test_identical_reports_have_no_marks():
    ref, gen = word_diff("atrial fibrillation.", "Atrial fibrillation.")
    assert "<del>" not in ref and "<ins>" not in gen


def test_statements_of_finds_scp_statements_by_the_label_agreement_phrases():
    assert {"AFIB", "LVH"} <= set(statements_of("atrial fibrillation. left ventricular hypertrophy."))
    assert "AFIB" not in statements_of("sinus rhythm. normal ecg.")
    assert statements_of("") == []
