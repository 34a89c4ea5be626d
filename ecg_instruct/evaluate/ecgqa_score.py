"""`ecg-instruct score` for ECG-QA rows: predictions by question id against a published `ecgqa`
split (answers and question/attribute types from the dataset), scored by `ecgqa_accuracy`."""

from __future__ import annotations

from pathlib import Path

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate.ecgqa_accuracy import ecgqa_accuracy
from ecg_instruct.questions.publish import CONFIG_NAME

#: Question ids start so (`ecgqa/<edition>/<variant>/<release split>/<sample_id>`).
ID_PREFIX = "ecgqa/"


def is_ecgqa(ids: list[str], config: str) -> bool:
    """Score as ECG-QA: the `ecgqa` config was asked for, or every id is a question id."""
    return config == CONFIG_NAME or bool(ids) and all(i.startswith(ID_PREFIX) for i in ids)


def question_references(data: Path, split: str) -> dict[str, tuple[list[str], str, str]]:
    """id -> (answer, question_type, attribute_type) of a published `ecgqa` split."""
    import datasets

    if not (Path(data) / "README.md").exists():
        raise UserError("no published dataset here (README.md missing)", data,
                        "pass the --out folder of an `ecg-instruct build` with `ecgqa`")
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(str(data), CONFIG_NAME, split=split)
    except ValueError as exc:
        raise UserError(f"cannot load config {CONFIG_NAME!r} split {split!r}: "
                        f"{str(exc).splitlines()[0]}", data,
                        "build with a recipe that has `ecgqa:` (e.g. --recipe meit-ecgqa)") from exc
    cols = ds.select_columns(["id", "answer", "question_type", "attribute_type"]).to_dict()
    return {i: (a, q, t) for i, a, q, t in zip(cols["id"], cols["answer"], cols["question_type"],
                                                cols["attribute_type"], strict=True)}


def score_questions(predictions: Path, data: Path | None, split: str, bootstrap: int,
                    seed: int) -> dict:
    """ECG-QA accuracy of a predictions file (`{"id", "prediction"}` lines; a prediction is the
    answer text, terms separated by commas, or a JSON list of terms)."""
    from ecg_instruct.evaluate.predictions_file import read_predictions

    rows = read_predictions(predictions, keep_lists=True)
    if data is None:
        raise UserError("ECG-QA predictions need the dataset their answers are in", predictions,
                        "pass --data OUT --config ecgqa --split SPLIT")
    refs = question_references(data, split)
    unknown = [i for i in rows.ids if i not in refs]
    if unknown:
        raise UserError(f"{len(unknown)} id(s) not in {CONFIG_NAME}/{split} of {data}, e.g. "
                        f"{unknown[:3]}", predictions,
                        "score the split the predictions were made for (--split)")
    answers, qtypes, atypes = zip(*(refs[i] for i in rows.ids), strict=True)
    result = ecgqa_accuracy(rows.predictions, list(answers), list(qtypes), list(atypes),
                            replicates=bootstrap, seed=seed)
    result["n_missing_questions"] = len(refs) - len(rows.ids)
    return {"predictions": str(predictions), "references": f"{data} {CONFIG_NAME}/{split}",
            "seed": seed, **result}
