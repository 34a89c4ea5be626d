"""Property tests: arbitrary report text never crashes the cleaner or the reports stage; it yields a
clean one-line report or a named reject."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecg_instruct.build.recipe import ReportsConfig
from ecg_instruct.reports.clean import artefact_kind, clean_mimic_statements, clean_text
from ecg_instruct.reports.stage import process_report
from ecg_instruct.reports.translate import get_translator

REASONS = {"bad_encoding", "empty_report", "untranslated"}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
#: Clinical words, German and English, plus the characters that make real reports messy.
WORDS = st.sampled_from(
    [
        "sinusrhythmus",
        "sinus rhythm",
        "normales ekg",
        "EKG",
        "lagetyp",
        "ischÄmie",
        "überdrehter",
        "moeglich",
        "4.46",
        "unbestätigter bericht",
        "Edit: NORM 100",
        "Warning:",
        "---",
        "Unconfirmed",
        "Confirmed by",
        "qrs(t) abnorm",
        "förmaksflimmer/-fladder",
        "ST",
        "LVH",
        ".",
        ",",
        ";",
        "\n",
        "\t",
        "  ",
        "\x00",
        "\x07",
        "\x1b",
        "\x85",
        "\u200b",
        "\u2028",
        "\ufeff",
        "\ufffd",
        "e\u0301",
        "\U0001f600",
    ]
)
TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(WORDS, max_size=25).map(" ".join),
    st.lists(st.one_of(WORDS, st.text(max_size=5)), max_size=25).map("".join),
)
CFG = ReportsConfig()
TRANSLATOR = get_translator(CFG.translator, CFG.translator_model)


def _is_clean_line(text: str) -> bool:
    return (
        not CONTROL.search(text)
        and text == text.strip()
        and "  " not in text
        and "\n" not in text
        and "\r" not in text
        and "\t" not in text
    )


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("\x00\x07 \t\x0b\x7f\u200b")
@example("e\u0301\x00\u0301")
def test_clean_text_gives_one_clean_line_and_is_idempotent(text):
    cleaned = clean_text(text)
    assert _is_clean_line(cleaned)
    assert clean_text(cleaned) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=18))
def test_mimic_statements_join_into_one_clean_line_without_artefacts(statements):
    joined = clean_mimic_statements(statements)
    assert _is_clean_line(joined)
    # Artefacts contribute nothing, and a repeated statement is kept once.
    content = [s for s in statements if artefact_kind(s) is None]
    assert clean_mimic_statements(content) == joined
    assert clean_mimic_statements(statements + statements) == joined


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(["ptbxl", "mimic"]))
@example("", "ptbxl")
@example("\ufffd", "mimic")
@example("Edit: NORM 100", "ptbxl")
@example("---\nWarning: data quality\nUnconfirmed", "mimic")
def test_any_report_is_a_clean_row_or_a_named_reject(text, source):
    record = {"id": f"{source}/1", "source": source, "report_raw": text, "scp_codes": "{}"}
    row, reject = process_report(record, TRANSLATOR, CFG, None)
    assert (row is None) != (reject is None)
    if reject is not None:
        assert reject["reason"] in REASONS and reject["stage"] == "reports"
        assert reject["id"] == record["id"]
        return
    assert row["report"].strip() and _is_clean_line(row["report"])
    assert 0.0 <= row["translation_coverage"] <= 1.0
    assert row["report_language"]
    assert "\ufffd" not in text


def test_undecodable_bytes_are_a_named_reject_not_a_guess():
    record = {
        "id": "ptbxl/1",
        "source": "ptbxl",
        "scp_codes": "{}",
        "report_raw": b"sinusrhythmus \xe4nderung".decode("utf-8", errors="replace"),
    }
    row, reject = process_report(record, TRANSLATOR, CFG, None)
    assert row is None and reject["reason"] == "bad_encoding"
