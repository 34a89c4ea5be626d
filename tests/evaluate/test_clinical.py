"""Clinical accuracy: statements extracted from reports, negations, MIMIC phrasing, F1."""

from __future__ import annotations

import ast
import random

import pytest
import yaml

from ecg_instruct.data_files import read_data_file
from ecg_instruct.evaluate.clinical import (
    clinical_scores,
    default_vocabulary,
    labelled_statements,
    statements_of,
)
from ecg_instruct.reports.fidelity import read_scp_statements, statement_kind


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("sinus rhythm. left bundle branch block.", {"SR", "CLBBB"}),
        ("atrial fibrillation. abnormal qrs(t).", {"AFIB", "ABQRS"}),
        ("sinus bradycardia. otherwise normal ecg.", {"SBRAD", "NORM"}),
        ("sinus rhythm. possible inferior myocardial infarction, age undetermined.", {"SR", "IMI"}),
        # negations do not state
        ("sinus rhythm. no st changes. no left ventricular hypertrophy.", {"SR"}),
        ("sinus rhythm without evidence of atrial fibrillation", {"SR"}),
        ("t waves not inverted, sinus tachycardia", {"STACH"}),
        ("sinus rhythm. no definite pathology.", {"SR", "NORM"}),  # PTB-XL's NORM wording
        ("inferior infarct cannot be excluded", {"IMI"}),  # a hedge, not a negation
        ("", set()),
    ],
)
def test_statements_of_ptbxl_style(report, expected):
    assert statements_of(report) == expected


@pytest.mark.parametrize(
    ("mimic", "ptbxl"),
    [
        ("Sinus rhythm with 1st degree A-V block. Borderline ECG", "sinus rhythm. first degree av block."),
        ("Septal infarct - age undetermined. Abnormal ECG", "anteroseptal myocardial infarction"),
        ("Atrial fibrillation with rapid ventricular response", "atrial fibrillation."),
        ("Low QRS voltages in limb leads", "low limb lead voltage."),
        ("Sinus rhythm. Otherwise normal ECG", "sinus rhythm. normal ecg."),
        ("Left bundle branch block", "left bundle branch block."),
    ],
)
def test_mimic_statements_map_to_the_same_scp_codes(mimic, ptbxl):
    assert statements_of(mimic) and statements_of(mimic) >= statements_of(ptbxl) - {"LPR"}


def test_kind_table_matches_the_real_scp_statements(real_ptbxl_dir):
    real = read_scp_statements(real_ptbxl_dir / "scp_statements.csv")
    kinds = {c: k for c, k in default_vocabulary().kinds.items() if not c.startswith("cinc:")}
    assert kinds == {code: statement_kind(real, code) for code in real.index}
    _, text = read_data_file("scp_kinds.yaml")
    assert sum(len(v) for v in yaml.safe_load(text)["kinds"].values()) == 71


def test_identical_reports_score_one_and_shuffled_far_below(real_reports):
    english = [r["report"] for r in real_reports if "sinus" in r["report"] or "fibrill" in r["report"]]
    refs = english[:300]
    same, _, _ = clinical_scores(refs, refs)
    assert same["clinical_f1_micro"] == 1.0 and same["clinical_f1_macro"] == 1.0
    shuffled = refs[:]
    random.Random(0).shuffle(shuffled)
    other, _, _ = clinical_scores(shuffled, refs)
    assert other["clinical_f1_micro"] < 0.5 and other["clinical_f1_macro"] < 0.3
    kinds = {row["kind"] for row in other["clinical_per_statement"]}
    assert len(other["clinical_per_statement"]) == 20 and kinds <= {"rhythm", "form", "diagnostic"}
    assert other["clinical_rhythm_f1"] > other["clinical_diagnostic_f1"]  # rhythm: mostly SR


def test_against_cardiologist_scp_codes(real_reports):
    rows = [r for r in real_reports if "sinus rhythm" in r["report"]][:200]
    codes = [ast.literal_eval(r["scp_codes"]) for r in rows]
    sets = [labelled_statements(c) for c in codes]
    assert all("SR" in s for s, c in zip(sets, codes, strict=True) if "SR" in c)  # form/rhythm: any
    assert labelled_statements({"IMI": 15.0, "SR": 0.0}) == {"SR"}  # diagnostic below 50: left out
    assert labelled_statements({}) is None
    scores, _, scored = clinical_scores([r["report"] for r in rows], [""] * len(rows),
                                        "clinical_scp", reference_sets=sets)  # fmt: skip
    # the cardiologists' English reports against their own labels: high but not perfect
    assert 0.6 < scores["clinical_scp_f1_micro"] < 1.0 and len(scored) == 200


def test_findings_without_an_scp_statement_are_named():
    """Axis deviation has no statement among PTB-XL's 71 (heart_axis is its own column): the
    score cannot see it, and metrics.json says so instead of staying silent."""
    from ecg_instruct.evaluate.clinical import unscored_findings

    refs = ["Sinus rhythm. Left axis deviation.", "Sinus rhythm. Normal ECG.",
            "Atrial fibrillation. Right axis deviation.", "No left axis deviation."]  # fmt: skip
    assert statements_of(refs[0]) == {"SR"}
    out = unscored_findings(refs)
    assert out["left axis deviation"]["references"] == 1  # the negated mention does not count
    assert out["right axis deviation"]["references"] == 1
    assert unscored_findings(["Sinus rhythm. Normal ECG."]) == {}
