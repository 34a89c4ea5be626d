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
        str,
        typer.Option(
            help="auto (nltk, plus METEOR 1.5 when java is there), nltk, java (METEOR 1.5) or none."
        ),
    ] = "auto",
    bertscore_model: Annotated[
        Path | None,
        typer.Option(help="Local model folder for BERTScore (e.g. roberta-large); none: absent."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap replicates for the 95 % intervals (seeded by --seed).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for noise and the shuffled control.")] = 0,
    device: Annotated[str, typer.Option()] = "auto",
    threads: Annotated[
        int,
        typer.Option(help="CPU threads for torch (0: one per core not busy with other work; "
                     "for a --model run one per core)."),
    ] = 0,
    out_dir: Annotated[
        Path | None, typer.Option(help="Where to write (default: run folder).")
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")
    ] = None,
) -> None:
    """Generate reports for a split and write metrics.json + predictions.parquet."""
    from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run
    from ecg_instruct.train.trainer import cpu_cores, set_threads

    if not threads and _is_pretrained_lm_run(run):
        threads = cpu_cores()  # as train-baseline --model: large products keep threads busy
    set_threads(threads)

    try:
        result = evaluate_run(
            EvalOptions(
                run=run, split=split, eval_config=eval_config,
                data=None if data is None else str(Path(data).resolve()),
                max_new_tokens=max_new_tokens, batch_size=batch_size, limit=limit,
                controls=controls, noise=noise, meteor=meteor, seed=seed, device=device,
                bertscore_model=None if bertscore_model is None else str(bertscore_model),
                bootstrap=bootstrap,
                out_dir=out_dir, progress=progress,
            )  # fmt: skip
        )
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if "majority_baseline" in result:  # ECG-QA questions
        from ecg_instruct.evaluate.ecgqa_accuracy import format_accuracy

        for row in result["rows"]:
            typer.echo(f"{row['config']}/{row['split']} {row['condition']}: "
                       f"{format_accuracy(row)}")
        typer.echo(f"majority-answer baseline: {format_accuracy(result['majority_baseline'])}")
        typer.echo(f"wrote {result['out_dir']}/metrics.json")
        return
    for row in result["rows"]:
        typer.echo(f"{row['config']}/{row['split']} {row['condition']}: {format_metrics(row)}")
    typer.echo(f"wrote {result['out_dir']}/metrics.json")
    typer.echo(f"wrote {result['out_dir']}/report.html")


def _is_pretrained_lm_run(run: Path) -> bool:
    import json

    try:
        return bool(json.loads((Path(run) / "run.json").read_text()).get("hf_model"))
    except (OSError, ValueError):
        return False  # evaluate_run reports the missing or broken run.json


def format_metrics(row: dict) -> str:
    """One line: ``bleu_4=0.4123 [0.390, 0.431] ...`` for every metric present."""
    from ecg_instruct.evaluate.scoring import METRICS

    parts = []
    for m in METRICS:
        if row.get(m) is None:
            continue
        ci = (row.get("ci95") or {}).get(m)
        parts.append(f"{m}={row[m]:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    return " ".join(parts)
