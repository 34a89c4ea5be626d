"""The reports stage on every real PTB-XL report, and MIMIC statement cleaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.build.recipe import ReportsConfig
from ecg_instruct.reports.clean import artefact_kind, clean_mimic_statements, clean_text
from ecg_instruct.reports.stage import run_reports
from ecg_instruct.sources.ptbxl import read_index


@pytest.fixture(scope="module")
def real_records(real_ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    root = tmp_path_factory.mktemp("real") / "ptb-xl"
    root.mkdir()
    (root / "ptbxl_database.csv").symlink_to(real_ptbxl_dir / "ptbxl_database_excerpt.csv")
    rows, _ = read_index(root)
    return rows.to_dict("records")


def test_every_real_report_is_published_or_rejected_with_reason(real_records: list[dict]) -> None:
    reports, rejects = run_reports(real_records, ReportsConfig())
    assert len(reports) + len(rejects) == len(real_records) == 5123
    assert {r["reason"] for r in rejects} <= {"untranslated", "empty_report", "bad_encoding"}
    assert len(rejects) / len(real_records) < 0.02
    assert reports["report"].str.len().gt(0).all()
    assert set(reports["report_language"]) <= {"de", "en", "sv", "other"}
    german = reports[reports["report_language"] == "de"]
    assert len(german) > 0.5 * len(reports)  # PTB-XL is mostly German
    assert (german["report"] != german["report_original"]).all()
    assert reports["translation_coverage"].between(0, 1).all()


def test_reports_are_deterministic(real_records: list[dict]) -> None:
    first, _ = run_reports(real_records[:500], ReportsConfig())
    second, _ = run_reports(real_records[:500], ReportsConfig())
    assert first.equals(second)


def test_min_coverage_one_rejects_partial_translations(real_records: list[dict]) -> None:
    strict, rejects = run_reports(real_records, ReportsConfig(min_coverage=1.0))
    assert (strict["translation_coverage"] == 1.0).all()
    assert all(r["reason"] != "untranslated" or "coverage" in r["detail"] for r in rejects)


def test_mimic_statements_joined_without_artefacts() -> None:
    statements = [
        "Sinus rhythm",
        "--- Warning: Data quality may affect interpretation ---",
        "----------------------------",
        "Left axis deviation",
        "Unconfirmed",
        "Abnormal EKG",
        "sinus rhythm",
    ]
    assert clean_mimic_statements(statements) == ("Sinus rhythm. Left axis deviation. Abnormal ECG.")


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("-------", "empty/dashes"),
        ("--- Warning: noisy baseline ---", "data-quality warning"),
        ("Confirmed by Smith, J (123) on 1/1/2180", "confirmation/signature"),
        ("Sinus rhythm", None),
        ("Unconfirmed report", "unconfirmed marker"),
    ],
)
def test_artefact_kinds(statement: str, kind: str | None) -> None:
    assert artefact_kind(statement) == kind


def test_clean_text_removes_controls_and_runs_of_spaces() -> None:
    assert clean_text("sinus\x00rhythmus   normales\u200b ekg\r\n") == "sinus rhythmus normales ekg"


def test_every_real_report_becomes_chat_examples(real_records: list[dict], real_ptbxl_dir: Path) -> None:
    """Every real record gets its report example, and every task family renders on real data."""
    from ecg_instruct.build.recipe import InstructConfig
    from ecg_instruct.instruct.fields import statements_from_frame
    from ecg_instruct.instruct.stage import run_instruct_tasks
    from ecg_instruct.instruct.templates import TemplateLibrary
    from ecg_instruct.sources.ptbxl import read_statements

    reports, _ = run_reports(real_records, ReportsConfig())
    by_id = {r["id"]: r for r in real_records}
    records = [{**by_id[row["id"]], **row} for row in reports.to_dict("records")]
    statements = {"ptbxl": statements_from_frame(read_statements(real_ptbxl_dir))}
    cfg = InstructConfig(tasks={"report": 1, "diagnosis": 2, "multi-turn": 1})
    result = run_instruct_tasks(records, TemplateLibrary(), cfg, seed=0, statements=statements)
    assert len(result.records) + len(result.rejects) == len(records)
    assert len(result.records) == len(records)
    for messages in result.records["messages"]:
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert messages[1]["content"].count("<ecg>") == 1
    tasks = set(result.examples["task"])
    assert tasks == {"report", "diagnosis", "multi-turn"}
    for messages in result.examples["messages"]:
        assert sum(m["content"].count("<ecg>") for m in messages) == 1
        assert all(m["content"].strip() for m in messages)
