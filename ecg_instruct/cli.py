"""The `ecg-instruct` command line. Each command is a thin wrapper over a library function."""

from __future__ import annotations

import errno
import os
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ecg_instruct.errors import UserError

app = typer.Typer(
    help="Turn raw ECG archives (PTB-XL, MIMIC-IV-ECG) into instruction-tuning datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
SAMPLE_MARKER = ".complete"  # ecg_instruct.sample.folder.COMPLETE_MARKER
#: The marker text of the default sample mirror (`ecg-instruct sample` without --records).
SAMPLE_TEXT = "written by `ecg-instruct sample`\n"


class SourceChoice(str, Enum):
    ptbxl = "ptbxl"
    mimic = "mimic"
    cinc2021 = "cinc2021"
    code15 = "code15"
    all = "all"


class SplitChoice(str, Enum):
    train = "train"
    validation = "validation"
    test = "test"


def _one_line(text: object) -> str:
    """One line of plain text, safe to print through rich (brackets are not markup)."""
    from rich.markup import escape

    return escape(" ".join(str(text).split()))


def _fail(error: UserError) -> None:
    console.print(f"[bold red]error:[/] {_one_line(error)}", highlight=False, soft_wrap=True,
                  markup=True)
    raise typer.Exit(2)


def _log_traceback(error: BaseException) -> Path:
    """Write the full traceback (with a worker's remote traceback) to a log file; its path."""
    import tempfile
    import time
    import traceback

    stamp = time.strftime("%Y%m%d-%H%M%S")
    handle, name = tempfile.mkstemp(prefix=f"ecg-instruct-error-{stamp}-", suffix=".log")
    with os.fdopen(handle, "w", encoding="utf-8") as log:
        log.write(f"ecg-instruct {' '.join(sys.argv[1:])}\n\n")
        log.write("".join(traceback.format_exception(error)))
    return Path(name)


def _guarded(action, options: dict | None = None, rerun: str = "rerun the same command to resume"):
    """Run a command body: user errors, Ctrl-C, faults of the machine (unwritable or full
    disk), unreadable dataset files, missing optional packages and bugs each end in one line,
    never a traceback. `options` are the command's arguments (its --data/--run name the
    dataset to search for a damaged file)."""
    import click

    from ecg_instruct.command_errors import damaged_dataset_error, missing_module_error
    from ecg_instruct.interrupts import restore_default_sigint

    restore_default_sigint()
    try:
        return action()
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort,
            click.ClickException):
        raise  # the command's own exit status (or typer's usage errors)
    except UserError as error:
        _fail(error)
    except KeyboardInterrupt:
        console.print("interrupted: completed work is kept; rerun the same command to resume",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    except OSError as error:
        if error.errno in _ENVIRONMENT_ERRNOS:
            where = f"{error.filename}: " if error.filename else ""
            console.print(f"[bold red]error:[/] {_one_line(where + (error.strerror or str(error)))}"
                          f" — {_ENVIRONMENT_ERRNOS[error.errno]}, then {rerun}",
                          highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(1) from None
        damaged = damaged_dataset_error(error, options or {})
        if damaged is not None:
            _fail(damaged)
        _internal(error)
    except ImportError as error:
        missing = missing_module_error(error)
        if missing is None:
            _internal(error)
        _fail(missing)
    except Exception as error:  # a bug (or a broken environment): say where the details are
        damaged = damaged_dataset_error(error, options or {})
        if damaged is not None:
            _fail(damaged)
        _internal(error)


def one_line_errors(command):
    """`command` (a typer command function) with every fault ended by :func:`_guarded`."""
    import functools

    from ecg_instruct.command_errors import quiet_dataset_read_errors

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        quiet_dataset_read_errors()
        return _guarded(lambda: command(*args, **kwargs), kwargs, rerun="rerun the command")

    return wrapper


def _internal(error: BaseException) -> None:
    log = _log_traceback(error)
    summary = _one_line(f"{type(error).__name__}: {error}")[:300]
    console.print(f"[bold red]internal error:[/] {summary} — full traceback in {log}; "
                  f"please report it", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(1) from None


#: Operating-system errors that are the machine's, not a bug: what to do about each.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "free disk space", errno.EDQUOT: "free space within your quota",
    errno.EACCES: "check the folder's permissions", errno.EPERM: "check the folder's permissions",
    errno.EROFS: "choose a writable --out", errno.EMFILE: "raise the open-file limit (ulimit -n)",
    errno.ENOTDIR: "a parent of that path is a file, not a folder: choose another --out",
    errno.EISDIR: "that path is a folder: name a file",
}


def write_sample_collections(folder: Path) -> None:
    """The sample's Challenge 2021 folder (with PTB-XL's records re-issued, as the real one
    does) and, when h5py is installed (the `code15` extra), its CODE-15% folder."""
    from ecg_instruct.sample.cinc2021 import write_cinc2021

    write_cinc2021(folder, ptbxl_root=folder / "ptb-xl")
    _write_code15_part(folder)


def _h5py_missing() -> bool:
    try:
        import h5py  # noqa: F401
    except ImportError:
        return True
    return False


CODE15_ADVICE = 'CODE-15% needs h5py: pip install "ecg-instruct[code15]"'


def _write_code15_part(folder: Path) -> None:
    """The sample's `code-15/` folder, written beside and renamed into place (a mirror marked
    complete never holds half of it); without h5py, one line saying which extra to install."""
    if _h5py_missing():
        console.print(f"Sample: no code-15/ folder ({CODE15_ADVICE}).", highlight=False,
                      markup=False)
        return
    import shutil

    from ecg_instruct.sample.code15 import CODE15_DIR, write_code15

    staging = folder / ".code-15.tmp"
    shutil.rmtree(staging, ignore_errors=True)  # our own leftover (inside our sample mirror)
    write_code15(staging)
    os.replace(staging / CODE15_DIR, folder / CODE15_DIR)
    staging.rmdir()


def ensure_sample_mirror(folder: Path, option: str = "--out") -> Path:
    """Write the synthetic sample mirror into `folder` unless a complete one is there.

    A complete default mirror written without h5py gets its `code-15/` part once h5py is
    installed. A non-empty folder that is not a sample mirror is refused (never deleted)."""
    from ecg_instruct.sample import write_sample_mirror
    from ecg_instruct.sample.folder import claim_sample_folder, mark_sample_complete

    marker = folder / SAMPLE_MARKER
    if marker.is_file():
        if marker.read_text() == SAMPLE_TEXT and not (folder / "code-15").is_dir() \
                and not _h5py_missing():
            console.print(f"Sample: adding the code-15/ folder to {folder}/ (h5py is now "
                          f"installed).", highlight=False, markup=False)
            _write_code15_part(folder)
        if not (folder / "ecg-qa").exists() and \
                (folder / "ptb-xl" / "ptbxl_database.csv").is_file():
            # a whole mirror written before the questions existed: add them (its labels are there)
            from ecg_instruct.sample.ecgqa import write_ecgqa_sample

            write_ecgqa_sample(folder)
        return folder
    claim_sample_folder(folder, option)
    write_sample_mirror(folder)
    write_sample_collections(folder)
    mark_sample_complete(folder, SAMPLE_TEXT)
    return folder


def _print_instructions(info) -> None:
    """Examples per task and split, and template applications skipped for a missing field."""
    context = info.card_context() if info is not None else None
    if not context or not context["rows"]:
        return
    table = Table(title=f"instruction examples (layout {context['layout']})")
    for column in ("task", "templates", *context["splits"], "total"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for row in context["rows"]:
        table.add_row(row["task"], str(row["templates"]),
                      *(str(row[s]) for s in context["splits"]), str(row["total"]))
    console.print(table)
    if context["skips"]:
        skipped = "; ".join(f"{s['task']}/{s['missing']} {s['count']}" for s in context["skips"])
        console.print(f"templates skipped for a missing field: {skipped}", highlight=False)


def _print_summary(summary) -> None:
    table = Table(title=f"build summary: {summary.out}")
    for column in ("source", "split", "records in", "published", "rejected"):
        table.add_column(column, justify="left" if column in ("source", "split") else "right")
    for row in summary.counts.itertuples():
        table.add_row(row.source, row.split, str(row.input), str(row.published), str(row.rejected))
    console.print(table)
    if len(summary.reasons):
        reasons = Table(title="rejected by reason")
        for column in ("source", "stage", "reason", "records"):
            reasons.add_column(column, justify="right" if column == "records" else "left")
        for row in summary.reasons.itertuples():
            reasons.add_row(row.source, row.stage, row.reason, str(row.count))
        console.print(reasons)
    _print_instructions(summary.instructions)
    if getattr(summary, "fidelity", None) is not None:
        fidelity = summary.fidelity
        agreement = Table(title=f"PTB-XL label agreement (report states the SCP statement), "
                                f"diagnostic overall {fidelity.diagnostic:.1%}")
        for column in ("code", "statement", "kind", "records", "stated", "agreement"):
            agreement.add_column(column, justify="right" if column in
                                 ("records", "stated", "agreement") else "left")
        for row in fidelity.table.head(15).itertuples(index=False):
            agreement.add_row(row.code, row.description, row.kind, str(row.n_records),
                              str(row.n_stated), f"{row.agreement:.1%}")
        console.print(agreement)
    totals = summary.totals
    console.print(
        f"records in = published + rejected: {totals['input']} = {totals['published']} + "
        f"{totals['rejected']}",
        highlight=False,
    )
    questions = getattr(summary, "questions", None)
    if questions is not None:
        splits = ", ".join(f"{split} {n}" for split, n in questions.counts.items())
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(questions.reasons.items())) or "none"
        console.print(
            f"ECG-QA questions ({questions.policy} splits): {splits}; rejected: {reasons}\n"
            f"questions in = published + rejected: {questions.n_in} = {questions.n_published} + "
            f"{questions.n_rejected}", highlight=False)


def _override_reports(recipe, translator, translator_model, report_style):
    """Command-line overrides of the recipe's `reports:` section, validated like the recipe."""
    import dataclasses

    changes = {}
    if translator is not None:
        changes["translator"] = translator
    if translator_model is not None:
        changes["translator_model"] = str(translator_model)
    if report_style is not None:
        if report_style not in ("text", "labels"):
            raise UserError(f"--report-style {report_style!r} is not text or labels",
                            fix="use --report-style text or --report-style labels")
        changes["report_style"] = report_style
    if not changes:
        return recipe
    return dataclasses.replace(recipe, reports=dataclasses.replace(recipe.reports, **changes))


@app.command()
def build(
    source: SourceChoice = typer.Option(SourceChoice.all, help="Which source(s) to build."),
    split: list[SplitChoice] = typer.Option(
        None, help="Build only this split (repeatable). Default: all splits."
    ),
    raw_dir: Path = typer.Option(Path("data/raw"), help="PhysioNet mirror: ptb-xl/, mimic-iv-ecg/."),
    out: Path = typer.Option(
        None, help="Where the dataset is published. Default: out/meit, or "
        "out/meit-<source>-<split> for a build filtered by --source/--split."),
    recipe: str = typer.Option(
        "meit", help="Recipe: a bundled name (meit, meit-100hz, meit-instruct, meit-multisource) "
        "or a YAML file."
    ),
    workers: int = typer.Option(0, help="Worker processes for every stage (0 = all cores)."),
    seed: int = typer.Option(0, help="Seed for every random choice (template sampling)."),
    templates: list[Path] = typer.Option(
        None, help="Extra template folder(s), added to the bundled ones (same id overrides)."
    ),
    sample_fallback: Path = typer.Option(
        None, help="If --raw-dir holds no mirror, build from a synthetic sample mirror here."
    ),
    translator: str = typer.Option(
        None, help="Override the recipe's translator: glossary (offline default) or marian."
    ),
    translator_model: Path = typer.Option(
        None, help="Local MarianMT model folder for --translator marian."
    ),
    report_style: str = typer.Option(
        None, help="Override the recipe's report style: text, or labels (composed from SCP codes)."
    ),
    progress: bool = typer.Option(True, help="Show progress bars."),
    fresh: bool = typer.Option(False, help="Discard the finished work of earlier builds into "
                               "this --out and start from nothing."),
    overwrite: bool = typer.Option(False, help="Replace a dataset in --out that was built with "
                                   "another --source/--split filter."),
) -> None:
    """Build (or resume) the instruction dataset from a PhysioNet mirror."""
    from ecg_instruct.build.pipeline import BuildOptions
    from ecg_instruct.build.pipeline import build as run_build
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.instruct.templates import BUNDLED_TEMPLATES
    from ecg_instruct.sources import source_root

    if out is None:
        out = default_out(source.value, [s.value for s in split] if split else None)

    def run():
        from ecg_instruct.mirror_choice import sample_instead_of_default, sample_notice

        raw = raw_dir
        parsed = load_recipe(recipe)
        if sample_fallback is None and (sample := sample_instead_of_default(raw)) is not None:
            console.print(sample_notice(raw, sample), highlight=False, markup=False)
            raw = sample
        parsed = _override_reports(parsed, translator, translator_model, report_style)
        _warn_task_counts(parsed, templates)
        wanted = parsed.sources.enabled if source == SourceChoice.all else [source.value]
        present = [s for s in wanted if source_root(raw, s).is_dir()]
        used_sample = False
        if not present and sample_fallback is not None:
            console.print(
                f"No PhysioNet mirror in {raw}/: building from the synthetic sample mirror "
                f"in {sample_fallback}/ (real data: `make download` or `ecg-instruct download`).",
                highlight=False,
            )
            raw, used_sample = ensure_sample_mirror(sample_fallback, "--sample-fallback"), True
            present = [s for s in wanted if source_root(raw, s).is_dir()]
            if "code15" in wanted and "code15" not in present:
                if not present:
                    raise UserError("the sample mirror has no code-15/ folder", path=raw,
                                    fix=f"{CODE15_ADVICE}, then rerun")
                console.print(f"Skipping code15: the sample mirror has no code-15/ "
                              f"({CODE15_ADVICE}).", highlight=False, markup=False)
        elif source == SourceChoice.all and present and len(present) < len(wanted):
            skipped = ", ".join(s for s in wanted if s not in present)
            console.print(f"Skipping {skipped}: not found under {raw}/.", highlight=False)
        sources = present if source == SourceChoice.all and present else wanted
        return run_build(
            BuildOptions(
                raw_dir=raw,
                out=out,
                recipe=parsed,
                sources=sources,
                splits=[s.value for s in split] if split else None,
                workers=workers or os.cpu_count() or 1,
                seed=seed,
                template_dirs=[BUNDLED_TEMPLATES, *templates] if templates else None,
                progress=progress and sys.stderr.isatty(),
                # However the mirror was chosen, a sample mirror's card must say it is synthetic
                # (and the same mirror must give the same card bytes).
                sample=used_sample or (Path(raw) / SAMPLE_MARKER).is_file(),
                fresh=fresh,
                overwrite=overwrite,
            )
        )

    summary = _guarded(run)
    _print_summary(summary)
    console.print(f"Dataset written to {out}/ — load it with datasets.load_dataset(\"{out}\")",
                  highlight=False)


def _warn_task_counts(recipe, templates: list[Path] | None) -> None:
    """Say when the recipe asks for more examples of a task than there are templates."""
    from ecg_instruct.build.recipe import task_count_warnings
    from ecg_instruct.instruct.templates import BUNDLED_TEMPLATES, TemplateLibrary

    library = TemplateLibrary([BUNDLED_TEMPLATES, *templates] if templates else None)
    for line in task_count_warnings(recipe, library):
        console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)


def default_out(source: str, splits: list[str] | None) -> Path:
    """`out/meit` for a full build; a filtered build gets its own folder (`out/meit-mimic-test`)
    so that trying a README example never replaces a full build."""
    parts = ([] if source == SourceChoice.all.value else [source]) + sorted(splits or [])
    return Path("out/" + "-".join(["meit", *parts]))


@app.command()
def sample(
    out: Path = typer.Option(Path("data/sample"), help="Folder for the sample mirror."),
    force: bool = typer.Option(False, help="Rewrite even if a complete mirror is there."),
    records: int | None = typer.Option(
        None, min=30, help="Records per source, with reports that follow from the signals "
        "(rate, rhythm, QRS width, voltage, axis); ~3,000 gives >= 300 PTB-XL test records.",
    ),
    mimic_records: int | None = typer.Option(
        None, min=30, help="MIMIC-IV-ECG records with --records (default: same as --records)."
    ),
) -> None:
    """Write the synthetic sample mirror (PTB-XL, MIMIC-IV-ECG, Challenge 2021, CODE-15% layouts)."""
    def run():
        if records is not None:
            from ecg_instruct.sample import write_learnable_mirror

            write_learnable_mirror(out, records, mimic_records or records, SAMPLE_MARKER)
            return
        if force and (out / SAMPLE_MARKER).exists():
            # Still a sample mirror for claim_sample_folder: it is rewritten, not refused.
            from ecg_instruct.sample.folder import WRITING_MARKER

            (out / WRITING_MARKER).write_text("rewriting (--force)\n")
            (out / SAMPLE_MARKER).unlink()
        ensure_sample_mirror(out)

    _guarded(run)
    parts = ", ".join(sorted(f"{p.name}/" for p in out.iterdir() if p.is_dir()
                             and not p.name.startswith(".")))
    console.print(f"Sample mirror written to {out}/ ({parts})", highlight=False, markup=False)


templates_app = typer.Typer(help="List, show and check prompt templates.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


class ExportFormat(str, Enum):
    llava = "llava"
    sharegpt = "sharegpt"
    openai_jsonl = "openai-jsonl"
    meit = "meit"


def _template_setup(templates: list[Path] | None, recipe: str | None):
    from ecg_instruct.build.recipe import InstructConfig, load_recipe
    from ecg_instruct.instruct.templates import BUNDLED_TEMPLATES, TemplateLibrary

    library = TemplateLibrary([BUNDLED_TEMPLATES, *templates] if templates else None)
    cfg = load_recipe(recipe).instruct if recipe else InstructConfig()
    return library, cfg


def _templates_sample(sample: Path) -> Path:
    """The sample mirror templates render on; says where it is written when it is not there."""
    if not (sample / SAMPLE_MARKER).is_file():
        console.print(f"Writing the synthetic sample mirror to {sample}/ to render the templates "
                      f"on (choose the folder with --sample, or use --data/--raw-dir).",
                      highlight=False, markup=False)
    return ensure_sample_mirror(sample, "--sample")


def _check_records(data: Path | None, raw_dir: Path | None, sample: Path):
    """Records and statement tables for rendering: a dataset, a mirror, or the sample mirror."""
    from ecg_instruct.instruct.check import records_from_dataset, records_from_mirror
    from ecg_instruct.instruct.fields import load_statement_tables
    from ecg_instruct.sources import source_root

    mirror = raw_dir if raw_dir is not None else _templates_sample(sample)
    statements = load_statement_tables(mirror, ["ptbxl"]) \
        if source_root(mirror, "ptbxl").is_dir() else {}
    records = records_from_dataset(data) if data is not None else records_from_mirror(mirror)
    return records, statements


@templates_app.command("list")
def templates_list(
    templates: list[Path] = typer.Option(None, help="Extra template folder(s)."),
) -> None:
    """List every template: id, task, required fields, file."""
    try:
        library, _ = _template_setup(templates, None)
    except UserError as error:
        _fail(error)
    table = Table(title=f"{len(library.templates)} templates")
    for column in ("id", "task", "turns", "requires", "file"):
        table.add_column(column)
    for template_id, template in sorted(library.templates.items()):
        table.add_row(template_id, template.task, str(len(template.turns)),
                      ", ".join(template.requires), str(template.path))
    Console().print(table)
    counts = ", ".join(f"{task}: {len(library.for_task(task))}" for task in library.tasks())
    console.print(f"per task: {counts}", highlight=False)


@templates_app.command("show")
def templates_show(
    template_id: str = typer.Argument(..., help="Template id, e.g. report/plain-01."),
    templates: list[Path] = typer.Option(None, help="Extra template folder(s)."),
    data: Path = typer.Option(None, help="Render on a record of this published dataset."),
    raw_dir: Path = typer.Option(None, help="Render on a record of this PhysioNet mirror."),
    sample: Path = typer.Option(Path("data/sample"), help="Sample mirror (default records)."),
    recipe: str = typer.Option(
        None, help="Recipe (bundled name or YAML file) whose `instruct` settings to use."
    ),
) -> None:
    """Print a template's source and one rendering on a record it applies to."""
    from ecg_instruct.instruct.check import show_template

    try:
        library, cfg = _template_setup(templates, recipe)
        records, statements = _check_records(data, raw_dir, sample)
        template, messages = show_template(library, template_id, records, cfg, statements)
    except UserError as error:
        _fail(error)
    out = Console()
    out.print(f"{template.id} (task {template.task}) — {template.path}", highlight=False)
    out.print(f"requires: {', '.join(template.requires) or '-'}", highlight=False)
    out.print(template.source, markup=False, highlight=False)
    if messages is None:
        out.print("(no record meets its requirements)", highlight=False)
    for message in messages or []:
        out.print(f"[{message['role']}] {message['content']}", markup=False, highlight=False)


@templates_app.command("check")
def templates_check(
    templates: list[Path] = typer.Option(None, help="Extra template folder(s) to check."),
    data: Path = typer.Option(None, help="Render on the records of this published dataset."),
    raw_dir: Path = typer.Option(None, help="Render on the records of this PhysioNet mirror."),
    sample: Path = typer.Option(Path("data/sample"), help="Sample mirror (default records)."),
    recipe: str = typer.Option(
        None, help="Recipe (bundled name or YAML file) whose `instruct` settings to use."
    ),
) -> None:
    """Render every template on every record it applies to; fail naming the first bad file."""
    from ecg_instruct.instruct.check import check_templates

    try:
        library, cfg = _template_setup(templates, recipe)
        records, statements = _check_records(data, raw_dir, sample)
        result = check_templates(library, records, cfg, statements)
    except UserError as error:
        _fail(error)
    total = sum(result.rendered.values())
    console.print(f"{len(result.rendered)} templates rendered {total} times on "
                  f"{result.n_records} records: all OK", highlight=False)
    if result.never_applicable:
        console.print(f"never applicable on these records (not checked): "
                      f"{', '.join(result.never_applicable)}", highlight=False)


@app.command()
def export(
    format: ExportFormat = typer.Option(..., "--format", help="Target format."),
    data: Path = typer.Option(Path("out/meit"), help="Published dataset (output of build)."),
    out: Path = typer.Option(..., help="Folder for the exported files and ecgs/*.npy."),
    task: list[str] = typer.Option(None, help="Only these task families (repeatable)."),
    split: list[SplitChoice] = typer.Option(None, help="Only these splits (repeatable)."),
    token: str = typer.Option(None, help="Replace the ECG placeholder, e.g. '<image>'."),
    media_key: str = typer.Option("ecg", help="Key of the ECG path (LLaVA uses 'image')."),
) -> None:
    """Export a published dataset for LLaVA-style trainers, TRL, ShareGPT tools or MEIT."""
    from ecg_instruct.export import export_dataset

    summary = _guarded(lambda: export_dataset(
        data, out, format.value, tasks=task or None,
        splits=[s.value for s in split] if split else None, token=token, media_key=media_key),
        {"data": data}, rerun="rerun the command")
    for name, rows in summary.files.items():
        console.print(f"{out / name}: {rows} rows", highlight=False)
    console.print(f"{summary.n_signals} ECGs written to {out / 'ecgs'}/ (.npy, float32 mV)",
                  highlight=False)


def _register_optional_commands() -> None:
    """Commands that live in their own packages (their modules import lazily what they need)."""
    from ecg_instruct.download.command import download
    from ecg_instruct.evaluate.command import evaluate
    from ecg_instruct.evaluate.score_command import score
    from ecg_instruct.plot.command import plot
    from ecg_instruct.train.command import train_baseline

    app.command("download")(one_line_errors(download))
    app.command("train-baseline")(one_line_errors(train_baseline))
    app.command("evaluate")(one_line_errors(evaluate))
    app.command("plot")(one_line_errors(plot))
    app.command("score")(one_line_errors(score))


_register_optional_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
