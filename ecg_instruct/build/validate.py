"""Every configuration check of a build, run before anything is written.

A problem with the recipe, the templates or the output folder costs the user one line and no
work; found after an hour of building, it would cost the hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ecg_instruct.build.recipe import check_values
from ecg_instruct.errors import UserError
from ecg_instruct.instruct.check import check_templates
from ecg_instruct.instruct.fields import load_statement_tables
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.paths import is_within
from ecg_instruct.reports.stage import REPORT_COLUMNS, translator_provenance
from ecg_instruct.schema import INDEX_COLUMNS
from ecg_instruct.signals.quality import QualityConfig
from ecg_instruct.sources import source_root

if TYPE_CHECKING:
    from ecg_instruct.build.options import BuildOptions


def synthetic_records(sources: Sequence[str]) -> list[dict]:
    """Stand-in records to render every template once before the build writes anything.

    One with every optional field set and one with every optional field missing, per source, so
    that a template that breaks on a real record (a typo, `{{ age | int }}` on a missing age) is
    a configuration error up front, not a crash after an hour of work.
    """
    records = []
    for source in sources:
        full = {name: "" for name in (*INDEX_COLUMNS, *REPORT_COLUMNS)}
        full.update({
            "id": f"{source}/validate", "source": source, "native_id": "1", "patient_id": "1",
            "path": "validate", "fs": 500, "n_samples": 5000, "labels": ["NORM"],
            "scp_codes": '{"NORM": 100.0}', "age": 63.0, "sex": "female",
            "measurements": {"rr_interval": 857.0, "p_onset": 40.0, "p_end": 148.0,
                             "qrs_onset": 200.0, "qrs_end": 292.0, "t_end": 580.0,
                             "p_axis": 60.0, "qrs_axis": 30.0, "t_axis": 45.0,
                             "heart_rate": 70.0},
            "split": "train", "report": "Sinus rhythm. Normal ECG.",
            "report_raw": "Sinus rhythm. Normal ECG.", "report_original": "Sinus rhythm. Normal ECG.",
            "report_language": "en", "translation_coverage": 1.0,
        })
        records.append(full)
        records.append({**full, "age": None, "sex": None, "labels": [], "scp_codes": "{}",
                        "measurements": None})
    return records


def _validate_templates(options: BuildOptions, library: TemplateLibrary) -> None:
    """Render every template on stand-in records with the build's own invariants."""
    statements = load_statement_tables(options.raw_dir, options.sources)
    check_templates(library, synthetic_records(options.sources), options.recipe.instruct,
                    statements)


def _validate_locations(options: BuildOptions) -> None:
    """`--out` must not overlap the input, and may only replace a dataset we published."""
    out = options.out
    for source in options.sources:
        root = source_root(options.raw_dir, source)
        if is_within(out, root) or is_within(root, out):
            raise UserError(f"output folder overlaps the {source} input {root}", path=out,
                            fix="choose an --out outside --raw-dir")
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", path=out, fix="choose another --out")
    if out.is_dir() and any(out.iterdir()):
        names = {p.name for p in out.iterdir()}
        if not {"README.md", "rejects.parquet"} <= names or not names <= PUBLISHED_NAMES:
            raise UserError(
                "exists and is not a dataset written by ecg-instruct; refusing to replace it",
                path=out, fix="choose another --out, or move that folder away",
            )


#: Everything `_publish` writes at the top of the output folder (checked before every swap). An
#: existing `--out` is replaced only if it holds nothing else, so a user's files are never lost.
PUBLISHED_NAMES = {"README.md", "rejects.parquet", "data", "figures"}


def validate_build(options: BuildOptions) -> TemplateLibrary:
    """Every configuration check, before anything is written."""
    # Again here: a recipe changed in code (dataclasses.replace) never went through load_recipe.
    check_values(options.recipe, options.recipe.path or f"recipe {options.recipe.name}")
    QualityConfig.from_dict(options.recipe.signals.quality, source=options.recipe.path)
    translator_provenance(options.recipe.reports)
    library = TemplateLibrary(options.template_dirs)
    for task in options.recipe.instruct.tasks:
        if not library.for_task(task):
            raise UserError(f"no templates for task {task!r}", path=options.recipe.path,
                            fix=f"add DIR/{task}/*.j2 and pass --templates DIR, or remove "
                                f"{task} from instruct.tasks")
    if options.recipe.instruct.system_template not in library.templates:
        raise UserError(f"system template {options.recipe.instruct.system_template!r} not found",
                        path=options.recipe.path, fix="fix instruct.system_template")
    if options.workers < 1:
        raise UserError("--workers must be at least 1", fix="e.g. --workers 2")
    _validate_templates(options, library)
    _validate_locations(options)
    if options.recipe.ecgqa is not None:
        from ecg_instruct.sources.ecgqa import check_release, variants_of

        check_release(options.raw_dir, options.sources, variants_of(options.recipe.ecgqa.variant))
    return library
