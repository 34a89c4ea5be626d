"""`ecg-instruct download`: the typer command, a thin wrapper over `download_release`.

The lead registers it in `ecg_instruct/cli.py` as `app.command("download")(download)`. It turns
every `UserError` into one line on stderr and exit code 2 itself, so the command behaves the same
whichever app hosts it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ecg_instruct.build.recipe import load_recipe
from ecg_instruct.download.fetch import FetchConfig, Interrupted
from ecg_instruct.download.run import Summary, download_release
from ecg_instruct.errors import UserError


class Dataset(str, Enum):
    """Releases the command knows (PhysioNet open access; ECG-QA from its repository)."""

    ptbxl = "ptbxl"
    mimic = "mimic"
    cinc2021 = "cinc2021"
    ecgqa = "ecgqa"


class Rate(str, Enum):
    """PTB-XL record folders: records100 (100 Hz) or records500 (500 Hz)."""

    r100 = "100"
    r500 = "500"


class Split(str, Enum):
    """Splits as the builder assigns them (patient-level for MIMIC)."""

    train = "train"
    validation = "validation"
    test = "test"


def download(
    dataset: Annotated[Dataset, typer.Argument(
        help="Release to fetch: ptbxl, mimic, cinc2021 (Challenge 2021) or ecgqa (ECG-QA "
             "questions, both editions).")],
    out: Annotated[Path, typer.Option(
        help="Raw-data folder; files go to OUT/ptb-xl/, OUT/mimic-iv-ecg/, "
             "OUT/challenge-2021/ or OUT/ecg-qa/.")] = Path("data/raw"),
    base_url: Annotated[str | None, typer.Option(
        help="Release URL (the folder holding SHA256SUMS.txt), e.g. a private mirror. "
             "Default: PhysioNet. ecgqa: the repository root as raw files (default "
             "https://raw.githubusercontent.com/Jwoo5/ecg-qa/master; what was fetched, with "
             "sha256s, goes to OUT/ecg-qa/SOURCE.json).")] = None,
    rate: Annotated[Rate | None, typer.Option(
        help="PTB-XL only: fetch records100 or records500, not both.")] = None,
    limit: Annotated[int | None, typer.Option(
        help="Fetch only the first N records (PTB-XL by ecg_id, MIMIC by subject/study).",
        min=1)] = None,
    records: Annotated[Path | None, typer.Option(
        help="Text file: one record path (records500/00000/00001_hr) or id (ecg_id / "
             "study_id) per line.")] = None,
    split: Annotated[Split | None, typer.Option(
        help="Fetch only the records of one split (MIMIC: patient-level, as the build "
             "assigns it; PTB-XL: strat_fold 9 validation, 10 test).")] = None,
    metadata_only: Annotated[bool, typer.Option(
        "--metadata-only", help="Fetch only the CSVs and other small files.")] = False,
    connections: Annotated[int, typer.Option(
        help="Parallel connections (be polite: PhysioNet is a shared service).")] = 4,
    database: Annotated[list[str] | None, typer.Option(
        help="cinc2021 only: fetch the records of this Challenge database (repeatable), e.g. "
             "--database ptb-xl --database georgia.")] = None,
    retries: Annotated[int, typer.Option(
        help="Retries per file on dropped connections, timeouts, 429 and 5xx.", min=0)] = 5,
    recipe: Annotated[str | None, typer.Option(
        help="Recipe whose split settings --split follows; pass the one you will build with "
             "(a bundled name such as meit, or a YAML file; default: meit's).")] = None,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress", help="Progress bars on stderr (default: when a terminal).",
        show_default=False)] = None,
) -> None:
    """Fetch a PhysioNet release (or a subset), resumable and verified against SHA256SUMS.txt.

    Re-run the same command after any interruption: verified files are skipped and partial
    files continue where they stopped.
    """
    from ecg_instruct.interrupts import restore_default_sigint

    restore_default_sigint()  # Ctrl-C / kill -INT work even when started as `cmd &`
    try:
        if dataset is Dataset.ecgqa:
            _no_record_options(rate=rate, limit=limit, records=records, split=split,
                               metadata_only=metadata_only or None, database=database)
            from ecg_instruct.download.ecgqa import download_ecgqa

            summary = download_ecgqa(out, base_url, progress=progress,
                                     config=FetchConfig(retries=retries))
            _report(summary)
            if not summary.ok:
                raise typer.Exit(1)
            return
        split_config = load_recipe(recipe).split if recipe is not None else None
        summary = download_release(
            dataset.value,
            out,
            base_url=base_url,
            rate=int(rate.value) if rate is not None else None,
            limit=limit,
            records_file=records,
            split=split.value if split is not None else None,
            metadata_only=metadata_only,
            connections=connections,
            databases=database or None,
            split_config=split_config,
            progress=progress,
            config=FetchConfig(retries=retries),
        )
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Interrupted as exc:
        done = exc.summary
        counts = (f" ({done.fetched} fetched, {done.skipped} verified so far)"
                  if isinstance(done, Summary) else "")
        typer.echo(f"interrupted{counts} — re-run the same command to resume", err=True)
        raise typer.Exit(130) from None
    _report(summary)
    if not summary.ok:
        raise typer.Exit(1)


def _no_record_options(**given: object) -> None:
    """ECG-QA has no records to choose: the PhysioNet subset options are an error, not ignored."""
    used = [name for name, value in given.items() if value]
    if used:
        raise UserError(f"--{used[0].replace('_', '-')} selects PhysioNet records; ECG-QA's "
                        "question files are fetched whole", fix="drop it for `download ecgqa`")


def _report(summary: Summary) -> None:
    typer.echo(summary.line())
    for result in summary.failed[:20]:
        typer.echo(f"failed: {result.path}: {result.detail}", err=True)
    if len(summary.failed) > 20:
        typer.echo(f"failed: ... and {len(summary.failed) - 20} more", err=True)
    if summary.failed:
        typer.echo("re-run the same command to retry the failed files", err=True)
    for stem in summary.unlisted[:5]:
        typer.echo(f"warning: record {stem} is in the metadata but not in SHA256SUMS.txt",
                   err=True)
