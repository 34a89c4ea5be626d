"""The `ecg-instruct` command line. Each command is a thin wrapper over a library function."""

from __future__ import annotations

import os
import shutil
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
SAMPLE_MARKER = ".complete"


class SourceChoice(str, Enum):
    ptbxl = "ptbxl"
    mimic = "mimic"
    all = "all"


class SplitChoice(str, Enum):
    train = "train"
    validation = "validation"
    test = "test"


def _fail(error: UserError) -> None:
    console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def ensure_sample_mirror(folder: Path) -> Path:
    """Write the synthetic sample mirror into `folder` unless a complete one is there."""
    from ecg_instruct.sample import write_sample_mirror

    if not (folder / SAMPLE_MARKER).exists():
        if folder.exists():
            shutil.rmtree(folder)
        write_sample_mirror(folder)
        (folder / SAMPLE_MARKER).write_text("written by `ecg-instruct sample`\n")
    return folder


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
    totals = summary.totals
    console.print(
        f"records in = published + rejected: {totals['input']} = {totals['published']} + "
        f"{totals['rejected']}",
        highlight=False,
    )


@app.command()
def build(
    source: SourceChoice = typer.Option(SourceChoice.all, help="Which source(s) to build."),
    split: list[SplitChoice] = typer.Option(
        None, help="Build only this split (repeatable). Default: all splits."
    ),
    raw_dir: Path = typer.Option(Path("data/raw"), help="PhysioNet mirror: ptb-xl/, mimic-iv-ecg/."),
    out: Path = typer.Option(Path("out/meit"), help="Where the dataset is published."),
    recipe: Path = typer.Option(Path("pipelines/meit.yaml"), help="Recipe (pipelines/*.yaml)."),
    workers: int = typer.Option(0, help="Worker processes for signals (0 = all cores)."),
    seed: int = typer.Option(0, help="Seed for every random choice (template sampling)."),
    templates: list[Path] = typer.Option(
        None, help="Extra template folder(s), added to the bundled templates/."
    ),
    sample_fallback: Path = typer.Option(
        None, help="If --raw-dir holds no mirror, build from a synthetic sample mirror here."
    ),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Build (or resume) the instruction dataset from a PhysioNet mirror."""
    from ecg_instruct.instruct.templates import BUNDLED_TEMPLATES
    from ecg_instruct.pipeline import BuildOptions
    from ecg_instruct.pipeline import build as run_build
    from ecg_instruct.recipe import load_recipe
    from ecg_instruct.sources import source_root

    try:
        parsed = load_recipe(recipe)
        wanted = parsed.sources.enabled if source == SourceChoice.all else [source.value]
        present = [s for s in wanted if source_root(raw_dir, s).is_dir()]
        used_sample = False
        if not present and sample_fallback is not None:
            console.print(
                f"No PhysioNet mirror in {raw_dir}/: building from the synthetic sample mirror "
                f"in {sample_fallback}/ (real data: `make download` or `ecg-instruct download`).",
                highlight=False,
            )
            raw_dir, used_sample = ensure_sample_mirror(sample_fallback), True
            present = wanted
        elif source == SourceChoice.all and present and len(present) < len(wanted):
            skipped = ", ".join(s for s in wanted if s not in present)
            console.print(f"Skipping {skipped}: not found under {raw_dir}/.", highlight=False)
        sources = present if source == SourceChoice.all and present else wanted
        summary = run_build(
            BuildOptions(
                raw_dir=raw_dir,
                out=out,
                recipe=parsed,
                sources=sources,
                splits=[s.value for s in split] if split else None,
                workers=workers or os.cpu_count() or 1,
                seed=seed,
                template_dirs=[BUNDLED_TEMPLATES, *templates] if templates else None,
                progress=progress and sys.stderr.isatty(),
                sample=used_sample,
            )
        )
    except UserError as error:
        _fail(error)
    _print_summary(summary)
    console.print(f"Dataset written to {out}/ — load it with datasets.load_dataset(\"{out}\")",
                  highlight=False)


@app.command()
def sample(
    out: Path = typer.Option(Path("data/sample"), help="Folder for the sample mirror."),
    force: bool = typer.Option(False, help="Rewrite even if a complete mirror is there."),
) -> None:
    """Write the synthetic PhysioNet-shaped sample mirror (PTB-XL + MIMIC-IV-ECG layouts)."""
    if force and (out / SAMPLE_MARKER).exists():
        (out / SAMPLE_MARKER).unlink()
    ensure_sample_mirror(out)
    console.print(f"Sample mirror written to {out}/ (ptb-xl/, mimic-iv-ecg/)", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
