"""Label-grounded reports: say exactly the labels, in a stable order, hedged by likelihood."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecg_instruct.reports.fidelity import (
    default_phrases,
    label_agreement,
    overall_agreement,
    parse_scp_codes,
)
from ecg_instruct.reports.label_reports import LABEL_REPORT_NOTE, report_from_labels, report_style


def test_normal_record(statements: pd.DataFrame) -> None:
    assert report_from_labels({"NORM": 100.0, "SR": 0.0}, statements) == ("Sinus rhythm. Normal ECG.")


def test_sections_hedges_and_order(statements: pd.DataFrame) -> None:
    codes = {
        "NORM": 50.0,  # overall verdict goes last
        "IMI": 15.0,  # unlikely: "cannot rule out"
        "LVH": 50.0,
        "CRBBB": 100.0,
        "ASMI": 80.0,
        "PVC": 0.0,  # form statement: not hedged
        "AFIB": 0.0,
    }
    assert report_from_labels(codes, statements) == (
        "Atrial fibrillation. Complete right bundle branch block. "
        "Possible left ventricular hypertrophy. Probable anteroseptal myocardial infarction. "
        "Cannot rule out inferior myocardial infarction. Ventricular premature complex. "
        "Possible normal ECG."
    )


def test_independent_of_dict_order(statements: pd.DataFrame) -> None:
    codes = {"IMI": 100.0, "ASMI": 100.0, "SR": 0.0, "LAFB": 100.0}
    reordered = dict(reversed(list(codes.items())))
    assert report_from_labels(codes, statements) == report_from_labels(reordered, statements)


def test_unknown_and_empty(statements: pd.DataFrame) -> None:
    assert report_from_labels({}, statements) == ""
    assert report_from_labels({"NOT_A_CODE": 100.0}, statements) == ""
    assert report_from_labels({"SR": "x", "AFIB": 0.0}, statements) == "Atrial fibrillation."  # type: ignore[dict-item]


def test_style_is_versioned() -> None:
    assert report_style().version
    assert "labels" in LABEL_REPORT_NOTE


def test_real_records_state_every_label(real_ptbxl_dir: Path, statements: pd.DataFrame) -> None:
    """On every real record, the fidelity check finds each label in its label-grounded report."""
    db = pd.read_csv(real_ptbxl_dir / "ptbxl_database_excerpt.csv")
    codes = [parse_scp_codes(c) for c in db["scp_codes"]]
    reports = [report_from_labels(c, statements) for c in codes]
    table = label_agreement(reports, codes, statements, min_likelihood=0.0)
    assert overall_agreement(table, ["diagnostic", "form", "rhythm"]) == 1.0
    assert len(table) >= 60  # nearly all 71 statements occur in the excerpt
    # ...and never states a code the record does not have (no cross-talk between statements).
    phrases = default_phrases()
    for code in ("CRBBB", "CLBBB", "AMI", "LMI", "NORM"):
        for report, record in zip(reports, codes, strict=True):
            if phrases.states(code, report):
                assert code in record, (code, report)
