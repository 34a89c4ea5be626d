"""`ecg-instruct score`: score any model's reports (a MEIT or PULSE checkpoint's, say) with exactly
the metrics of `evaluate` (``scoring.score``), references from the file or a published dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ecg_instruct.errors import UserError


def dataset_references(data: Path, config: str, split: str) -> tuple[dict[str, str], dict]:
    """id -> reference report (the assistant turn) and id -> scp_codes of a published split."""
    import datasets

    from ecg_instruct.train.data import assistant_text

    if not (Path(data) / "README.md").exists():
        raise UserError("no published dataset here (README.md missing)", data,
                        "pass the --out folder of `ecg-instruct build`")  # fmt: skip
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(str(data), config, split=split)
    except ValueError as exc:
        raise UserError(f"cannot load config {config!r} split {split!r}: {exc}", data) from exc
    wanted = [c for c in ("id", "messages", "report", "scp_codes") if c in ds.column_names]
    cols = ds.select_columns(wanted).to_dict()
    refs = {
        str(i): assistant_text(m, r)
        for i, m, r in zip(cols["id"], cols["messages"], cols["report"], strict=True)
    }
    codes: dict = {}
    for i, value in zip(cols["id"], cols.get("scp_codes") or [None] * len(cols["id"]), strict=True):
        try:
            parsed = json.loads(value) if value else None
        except (TypeError, ValueError):
            parsed = None
        codes[str(i)] = parsed if isinstance(parsed, dict) and parsed else None
    return refs, codes


def score_file(
    predictions: Path,
    data: Path | None = None,
    config: str = "ptbxl",
    split: str = "test",
    meteor: str = "auto",
    bertscore_model: str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    condition: str | None = None,
) -> dict:
    """Metrics of a predictions file (the dict ``evaluate`` writes to metrics.json); in
    ``evaluate``'s own file, of one condition (``clean`` unless `condition` names another).
    ECG-QA question ids are scored by the benchmark's exact-match accuracy."""
    from ecg_instruct.evaluate.ecgqa_score import is_ecgqa, score_questions
    from ecg_instruct.evaluate.predictions_file import read_predictions
    from ecg_instruct.evaluate.scoring import public, score

    rows = read_predictions(predictions, condition)
    if is_ecgqa(rows.ids, config):  # question answering: ECG-QA's exact-match accuracy
        return score_questions(predictions, data, split, bootstrap, seed)
    scp_codes = None
    if data is not None:
        refs_by_id, codes_by_id = dataset_references(data, config, split)
        unknown = [i for i in rows.ids if i not in refs_by_id]
        if unknown:
            raise UserError(
                f"{len(unknown)} id(s) not in {config}/{split} of {data}, e.g. {unknown[:3]}",
                predictions, "score the split the predictions were made for (--config/--split)",
            )  # fmt: skip
        references = [refs_by_id[i] for i in rows.ids]
        scp_codes = [codes_by_id[i] for i in rows.ids]
    elif rows.references is not None:
        references = rows.references
    else:
        raise UserError(
            "no `reference` column", predictions,
            "add one, or pass --data DATASET --config CONFIG --split SPLIT to look them up by id",
        )  # fmt: skip
    metrics = score(
        rows.predictions, references, meteor, scp_codes=scp_codes,
        bertscore_model=bertscore_model, replicates=bootstrap, seed=seed,
    )  # fmt: skip
    source = {"predictions": str(predictions), "references": "file column" if data is None
              else f"{data} {config}/{split}", "seed": seed}  # fmt: skip
    if rows.condition is not None:
        source["condition"] = rows.condition
    return {**source, **public(metrics)}


def score(
    predictions: Annotated[Path, typer.Option(
        help="JSONL or Parquet: id, prediction[, reference] (your model's outputs), or the "
        "predictions.parquet `evaluate` writes into its run folder. ECG-QA question ids "
        "(ecgqa/...) are scored by exact-match accuracy against --data's ecgqa config.")],
    out: Annotated[Path | None, typer.Option(help="Write the metrics here (JSON).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Published dataset to take references from by id.")
    ] = None,
    config: Annotated[str, typer.Option(help="Config of --data.")] = "ptbxl",
    split: Annotated[str, typer.Option(help="Split of --data.")] = "test",
    meteor: Annotated[
        str, typer.Option(help="auto (nltk + METEOR 1.5 when java is there), nltk, java, none.")
    ] = "auto",
    bertscore_model: Annotated[
        Path | None, typer.Option(help="Local model folder for BERTScore; none: absent.")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for 95 % intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    condition: Annotated[str | None, typer.Option(
        help="With evaluate's predictions.parquet: the condition to score (default clean, the "
        "real ECG; with --controls also ecg=zeros, ecg=shuffle).")] = None,
) -> None:
    """Score a predictions file with the same metrics as `evaluate` (prints them; --out: JSON)."""
    from ecg_instruct.evaluate.command import format_metrics

    try:
        result = score_file(
            predictions, data, config, split, meteor,
            None if bertscore_model is None else str(bertscore_model), bootstrap, seed, condition,
        )  # fmt: skip
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if result.get("metric") == "ecgqa_exact_match":
        from ecg_instruct.evaluate.ecgqa_accuracy import format_accuracy

        typer.echo(f"{result['n_questions']} ECG-QA questions: {format_accuracy(result)}")
    else:
        scored = f" of condition {result['condition']}" if result.get("condition") else ""
        typer.echo(f"{result['n_records']} records{scored} ({result['n_empty_predictions']} "
                   f"empty predictions): {format_metrics(result)}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        typer.echo(f"wrote {out}")
