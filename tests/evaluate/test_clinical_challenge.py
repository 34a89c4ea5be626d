"""Clinical accuracy on Challenge 2021 reports: every finding of the code table is credited."""

from __future__ import annotations

from ecg_instruct.evaluate.clinical import clinical_scores, default_vocabulary, statements_of
from ecg_instruct.reports.code_reports import challenge_statements, code_table, report_from_codes

LVH, LAD = "164873001", "39732003"


def _report(*codes: str) -> str:
    return report_from_codes("cinc2021", list(codes))[0]


def test_a_generated_report_naming_lvh_is_credited_for_an_lvh_record():
    reference = _report(LVH)  # an LVH-only record (today's record: published, not rejected)
    scores, _, _ = clinical_scores(["Sinus rhythm. Left ventricular hypertrophy."], [reference])
    assert scores["clinical_recall_micro"] == 1.0
    missed, _, _ = clinical_scores(["Sinus rhythm."], [reference])
    assert missed["clinical_recall_micro"] == 0.0


def test_every_challenge_code_states_a_statement_of_the_vocabulary():
    """Each code's sentence is recognised: through its SCP equivalents where the table names
    them (checked here against the phrase matcher), else through its own `cinc:` statement."""
    table, challenge = code_table("cinc2021"), challenge_statements()
    vocab = default_vocabulary()
    for code, entry in table.codes.items():
        if entry.section == "axis":  # not a statement of the score (PTB-XL: heart_axis column)
            assert not set(challenge.findings[code]) & set(vocab.kinds)
            continue
        found = statements_of(_report(code), vocab)
        assert set(challenge.findings[code]) <= found, (code, entry.text, found)
        if entry.joint_text:
            assert set(challenge.findings[code]) <= statements_of(entry.joint_text, vocab)
    scored = set(challenge.kinds) - challenge.unscored
    assert {vocab.kind(s) for s in scored} <= {"rhythm", "form", "diagnostic"}


def test_findings_without_an_scp_statement_are_scored_too():
    assert statements_of("Sinus rhythm. Atrial tachycardia.") == {"SR", "cinc:ATach"}
    assert statements_of(_report(LAD)) == set()  # the axis: left to the axis handling
    # a broader finding is not read inside the finer sentence that holds its words
    assert "cinc:BBB" not in statements_of("Complete right bundle branch block.")
    assert "cinc:BBB" in statements_of("Bundle branch block.")
    assert statements_of("No atrial tachycardia.") == set()  # negation, as for SCP statements
    right, _, _ = clinical_scores(["Bundle branch block."], [_report("6374002")])
    wrong, _, _ = clinical_scores(["Atrial tachycardia."], [_report("6374002")])
    assert (right["clinical_f1_micro"], wrong["clinical_f1_micro"]) == (1.0, 0.0)
