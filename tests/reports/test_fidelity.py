"""Label agreement: does the English report state the record's SCP codes?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.reports.fidelity import (
    AGREEMENT_COLUMNS,
    agreement_markdown,
    card_section,
    default_phrases,
    label_agreement,
    load_phrases,
    overall_agreement,
    parse_scp_codes,
    read_scp_statements,
    text_derived_codes,
)
from ecg_instruct.reports.language import detect_language
from ecg_instruct.reports.translate import GlossaryTranslator, split_reviewer_edit


def test_statements_file(statements: pd.DataFrame) -> None:
    assert len(statements) == 71
    assert statements.loc["IMI", "description"] == "inferior myocardial infarction"


def test_every_scp_code_has_phrases(statements: pd.DataFrame) -> None:
    """No code silently falls back to its (often unidiomatic) description."""
    assert set(statements.index) <= set(default_phrases().patterns)


@pytest.mark.parametrize(
    ("code", "report", "stated"),
    [
        ("IMI", "Sinus rhythm. Inferior myocardial infarction.", True),
        ("IMI", "Possible inferior infarct, age undetermined.", True),
        ("IMI", "Inferolateral infarct.", False),
        ("AFIB", "Atrial fibrillation with rapid ventricular response.", True),
        ("AFIB", "Atrial flutter.", False),
        ("IRBBB", "Incomplete right bundle branch block.", True),
        ("CRBBB", "Incomplete right bundle branch block.", False),
        ("CRBBB", "Right bundle branch block.", True),
        ("NORM", "Abnormal ECG.", False),
        ("NORM", "Otherwise normal ECG.", True),
        ("LVH", "Possible left ventricular hypertrophy.", True),
        ("LMI", "Anterolateral infarct.", False),
        ("LMI", "High lateral infarct.", True),
        ("ISCAL", "Probable anterolateral ischemia or left ventricular strain.", True),
        ("ISCAL", "Anterolateral infarct. Ischemia in inferior leads.", False),
        ("ISC_", "Findings are likely to be due to ischaemic heart disease.", True),
        ("PVC", "Premature ventricular contraction(s).", True),
        ("1AVB", "First degree AV block.", True),
    ],
)
def test_phrase_matcher(code: str, report: str, stated: bool) -> None:
    assert default_phrases().states(code, report) is stated


def test_parse_scp_codes() -> None:
    assert parse_scp_codes("{'NORM': 100.0, 'SR': 0.0}") == {"NORM": 100.0, "SR": 0.0}
    assert parse_scp_codes({"IMI": 50}) == {"IMI": 50.0}
    for bad in ("__import__('os').system('true')", "[1, 2]", "{'NORM': 'x'}", "{'SR': True}"):
        with pytest.raises(ValueError):
            parse_scp_codes(bad)


def test_label_agreement_counts(statements: pd.DataFrame) -> None:
    reports = [
        "Sinus rhythm. Inferior infarct.",
        "Sinus rhythm. Normal ECG.",
        "Atrial fibrillation.",
    ]
    codes = [
        {"IMI": 100.0, "SR": 0.0},
        {"IMI": 15.0, "NORM": 80.0, "SR": 0.0, "XYZ": 100.0},  # IMI 15 < 50: not expected
        {"IMI": 50.0, "AFIB": 0.0},
    ]
    table = label_agreement(reports, codes, statements, min_likelihood=50)
    assert list(table.columns) == AGREEMENT_COLUMNS
    rows = table.set_index("code")
    assert rows.loc["IMI", ["n_records", "n_stated"]].tolist() == [2, 1]
    assert rows.loc["IMI", "agreement"] == 0.5
    assert rows.loc["SR", ["n_records", "n_stated"]].tolist() == [2, 2]  # rhythm: likelihood 0
    assert rows.loc["SR", "kind"] == "rhythm" and rows.loc["NORM", "kind"] == "diagnostic"
    assert "XYZ" not in rows.index  # not a PTB-XL statement
    assert overall_agreement(table) == pytest.approx(2 / 3)  # IMI 1/2 + NORM 1/1
    assert overall_agreement(table, ["rhythm"]) == 1.0
    markdown = agreement_markdown(table)
    assert "| IMI | inferior myocardial infarction | diagnostic | 2 | 1 | 50.0% |" in markdown
    lower = label_agreement(reports, codes, statements, min_likelihood=15)
    assert lower.set_index("code").loc["IMI", "n_records"] == 3
    with pytest.raises(ValueError, match="2 reports but 3"):
        label_agreement(reports[:2], codes, statements)


def test_card_section(statements: pd.DataFrame) -> None:
    section = card_section(
        ["Sinus rhythm. Inferior infarct.", "Atrial fibrillation."],
        [{"IMI": 100.0, "SR": 0.0, "ABQRS": 0.0}, {"ASMI": 100.0, "AFIB": 0.0}],
        statements,
    )
    assert "over 2 PTB-XL reports" in section
    assert "derived from the report text: 66.7% stated" in section  # SR, AFIB yes; ABQRS no
    assert "assigned by cardiologists: 50.0% stated" in section  # IMI yes; ASMI no
    assert "| ASMI | anteroseptal myocardial infarction | diagnostic | 1 | 0 | 0.0% |" in section


def test_text_derived_codes(statements: pd.DataFrame) -> None:
    codes = {"IMI": 100.0, "ABQRS": 0.0, "PVC": 100.0, "SR": 0.0}
    assert text_derived_codes(codes, statements) == {"ABQRS": 0.0, "SR": 0.0}


def test_phrase_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text('version: "1"\ncodes:\n  IMI: ["(unclosed"]\n', encoding="utf-8")
    with pytest.raises(UserError, match="IMI: bad expression"):
        load_phrases(bad)
    bad.write_text("codes: {}\n", encoding="utf-8")
    with pytest.raises(UserError, match="version"):
        load_phrases(bad)


# --- the real excerpt: translation keeps what the labels say ----------------------------------


@pytest.fixture(scope="module")
def translated(real_ptbxl_dir: Path) -> pd.DataFrame:
    db = pd.read_csv(real_ptbxl_dir / "ptbxl_database_excerpt.csv", index_col="ecg_id")
    translator = GlossaryTranslator()
    frame = db[["report", "scp_codes"]].copy()
    frame["language"] = frame["report"].map(detect_language)
    pairs = zip(frame["report"], frame["language"], strict=True)
    frame["english"] = [translator.translate(r, lang).text for r, lang in pairs]
    frame["codes"] = frame["scp_codes"].map(parse_scp_codes)
    frame["edited"] = frame["report"].map(lambda r: split_reviewer_edit(r)[1] is not None)
    return frame


def test_translations_state_text_derived_statements(
    translated: pd.DataFrame, statements: pd.DataFrame
) -> None:
    """Form and rhythm statements PTB-XL derived from the report text must survive translation.

    Swedish has a lower bar: its ~65 codes include four "regelbunden rytm, inga p-våg funna"
    (regular rhythm, no P waves found) that PTB-XL's extraction labelled SR; translating them as
    "sinus rhythm" would be wrong, so they stay misses.
    """
    for language, target in (("de", 0.95), ("en", 0.95), ("sv", 0.90)):
        subset = translated[(translated["language"] == language) & ~translated["edited"]]
        table = label_agreement(
            list(subset["english"]),
            [text_derived_codes(c, statements) for c in subset["codes"]],
            statements,
        )
        agreement = overall_agreement(table, ["form", "rhythm"])
        assert agreement >= target, (language, agreement, table[table["agreement"] < 0.9])


def test_translated_diagnostic_agreement_matches_native_english(
    translated: pd.DataFrame, statements: pd.DataFrame
) -> None:
    """Cardiologists' diagnostic labels disagree with the machine text itself (about 60 % of
    diagnostic codes are stated even in native English reports). Translation must not lose more:
    German->English reports agree with the labels about as often as native English reports do,
    and far more than the untranslated German text does."""
    plain = translated[~translated["edited"]]
    german = plain[plain["language"] == "de"]
    english = plain[plain["language"] == "en"]

    def diagnostic(reports: pd.Series, codes: pd.Series) -> float:
        return overall_agreement(label_agreement(list(reports), list(codes), statements))

    translated_level = diagnostic(german["english"], german["codes"])
    native_level = diagnostic(english["english"], english["codes"])
    untranslated_level = diagnostic(german["report"], german["codes"])
    assert translated_level >= native_level - 0.08, (translated_level, native_level)
    assert translated_level > untranslated_level + 0.3, (translated_level, untranslated_level)


def test_statement_kind_reads_tables_loaded_as_text(real_ptbxl_dir) -> None:
    """The build reads scp_statements.csv as strings (blank cells are ""): same kinds."""
    from ecg_instruct.reports.fidelity import statement_kind
    from ecg_instruct.sources.ptbxl import read_statements

    as_numbers = read_scp_statements(real_ptbxl_dir / "scp_statements.csv")
    as_text = read_statements(real_ptbxl_dir)
    for code in as_numbers.index:
        assert statement_kind(as_text, code) == statement_kind(as_numbers, code)


def test_challenge_label_agreement_reads_the_challenge_code_table() -> None:
    """Composed Challenge reports state every code they carry (finer-form pairs included); a
    report that leaves a finding out is counted as not stating it."""
    from ecg_instruct.reports.code_reports import code_table, report_from_codes
    from ecg_instruct.reports.fidelity import challenge_label_agreement

    lvh, lvhv, rbbb, crbbb = "164873001", "55827005", "59118001", "713427006"
    labels = [[code] for code in code_table("cinc2021").codes]
    labels += [[lvhv, lvh], [rbbb, crbbb, "6374002"], ["3424008", lvh]]
    reports = [report_from_codes("cinc2021", codes)[0] for codes in labels]
    table = challenge_label_agreement(reports, labels)
    assert len(table) == 133 and table["agreement"].eq(1.0).all()
    assert table.set_index("code").loc["LVH", ["n_records", "n_stated"]].tolist() == [3, 3]
    assert list(table.columns) == ["code", "description", "kind", "n_records", "n_stated",
                                   "agreement"]
    assert table["kind"].iloc[0] == "rhythm" and table["kind"].iloc[-1] == "other"
    missed = challenge_label_agreement(["Sinus rhythm.", "Left axis deviation."],
                                       [["426783006", lvh], ["39732003"]]).set_index("code")
    assert missed.loc["LVH", "n_stated"] == 0 and missed.loc["NSR", "n_stated"] == 1
    assert missed.loc["LAD", "agreement"] == 1.0
