"""A build with the ECG-QA task on the sample mirror: the `ecgqa` config, its accounting, its
splits against every other config, signals by reference, the card, the benchmark policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_instruct.sources.ecgqa import read_questions


def _config(out: Path, name: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((out / "data" / name).glob("*.parquet"))],
                     ignore_index=True)


def test_every_question_is_published_or_rejected_with_a_reason(ecgqa_build):
    mirror, out, summary = ecgqa_build
    questions = read_questions(mirror, ["ptbxl", "mimic"], ["template", "paraphrased"])
    published = _config(out, "ecgqa")
    rejects = pd.read_parquet(out / "rejects.parquet")
    rejected = rejects[rejects["stage"] == "questions"]
    assert len(questions) == len(published) + len(rejected) == summary.questions.n_in
    assert set(published["id"]) | set(rejected["id"]) == {q["id"] for q in questions}
    assert not set(published["id"]) & set(rejected["id"])
    assert set(rejected["reason"]) == {"missing_ecg", "cross_split", "malformed_question"}
    assert (rejected["detail"].str.len() > 0).all()
    curation = rejected[rejected["detail"].str.contains("rejected by curation")]
    assert len(curation) and curation["detail"].str.contains(r"\((?:index|reports|signals)/\w+").all()
    assert rejected["detail"].str.contains("ptbxl/99999 is not in this build's index").any()
    # the records' own accounting is untouched by the questions
    assert summary.totals["input"] == summary.totals["published"] + summary.totals["rejected"]
    assert summary.totals["rejected"] == len(rejects) - len(rejected)
    assert set(published["variant"]) == {"template", "paraphrased"}
    assert set(published["source"]) == {"ptbxl", "mimic"}


def test_no_ecg_of_a_validation_or_test_question_is_in_any_train_row(ecgqa_build):
    _, out, _ = ecgqa_build
    split_of: dict[str, str] = {}
    for source in ("ptbxl", "mimic"):
        records = _config(out, source)
        split_of.update(zip(records["id"], records["split"], strict=True))
    train_ecgs = {i for i, s in split_of.items() if s == "train"}
    instructions = _config(out, "instructions")
    train_ecgs |= set(instructions.loc[instructions["split"] == "train", "id"])
    questions = _config(out, "ecgqa")
    train_ecgs |= {e for ids in questions.loc[questions["split"] == "train", "ecg_ids"] for e in ids}
    held_out = questions[questions["split"] != "train"]
    assert len(held_out)
    for ids, split in zip(held_out["ecg_ids"], held_out["split"], strict=True):
        assert not set(ids) & train_ecgs
        assert {split_of[e] for e in ids} == {split}


def test_rows_load_offline_and_carry_their_ecgs_signals(ecgqa_build):
    from datasets import load_dataset

    from ecg_instruct import with_signals

    _, out, _ = ecgqa_build
    ds = load_dataset(str(out), "ecgqa")
    assert {"id", "messages", "question_type", "attribute_type", "template_id", "question_id",
            "answer", "ecg_ids", "source"} <= set(ds["train"].column_names)
    rows = [row for split in with_signals(ds, out).values() for row in split]
    records = {}
    for source in ("ptbxl", "mimic"):
        for part in load_dataset(str(out), source).values():
            records.update({row["id"]: row["signal"] for row in part.with_format("numpy")})
    pairs = [row for row in rows if len(row["ecg_ids"]) == 2]
    assert pairs, "the sample has two-ECG questions"
    for row in pairs[:3] + [r for r in rows if len(r["ecg_ids"]) == 1][:2]:
        k = len(row["ecg_ids"])
        assert row["signals"].shape == (k, 12, 1000)
        for position, ecg in enumerate(row["ecg_ids"]):
            np.testing.assert_array_equal(row["signals"][position], records[ecg])
        user = [m for m in row["messages"] if m["role"] == "user"][0]["content"]
        assert user.count("<ecg>") == k
        assert [m for m in row["messages"] if m["role"] == "assistant"][0]["content"] == \
            ", ".join(row["answer"])


def test_card_states_the_question_accounting(ecgqa_build):
    _, out, summary = ecgqa_build
    card = (out / "README.md").read_text()
    info = summary.questions
    assert f"**{info.n_in} questions in = {info.n_published} published + {info.n_rejected} " \
           f"rejected**" in card
    assert "config_name: ecgqa" in card and "ECG-QA 1.0.2: CC BY 4.0" in card


def test_benchmark_policy_keeps_release_splits_and_reports_shared_ecgs(tmp_path_factory):
    from buildkit import quick_recipe, run_build, sample_mirror

    mirror = sample_mirror(tmp_path_factory)
    folder = tmp_path_factory.mktemp("ecgqa-benchmark")
    recipe = quick_recipe(folder, ecgqa={"variant": "template", "split": "benchmark"})
    summary = run_build(mirror, folder / "meit", recipe)
    questions = _config(folder / "meit", "ecgqa")
    names = {"train": "train", "valid": "validation", "test": "test"}
    assert (questions["split"] == questions["release_split"].map(names)).all()
    assert "cross_split" not in summary.questions.reasons
    leakage = summary.questions.leakage
    assert leakage and sum(c["elsewhere"] for c in leakage.values()) > 0
    card = (folder / "meit" / "README.md").read_text()
    assert "| question split | ECGs | also in another split of any config |" in card


def test_score_gives_one_for_the_answers_and_per_type_accuracy_otherwise(ecgqa_build, tmp_path):
    import json

    import typer
    from typer.testing import CliRunner

    from ecg_instruct.evaluate.score_command import score

    app = typer.Typer()
    app.command("score")(score)
    app.command("noop")(lambda: None)
    _, out, _ = ecgqa_build
    questions = _config(out, "ecgqa")
    train = questions[questions["split"] == "train"]
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text("".join(json.dumps({"id": i, "prediction": ", ".join(reversed(a))}) + "\n"
                               for i, a in zip(train["id"], train["answer"], strict=True)))
    result = CliRunner().invoke(app, ["score", "--predictions", str(perfect), "--data", str(out),
                                      "--split", "train", "--bootstrap", "50",
                                      "--out", str(tmp_path / "perfect.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "perfect.json").read_text())
    assert metrics["metric"] == "ecgqa_exact_match" and metrics["overall"]["accuracy"] == 1.0
    assert all(c["accuracy"] == 1.0 for c in metrics["question_type"].values())
    yes = tmp_path / "yes.jsonl"
    yes.write_text("".join(json.dumps({"id": i, "prediction": ["YES "]}) + "\n" for i in train["id"]))
    result = CliRunner().invoke(app, ["score", "--predictions", str(yes), "--data", str(out),
                                      "--config", "ecgqa", "--split", "train", "--bootstrap", "50",
                                      "--out", str(tmp_path / "yes.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "yes.json").read_text())
    is_yes = train["answer"].map(lambda a: list(a) == ["yes"])
    assert metrics["overall"]["accuracy"] == pytest.approx(is_yes.mean())
    assert metrics["question_type"]["single-query"]["accuracy"] == 0.0
    verify = train["question_type"] == "single-verify"
    assert metrics["question_type"]["single-verify"]["accuracy"] == pytest.approx(
        is_yes[verify].mean())
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"id": "ecgqa/ptbxl/template/train/999999", "prediction": "no"}))
    result = CliRunner().invoke(app, ["score", "--predictions", str(unknown), "--data", str(out),
                                      "--split", "train"])
    assert result.exit_code == 2 and "not in ecgqa/train" in result.output
