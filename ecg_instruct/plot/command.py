"""`ecg-instruct plot`: draw records in the standard 12-lead paper layout.

One record (``--id``) goes to one file (``--out ecg.png``, ``.svg`` or ``.pdf``); a sample of a
split (``--split test --n 6``) goes to one file per record in the folder ``--out``, each at true
paper scale (a grid of six would have to shrink them below 25 mm/s, which defeats reading them).
Like ``evaluate``, a ``UserError`` is printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ecg_instruct.errors import UserError


def file_name(record_id: str, suffix: str) -> str:
    """``ptbxl/00001`` -> ``ptbxl_00001.png``: one flat file per record."""
    return record_id.replace("/", "_") + suffix


def plot(
    data: Annotated[Path | None, typer.Option(help="Published dataset (the --out of build).")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Record id, e.g. ptbxl/00001.")] = None,
    split: Annotated[str | None, typer.Option(help="Plot --n records of this split.")] = None,
    n: Annotated[int, typer.Option("--n", help="How many records with --split.")] = 6,
    raw_dir: Annotated[
        Path | None, typer.Option(help="PhysioNet mirror: plot the raw WFDB record of --id "
                                       "(also a rejected one), with its reject reason marked.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output file (.png/.svg/.pdf) for --id; folder for --split.")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="png, svg or pdf (with --split).")] = "png",
    recipe: Annotated[
        Path | None, typer.Option(help="Recipe whose quality thresholds and PTB-XL rate to use "
                                       "with --raw-dir (default: the built-in defaults, 500 Hz).")
    ] = None,
    dpi: Annotated[int, typer.Option(help="Pixels per inch of a PNG (paper scale is fixed).")] = 150,
    seed: Annotated[int, typer.Option(help="Which records --split picks.")] = 0,
    list_ids: Annotated[
        bool, typer.Option("--list", help="Print the dataset's record ids (of --split) and exit.")
    ] = False,
) -> None:
    """Draw ECGs as cardiologists read them: 3 x 4 leads + a lead II rhythm strip, 25 mm/s, 10 mm/mV."""
    try:
        written = run_plot(data, id, split, n, raw_dir, out, format, recipe, dpi, seed, list_ids)
    except UserError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}")


def run_plot(data: Path | None, record_id: str | None, split: str | None, n: int,
             raw_dir: Path | None, out: Path | None, fmt: str, recipe: Path | None, dpi: int,
             seed: int, list_ids: bool) -> list[Path]:
    """The command's work, returning the files written (``--list`` prints ids instead)."""
    from tqdm import tqdm

    from ecg_instruct.plot.load import published_ids, published_view, raw_view, sample_ids
    from ecg_instruct.plot.paper import FORMATS, render

    if list_ids:
        if data is None:
            raise UserError("--list needs --data", fix="pass the dataset folder with --data")
        for record_id in published_ids(data, split):
            typer.echo(record_id)
        return []
    if f".{fmt}" not in FORMATS:
        raise UserError(f"--format {fmt!r} is not png, svg or pdf", fix="use --format png|svg|pdf")
    if dpi < 10 or dpi > 1200:
        raise UserError(f"--dpi {dpi} is outside 10..1200", fix="use e.g. --dpi 150")
    if record_id is not None:
        if raw_dir is not None:
            from ecg_instruct.mirror_choice import sample_instead_of_default, sample_notice

            if (sample := sample_instead_of_default(raw_dir)) is not None:
                typer.echo(sample_notice(raw_dir, sample), err=True)
                raw_dir = sample
            quality, records = _recipe_settings(recipe)
            view = raw_view(raw_dir, record_id, quality, records, data)
        elif data is not None:
            view = published_view(data, record_id)
        else:
            raise UserError("--id needs --data (a published dataset) or --raw-dir (a mirror)",
                            fix="e.g. ecg-instruct plot --data out/meit --id ptbxl/00001 --out ecg.png")
        target = out if out is not None else Path(file_name(record_id, f".{fmt}"))
        return [render(view, target, dpi)]
    if split is None:
        raise UserError("nothing to plot: give --id, or --split with --data",
                        fix="e.g. ecg-instruct plot --data out/meit --split test --n 6 --out figures/")
    if data is None:
        raise UserError("--split needs --data", fix="pass the dataset folder with --data")
    if n < 1:
        raise UserError(f"--n {n} must be at least 1", fix="e.g. --n 6")
    folder = out if out is not None else Path(f"plots-{split}")
    if folder.suffix.lower() in FORMATS:
        raise UserError("with --split, --out is a folder (one file per record)", path=folder,
                        fix="pass a folder and choose the file type with --format")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    ids = sample_ids(data, split, n, seed)
    for chosen in tqdm(ids, desc="plot", unit="ECG", file=sys.stderr, disable=not sys.stderr.isatty()):
        written.append(render(published_view(data, chosen), folder / file_name(chosen, f".{fmt}"), dpi))
    return written


def _recipe_settings(recipe: Path | None):
    """Quality thresholds and the PTB-XL record rate of ``recipe`` (defaults without one)."""
    from ecg_instruct.signals.quality import QualityConfig

    if recipe is None:
        return QualityConfig(), "hr"
    from ecg_instruct.build.recipe import load_recipe

    parsed = load_recipe(recipe)
    quality = QualityConfig.from_dict(parsed.signals.quality, source=str(recipe))
    return quality, parsed.sources.ptbxl.records
