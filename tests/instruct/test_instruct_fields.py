"""Facts from one record: statement semantics on real PTB-XL files, derived measurements."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ecg_instruct.instruct.fields import (
    classify_statements,
    record_facts,
    statements_from_frame,
)
from ecg_instruct.instruct.stage import draw
from ecg_instruct.sources.ptbxl import parse_scp_codes, read_statements


@pytest.fixture(scope="module")
def real_statements(real_ptbxl_dir: Path):
    return statements_from_frame(read_statements(real_ptbxl_dir))


@pytest.fixture(scope="module")
def real_records(real_ptbxl_dir: Path) -> list[dict]:
    frame = pd.read_csv(real_ptbxl_dir / "ptbxl_database_excerpt.csv", dtype=str,
                        keep_default_na=False)
    return [{"id": f"ptbxl/{int(float(r['ecg_id'])):05d}", "source": "ptbxl",
             "report": r["report"], "scp_codes": json.dumps(parse_scp_codes(r["scp_codes"]))}
            for r in frame.to_dict("records")]


def test_real_statement_table_kinds(real_statements) -> None:
    assert len(real_statements) == 71
    assert real_statements["SR"].kind == "rhythm"
    assert real_statements["IMI"].kind == "diagnostic"
    assert real_statements["ABQRS"].kind == "form"
    assert real_statements["AFIB"].description == "atrial fibrillation"


def test_likelihood_zero_means_not_given_only_for_non_diagnostic(real_statements) -> None:
    present, uncertain, negatives = classify_statements(
        {"SR": 0.0, "ABQRS": 0.0, "IMI": 35.0, "NDT": 0.0, "LVH": 100.0}, real_statements, 50)
    assert [s.code for s in present] == ["SR", "LVH", "ABQRS"]  # rhythm, diagnostic, form
    assert uncertain == {"IMI", "NDT"}
    codes = {s.code for s in negatives}
    # never "no" for a statement the record has, at any likelihood, nor for its relatives
    assert not codes & {"SR", "ABQRS", "IMI", "NDT", "LVH", "STACH", "VCLVH", "ASMI", "NT_"}
    assert {"AFIB", "1AVB", "NORM", "PACE"} <= codes
    assert "CLBBB" not in codes  # abnormal QRS (ABQRS) may be a bundle branch block
    present_30, _, _ = classify_statements({"IMI": 35.0}, real_statements, 30)
    assert [s.code for s in present_30] == ["IMI"]


def test_no_rhythm_negatives_without_a_coded_rhythm_and_no_norm_without_abnormality(
    real_statements,
) -> None:
    _, _, negatives = classify_statements({"NORM": 100.0}, real_statements, 50)
    codes = {s.code for s in negatives}
    assert not codes & {"AFIB", "SR", "STACH"}  # rhythm not coded: absence says nothing
    _, _, negatives = classify_statements({"SR": 0.0, "NDT": 100.0}, real_statements, 50)
    assert "NORM" in {s.code for s in negatives}  # an abnormal diagnosis: "normal?" -> no
    _, _, negatives = classify_statements({"SR": 0.0}, real_statements, 50)
    assert "NORM" not in {s.code for s in negatives}


def test_yes_no_balanced_and_truthful_on_real_records(real_records, real_statements) -> None:
    answers = []
    for record in real_records:
        facts = record_facts(record, real_statements, 50, "<ecg>")
        if "query" not in facts.fields:
            continue
        query = facts.with_query(draw(0, record["id"], "diagnosis", 0, "query-answer"),
                                 draw(0, record["id"], "diagnosis", 0, "query-pick"))["query"]
        codes = json.loads(record["scp_codes"])
        if query["present"]:
            likelihood = codes[query["code"]]
            assert likelihood >= 50 or (likelihood == 0
                                        and not real_statements[query["code"]].diagnostic)
        else:
            assert query["code"] not in codes
        answers.append(query["present"])
    assert len(answers) > 4000
    share = sum(answers) / len(answers)
    assert abs(share - 0.5) < 0.03, share


def test_measurements_are_derived_in_stated_units_and_only_when_plausible() -> None:
    record = {"id": "mimic/1", "source": "mimic", "report": "Sinus rhythm",
              "measurements": {"rr_interval": 800.0, "p_onset": 40.0, "p_end": 148.0,
                               "qrs_onset": 200.0, "qrs_end": 292.0, "t_end": 580.0,
                               "p_axis": 60.0, "qrs_axis": -10.0, "t_axis": None,
                               "heart_rate": 75.0}}
    context = record_facts(record, None, 50, "<ecg>").context
    assert context["heart_rate"] == 75
    assert context["pr_interval"] == 160
    assert context["qrs_duration"] == 92
    assert context["qt_interval"] == 380
    assert context["qtc"] == round(380 / math.sqrt(0.8))
    assert context["qrs_axis"] == -10 and context["p_axis"] == 60
    assert "t_axis" not in context and "labels" not in context and "query" not in context
    assert context["rate_class"] == "normal rate"
    implausible = dict(record["measurements"], qrs_end=150.0, rr_interval=None, p_onset=None)
    context = record_facts({**record, "measurements": json.dumps(implausible)}, None, 50,
                           "<ecg>").context
    for name in ("qrs_duration", "heart_rate", "qtc", "pr_interval", "rate_class"):
        assert name not in context, name
    assert context["qt_interval"] == 380


def test_missing_demographics_are_absent_not_none() -> None:
    context = record_facts({"id": "ptbxl/1", "source": "ptbxl", "report": "x", "age": float("nan"),
                            "sex": None, "scp_codes": "{}"}, {}, 50, "<ecg>").context
    assert set(context) == {"ecg", "source", "source_name", "report"}
