"""`ecg-instruct templates list|show|check`: inspect templates and prove they render.

`check` renders every template on every record it applies to (for templates using `query`: once
with a "yes" and once with a "no" draw), with the same invariants as the build (one ECG placeholder
in the first user turn, no empty turn, no rendered missing value). The records come from a
published dataset (`--data`) or from the synthetic sample mirror, so a user's template folder is
checked against real shapes of data before a long build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ecg_instruct.build.recipe import InstructConfig
from ecg_instruct.errors import UserError
from ecg_instruct.instruct.fields import RecordFacts, Statement, record_facts
from ecg_instruct.instruct.stage import check_messages
from ecg_instruct.instruct.templates import PromptTemplate, TemplateLibrary
from ecg_instruct.schema import DERIVED_CONFIGS

RECORD_COLUMNS = ("id", "source", "split", "report", "labels", "scp_codes", "measurements", "age",
                  "sex")


@dataclass
class CheckResult:
    rendered: dict[str, int] = field(default_factory=dict)  # template id -> renders
    never_applicable: list[str] = field(default_factory=list)
    n_records: int = 0


def records_from_dataset(data: Path) -> list[dict[str, Any]]:
    """Record rows (no signals) of a published dataset: `data/<source>/*.parquet`."""
    files = sorted(p for p in (data / "data").glob("*/*.parquet")
                   if p.parent.name not in DERIVED_CONFIGS)
    if not files:
        raise UserError("no published record files (data/<source>/*.parquet)", path=data,
                        fix="pass --data pointing at the output of `ecg-instruct build`")
    records = []
    for path in files:
        try:
            table = pq.read_table(path, columns=list(RECORD_COLUMNS))
        except (OSError, ValueError, KeyError) as exc:  # pyarrow: missing column, not Parquet
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot read record columns ({reason})", path=path,
                            fix="pass --data pointing at a dataset built by ecg-instruct") from None
        records.extend(table.to_pylist())
    return records


def records_from_mirror(raw_dir: Path) -> list[dict[str, Any]]:
    """Index + reports of a PhysioNet-shaped mirror (the sample mirror by default)."""
    from ecg_instruct.build.recipe import Recipe
    from ecg_instruct.index.table import build_index
    from ecg_instruct.reports.stage import run_reports
    from ecg_instruct.sources import source_root

    recipe = Recipe(name="templates-check")
    sources = [s for s in ("ptbxl", "mimic") if source_root(raw_dir, s).is_dir()]
    if not sources:
        raise UserError("no ptb-xl/ or mimic-iv-ecg/ folder", path=raw_dir,
                        fix="pass --raw-dir with a PhysioNet mirror, or --data with a dataset")
    index, _ = build_index(raw_dir, recipe, sources, None)
    reports, _ = run_reports(index.to_dict("records"), recipe.reports)
    return index.merge(reports, on="id", how="inner").to_dict("records")


def _render_all(
    library: TemplateLibrary, template: PromptTemplate, facts: RecordFacts, cfg: InstructConfig,
) -> int:
    contexts = [facts.context]  # exactly what the build renders
    if "query" in template.requires:  # both answers (applicable: both pools are non-empty)
        contexts = [facts.with_query(0.0, 0.0), facts.with_query(0.99, 0.0)]
    for context in contexts:
        turns = library.render_turns(template.id, context)
        check_messages(turns, cfg.ecg_token, template, context.get("report", ""))
    return len(contexts)


def check_templates(
    library: TemplateLibrary, records: Iterable[Mapping[str, Any]], cfg: InstructConfig,
    statements: Mapping[str, Mapping[str, Statement]],
) -> CheckResult:
    """Render every template on every record it applies to; the first failure raises a
    UserError naming the template file."""
    if cfg.system_template not in library.templates:
        raise UserError(f"system template {cfg.system_template!r} not found",
                        path=library.folders[-1], fix="add it or fix instruct.system_template")
    result = CheckResult()
    templates = [t for t in library.templates.values() if t.task != "system"]
    result.rendered = {t.id: 0 for t in templates}
    for record in records:
        result.n_records += 1
        facts = record_facts(record, statements.get(record["source"]), cfg.min_likelihood,
                             cfg.ecg_token)
        present = facts.fields
        library.render(cfg.system_template, facts.context)
        for template in templates:
            if all(name in present for name in template.requires):
                result.rendered[template.id] += _render_all(library, template, facts, cfg)
    result.never_applicable = sorted(t for t, n in result.rendered.items() if n == 0)
    return result


def show_template(library: TemplateLibrary, template_id: str,
                  records: list[Mapping[str, Any]] | None, cfg: InstructConfig,
                  statements: Mapping[str, Mapping[str, Statement]], seed: int = 0,
                  ) -> tuple[PromptTemplate, list[dict[str, str]] | None]:
    """The template and, if a record it applies to exists, one rendering of it."""
    if template_id not in library.templates:
        close = [t for t in library.templates if template_id in t][:3]
        hint = f"; e.g. {', '.join(close)}" if close else ""
        raise UserError(f"no template {template_id!r}", path=library.folders[-1],
                        fix=f"see `ecg-instruct templates list`{hint}")
    template = library.templates[template_id]
    for record in records or []:
        facts = record_facts(record, statements.get(record["source"]), cfg.min_likelihood,
                             cfg.ecg_token)
        if all(name in facts.fields for name in template.requires):
            from ecg_instruct.instruct.stage import render_example

            system = library.render(cfg.system_template, facts.context)
            return template, render_example(library, template, facts, cfg, seed, record["id"], 0,
                                            system)
    return template, None
