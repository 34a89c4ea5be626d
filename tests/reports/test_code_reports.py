"""English reports composed from coded labels (Challenge 2021 SNOMED-CT, CODE-15%)."""

from __future__ import annotations

from ecg_instruct.reports.code_reports import code_table, parse_codes, report_from_codes
from ecg_instruct.reports.stage import process_report


def test_scored_table_has_the_challenge_classes():
    table = code_table("cinc2021")
    assert len(table.codes) == 30
    assert table.codes["426783006"].abbreviation == "NSR"
    assert table.codes["164889003"].name == "atrial fibrillation"


def test_rhythm_first_unknown_codes_left_out_and_returned():
    report, unknown = report_from_codes("cinc2021", parse_codes("Dx: 164934002,55827005,426783006"))
    assert report == "Sinus rhythm. T wave abnormality."
    assert unknown == ["55827005"]
    report, _ = report_from_codes("code15", parse_codes("RBBB,SB"))
    assert report == "Sinus bradycardia. Right bundle branch block."


def test_reports_stage_rejects_a_record_with_only_unknown_codes():
    record = {"id": "cinc2021/A0001", "source": "cinc2021", "report_raw": "Dx: 55827005",
              "scp_codes": "{}"}
    from ecg_instruct.build.recipe import ReportsConfig
    from ecg_instruct.reports.translate import get_translator

    cfg = ReportsConfig()
    row, reject = process_report(record, get_translator(cfg.translator), cfg, None)
    assert row is None and reject["reason"] == "empty_report" and "55827005" in reject["detail"]
    record["report_raw"] = "Dx: 426783006"
    row, reject = process_report(record, get_translator(cfg.translator), cfg, None)
    assert reject is None and row["report"] == "Sinus rhythm." and row["report_original"] == "Dx: 426783006"
