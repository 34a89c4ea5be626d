"""Stage 2 (reports): raw report text -> clean English with its provenance.

Every record leaves this stage either with a report (`report`, `report_original`,
`report_language`, `translation_coverage`) or as a reject with a reason: `bad_encoding`,
`empty_report`, `untranslated` (coverage below the recipe's `min_coverage`), `report_too_long`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.build.executor import run_tasks
from ecg_instruct.build.recipe import ReportsConfig
from ecg_instruct.build.shards import shards as cut_shards
from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.workio import atomic_parquet
from ecg_instruct.reports.clean import clean_mimic_statements, clean_text, strip_ptbxl_edit
from ecg_instruct.reports.language import detect_language
from ecg_instruct.reports.translate import Translator, get_translator
from ecg_instruct.schema import REJECT_SCHEMA, read_rejects, rejects_frame
from ecg_instruct.sources import source_root

REPORT_COLUMNS = (
    "id",
    "report",
    "report_original",
    "report_language",
    "translation_coverage",
)


#: Longest raw report published, in characters. The longest of 5,123 real PTB-XL reports has 319
#: and a MIMIC-IV-ECG report is at most 18 short statements; megabytes in one cell are a broken
#: export (a whole file pasted into a field), and would dominate any token budget.
MAX_REPORT_CHARS = 10_000


def _reject(record_id: str, source: str, reason: str, detail: str) -> dict[str, str]:
    return {"id": record_id, "source": source, "stage": "reports", "reason": reason, "detail": detail}


def process_report(
    record: dict, translator: Translator, cfg: ReportsConfig, statements: pd.DataFrame | None
) -> tuple[dict | None, dict | None]:
    """(report row, None) or (None, reject row) for one index record."""
    record_id, source, raw = record["id"], record["source"], record["report_raw"] or ""
    if "\ufffd" in raw:
        return None, _reject(record_id, source, "bad_encoding", "report contains bytes that are not UTF-8")
    if len(raw) > MAX_REPORT_CHARS:  # before any cleaning or translation work on it
        return None, _reject(record_id, source, "report_too_long",
                             f"report has {len(raw):,} characters (> {MAX_REPORT_CHARS:,})")
    if source in CODED_SOURCES:  # labels only: the report is composed from them, in English
        return _coded_report(record_id, source, raw)
    if source == "mimic":
        parts = raw.split("\n")
        original = ". ".join(clean_text(p) for p in parts if clean_text(p))
        text, language = clean_mimic_statements(parts), "en"
    else:
        original = raw
        text = clean_text(strip_ptbxl_edit(raw))
        language = detect_language(text) if text else "other"
    if not text:
        return None, _reject(record_id, source, "empty_report", "no report text after cleaning")
    translation = translator.translate(text, language)
    report, coverage = translation.text, translation.coverage
    if cfg.report_style == "labels" and source == "ptbxl" and statements is not None:
        from ecg_instruct.reports.label_reports import report_from_labels

        report, coverage = report_from_labels(json.loads(record["scp_codes"]), statements), 1.0
    elif coverage < cfg.min_coverage:
        missing = ", ".join(translation.untranslated[:8])
        return None, _reject(
            record_id, source, "untranslated", f"coverage {coverage:.2f} < {cfg.min_coverage}: {missing}"
        )
    if not report.strip():
        return None, _reject(record_id, source, "empty_report", "translation is empty")
    row = {
        "id": record_id,
        "report": report,
        "report_original": original,
        "report_language": language,
        "translation_coverage": float(coverage),
    }
    return row, None


#: Sources that ship coded labels instead of report text (`reports/code_reports.py`).
CODED_SOURCES = ("cinc2021", "code15")
#: What a coded source's unknown codes are missing from, for the `empty_report` detail.
UNKNOWN_CODE_TABLES = {
    "cinc2021": "in neither of the Challenge's mapping files (dx_mapping_scored.csv, "
                "dx_mapping_unscored.csv)",
}


def _coded_report(record_id: str, source: str, raw: str) -> tuple[dict | None, dict | None]:
    """The English report composed from a coded source's labels; `empty_report` naming the
    codes when the packaged table knows none of them (they stay countable in the rejects)."""
    from ecg_instruct.reports.code_reports import parse_codes, report_from_codes

    codes = parse_codes(raw)
    report, unknown = report_from_codes(source, codes)
    if not report:
        more = f" (+{len(unknown) - 8} more)" if len(unknown) > 8 else ""
        where = UNKNOWN_CODE_TABLES.get(source, f"not in the packaged {source} label table")
        detail = (f"codes {', '.join(unknown[:8])}{more} are {where}"
                  if unknown else "the record has no label codes")
        return None, _reject(record_id, source, "empty_report", detail)
    row = {"id": record_id, "report": report, "report_original": raw.strip(),
           "report_language": "en", "translation_coverage": 1.0}
    return row, None


def run_reports(
    records: Iterable[dict], cfg: ReportsConfig, statements: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Reports for all records, plus the rejects of this stage."""
    translator = get_translator(cfg.translator, cfg.translator_model)
    rows, rejects = [], []
    for record in records:
        row, reject = process_report(record, translator, cfg, statements)
        if row is not None:
            rows.append(row)
        if reject is not None:
            rejects.append(reject)
    frame = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    return frame, rejects


def translator_provenance(cfg: ReportsConfig) -> dict[str, str]:
    """Backend name and version, for the dataset card."""
    translator = get_translator(cfg.translator, cfg.translator_model)
    return {
        "translator": translator.name,
        "translator_version": translator.version,
        "report_style": cfg.report_style,
    }


#: What the reports stage reads of an index row.
REPORT_INPUT_COLUMNS = ("id", "source", "report_raw", "scp_codes")
#: Rows per row group of `reports.parquet` (in id order): a publish task reads the row groups
#: of its own ids only.
REPORT_ROW_GROUP_ROWS = 1024


def reports_shard(records: list[dict], cfg, statements: pd.DataFrame | None, output: str) -> None:
    """The reports stage for one shard: `<output>.rejects`, then `<output>` (the done marker)."""
    reports, rejects = run_reports(records, cfg, statements)
    atomic_parquet(rejects_frame(rejects), Path(output + ".rejects"))
    atomic_parquet(reports, Path(output))


class ReportsStage:
    """Reports in resumable, parallel shards (`reports/<shard>.parquet`), then one
    `reports.parquet` (id order, its existence marks the stage done) + `reports_rejects.parquet`.

    The translator costs about a millisecond per report: 800,000 records are minutes of work
    that a kill must not throw away, so this stage is sharded like the signals.
    """

    name = "reports"

    def done(self, context: BuildContext) -> bool:
        return (context.work / "reports.parquet").exists()

    def run(self, context: BuildContext) -> None:
        options, work = context.options, context.work
        statements = None
        if options.recipe.reports.report_style == "labels" and "ptbxl" in options.sources:
            from ecg_instruct.sources.ptbxl import read_statements

            statements = read_statements(source_root(options.raw_dir, "ptbxl"))
        folder = work / "reports"
        folder.mkdir(exist_ok=True)
        shards = cut_shards(context.index, options.recipe.shard_size, REPORT_INPUT_COLUMNS)
        todo = [(frame, str(folder / f"{name}.parquet")) for name, frame in shards
                if not (folder / f"{name}.parquet").exists()]
        tasks = (((frame.to_dict("records"), options.recipe.reports, statements, path), len(frame))
                 for frame, path in todo)
        run_tasks(reports_shard, tasks, min(options.workers, len(todo)), "reports",
                  options.progress, total=sum(len(frame) for frame, _ in todo))
        names = [folder / f"{name}.parquet" for name, _ in shards]
        del shards, todo
        rejects = pa.concat_tables([REJECT_SCHEMA.empty_table(),
                                    *(read_rejects(Path(f"{name}.rejects")) for name in names)])
        atomic_parquet(rejects, work / "reports_rejects.parquet")
        atomic_parquet(sorted_reports(names), work / "reports.parquet",
                       row_group_size=REPORT_ROW_GROUP_ROWS)


def sorted_reports(shards: Sequence[Path]) -> pa.Table | pd.DataFrame:
    """`reports.parquet`'s rows: every shard's reports, in id order.

    Concatenated and sorted in Arrow, not pandas: the texts stay in compact buffers (a few
    hundred bytes a record), not a Python string each, and are freed when written."""
    tables = [table.replace_schema_metadata(None) for table in map(pq.read_table, shards)
              if table.num_rows]
    if not tables:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    return pa.concat_tables(tables, promote_options="default").sort_by("id")
