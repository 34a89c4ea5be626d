"""English reports composed from coded labels (Challenge 2021 SNOMED-CT, CODE-15%)."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from ecg_instruct.reports.code_reports import (
    CHALLENGE_DATABASE_RECORDS,
    CHALLENGE_MAPPING_FILES,
    challenge_mapping,
    code_table,
    parse_codes,
    report_from_codes,
    report_sentences,
    unknown_code_counts,
)
from ecg_instruct.reports.stage import process_report

LVH, LVHV, RBBB, CRBBB, BBB = "164873001", "55827005", "59118001", "713427006", "6374002"
UNMAPPED = "3424008"  # in neither Challenge mapping file


def _packaged_csv(name: str) -> list[dict[str, str]]:
    text = (resources.files("ecg_instruct") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_packaged_mapping_files_are_the_challenges_30_scored_and_103_unscored_codes():
    scored, unscored = (_packaged_csv(name) for name in CHALLENGE_MAPPING_FILES)
    assert (len(scored), len(unscored)) == (30, 103)
    columns = ["Dx", "SNOMEDCTCode", "Abbreviation", *CHALLENGE_DATABASE_RECORDS, "Total"]
    assert list(scored[0]) == [*columns, "Notes"] and list(unscored[0]) == columns
    for row in scored + unscored:  # the release's own consistency: Total = the databases' sum
        assert int(row["Total"]) == sum(int(row[db]) for db in CHALLENGE_DATABASE_RECORDS)
    assert not {r["SNOMEDCTCode"] for r in scored} & {r["SNOMEDCTCode"] for r in unscored}
    assert sum(CHALLENGE_DATABASE_RECORDS.values()) == 88253


def test_table_covers_both_mapping_files_row_by_row():
    """Every code of both files, its Dx as the name and its abbreviation, exactly as released."""
    table = code_table("cinc2021")
    rows = challenge_mapping()
    assert [r.code for r in rows if r.scored] == [r["SNOMEDCTCode"] for r in
                                                   _packaged_csv(CHALLENGE_MAPPING_FILES[0])]
    assert set(table.codes) == {r.code for r in rows} and len(table.codes) == 133
    for row in rows:
        entry = table.codes[row.code]
        assert (entry.name, entry.abbreviation) == (row.dx, row.abbreviation), row.code
    assert table.codes["426783006"].abbreviation == "NSR"
    assert table.codes[LVH].name == "left ventricular hypertrophy"


def test_every_code_has_a_section_of_the_report_order_and_a_sentence():
    table = code_table("cinc2021")
    assert table.order == ("rhythm", "conduction", "axis", "chamber", "infarction", "st_t",
                           "ectopy", "other")
    for code, entry in table.codes.items():
        assert entry.section in table.order and entry.text.strip(), code
        report, unknown = report_from_codes("cinc2021", [code])
        assert report == entry.text[0].upper() + entry.text[1:] + "." and unknown == []


def test_record_states_every_code_it_carries_in_clinical_order():
    codes = ["164934002", LVH, "39732003", "426783006", "427172004", "270492004", "164865005",
             "55930002", UNMAPPED]
    report, unknown = report_from_codes("cinc2021", codes)
    assert report == ("Sinus rhythm. First degree AV block. Left axis deviation. "
                      "Left ventricular hypertrophy. Myocardial infarction. ST changes. "
                      "T wave abnormality. Premature ventricular contractions.")
    assert unknown == [UNMAPPED]
    report, _ = report_from_codes("code15", parse_codes("RBBB,SB"))
    assert report == "Sinus bradycardia. Right bundle branch block."


@pytest.mark.parametrize(("codes", "report"), [
    ([RBBB, CRBBB], "Complete right bundle branch block."),
    ([BBB, RBBB, CRBBB], "Complete right bundle branch block."),
    ([LVHV, LVH], "Left ventricular hypertrophy by voltage criteria."),
    ([LVHV], "Left ventricular high voltage."),
    ([LVH, "266249003"], "Left ventricular hypertrophy."),  # + ventricular hypertrophy
    (["164909002", "733534002"], "Complete left bundle branch block."),
    (["63593006", "284470004"], "Premature atrial contractions."),  # SVPB + PAC
    (["427172004", "17338001"], "Premature ventricular contractions."),  # PVC + VPB
    (["164934002", "59931005"], "T wave inversion."),  # TAb + TInv
    (["426627000", "426177001"], "Sinus bradycardia."),  # bradycardia + sinus bradycardia
    (["164947007", "270492004"], "First degree AV block."),  # prolonged PR + 1st degree AVB
])
def test_finer_form_and_its_broader_code_are_one_finding(codes, report):
    assert report_from_codes("cinc2021", codes)[0] == report
    assert report_from_codes("cinc2021", list(reversed(codes)))[0] == report


def test_every_refined_pair_is_written_as_one_sentence():
    table = code_table("cinc2021")
    pairs = [(fine, broad) for fine in table.codes for broad in table.broader[fine]]
    assert len(pairs) > 40
    for fine, broad in pairs:
        sentences, _ = report_sentences("cinc2021", [broad, fine])
        entry = table.codes[fine]
        assert [code for code, _ in sentences] == [fine], (fine, broad)
        assert sentences[0][1] in (entry.text, entry.joint_text)


def test_reports_stage_rejects_only_records_whose_codes_are_all_unmapped():
    from ecg_instruct.build.recipe import ReportsConfig
    from ecg_instruct.reports.translate import get_translator

    cfg = ReportsConfig()
    translator = get_translator(cfg.translator)
    record = {"id": "cinc2021/A0001", "source": "cinc2021", "report_raw": f"Dx: {UNMAPPED}",
              "scp_codes": "{}"}
    row, reject = process_report(record, translator, cfg, None)
    assert row is None and reject["reason"] == "empty_report"
    assert UNMAPPED in reject["detail"] and "neither" in reject["detail"]
    record["report_raw"] = f"Dx: {LVH}"  # an unscored code alone: published
    row, reject = process_report(record, translator, cfg, None)
    assert reject is None and row["report"] == "Left ventricular hypertrophy."
    assert row["report_original"] == f"Dx: {LVH}"


def test_unknown_codes_are_counted_over_published_and_rejected_records():
    rows = unknown_code_counts(["cinc2021", "cinc2021", "cinc2021", "ptbxl"],
                               [[UNMAPPED], [UNMAPPED, LVH], [LVH], ["999"]],
                               [False, True, True, True])
    assert rows == [{"source": "cinc2021", "code": UNMAPPED, "records": 2, "published": 1}]
