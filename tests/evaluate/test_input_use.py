"""`evaluate` says when a model ignores its input (distinct reports, outputs changed by controls)."""

from __future__ import annotations

from ecg_instruct.evaluate.input_use import input_use

REFS = [f"Sinus rhythm. Finding {i}." for i in range(40)]


def test_a_model_writing_one_report_whatever_the_ecg_is_flagged():
    same = ["Sinus rhythm. Normal ECG."] * 40
    out = input_use({"signal": same, "zeros": same, "shuffle": same}, REFS)
    assert out["distinct_predictions"] == 1 and out["distinct_references"] == 40
    assert out["changed_by_shuffle"] == 0 and out["changed_share_zeros"] == 0.0
    assert len(out["warnings"]) == 3
    assert "1 distinct reports for 40 distinct references" in out["warnings"][0]
    assert "shuffling the ECGs" in out["warnings"][2] and "ignores its ECG input" in out["warnings"][2]


def test_a_model_that_reads_its_input_gets_no_warning():
    real = REFS[:10] * 4
    shuffled = real[1:] + real[:1]
    out = input_use({"signal": real, "zeros": ["x"] * 40, "shuffle": shuffled}, REFS)
    assert out["distinct_predictions"] == 10 and out["changed_by_shuffle"] == 40
    assert out["warnings"] == []


def test_thresholds_are_10_percent_of_references_and_5_percent_of_outputs():
    real = REFS[:3] + ["a"] * 37  # 4 distinct for 40 references: exactly 10 %, no warning
    nearly = list(real)
    nearly[0] = "changed"  # 1 of 40 = 2.5 % changed: warned
    out = input_use({"signal": real, "shuffle": nearly}, REFS)
    assert out["distinct_predictions"] == 4
    assert [w for w in out["warnings"] if "distinct" in w] == []
    assert any("changes 1 of 40" in w for w in out["warnings"])
    assert "changed_by_zeros" not in out  # no zeroed control run: nothing claimed
