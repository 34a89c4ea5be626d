"""`ecg-instruct evaluate`: a thin typer wrapper over ``runner.evaluate_run``.

Like ``train-baseline`` it prints a ``UserError`` as one line on stderr and exits 2 itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecg_instruct.errors import UserError


def evaluate(
    run: Annotated[Path, typer.Option(help="Run folder from `train-baseline --out`.")],
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "test",
    eval_config: Annotated[
        str | None, typer.Option(help="Score on another config (zero-shot transfer).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Dataset folder (default: the run's training data).")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="Longest report generated (default: training length).")
    ] = None,
    batch_size: Annotated[int, typer.Option()] = 32,
    limit: Annotated[int | None, typer.Option(help="Score only the first N records.")] = None,
    controls: Annotated[
        bool, typer.Option(help="Also run with the ECG zeroed and shuffled (text-only control).")
    ] = False,
    noise: Annotated[
        str | None,
        typer.Option(help="Robustness sweep: 'default' or e.g. 'meit:0.9,snr:10'."),
    ] = None,
    meteor: Annotated[
        str, typer.Option(help="nltk (offline, default), java (METEOR 1.5) or none.")
    ] = "nltk",
    seed: Annotated[int, typer.Option(help="Seed for noise and the shuffled control.")] = 0,
    device: Annotated[str, typer.Option()] = "auto",
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0: torch's default, all cores).")
    ] = 0,
    out_dir: Annotated[
        Path | None, typer.Option(help="Where to write (default: run folder).")
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")
    ] = None,
) -> None:
    """Generate reports for a split and write metrics.json + predictions.parquet."""
    from ecg_instruct.evaluate.runner import METRICS, EvalOptions, evaluate_run
    from ecg_instruct.train.trainer import set_threads

    set_threads(threads)

    try:
        result = evaluate_run(
            EvalOptions(
                run=run, split=split, eval_config=eval_config,
                data=None if data is None else str(Path(data).resolve()),
                max_new_tokens=max_new_tokens, batch_size=batch_size, limit=limit,
                controls=controls, noise=noise, meteor=meteor, seed=seed, device=device,
                out_dir=out_dir, progress=progress,
            )  # fmt: skip
        )
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for row in result["rows"]:
        values = " ".join(
            f"{m}={row[m]:.4f}" for m in METRICS if row.get(m) is not None
        )
        typer.echo(f"{row['config']}/{row['split']} {row['condition']}: {values}")
    typer.echo(f"wrote {result['out_dir']}/metrics.json")
    typer.echo(f"wrote {result['out_dir']}/report.html")
