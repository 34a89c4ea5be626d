"""`evaluate` on a trained run: outputs, controls, noise sweep, zero-shot transfer, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import pyarrow.parquet as pq  # noqa: E402
import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from ecg_instruct.evaluate.command import evaluate  # noqa: E402
from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run, shuffled_order  # noqa: E402
from ecg_instruct.train.command import train_baseline  # noqa: E402

FLAT = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor_nltk", "meteor_1_5", "rouge_l", "cider_d",
        "bertscore_f1", "clinical_f1_micro", "clinical_f1_macro")


@pytest.fixture(scope="module")
def evaluated(tiny_run: Path) -> dict:
    return evaluate_run(
        EvalOptions(run=tiny_run, split="test", controls=True, noise="meit:0.8,snr:0",
                    meteor="none", progress=False)
    )  # fmt: skip


def test_metrics_json_and_predictions(tiny_run: Path, evaluated: dict):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for key in FLAT:
        assert key in metrics
    assert "meteor" not in metrics  # never a bare, ambiguous METEOR
    assert metrics["meteor_nltk"] is None and "not computed" in metrics["implementation"]["meteor_nltk"]
    assert "bertscore_f1" in metrics["absent"]  # absent with a reason, not 0
    for key in ("bleu_4", "rouge_l", "cider_d", "clinical_f1_micro"):
        lo, hi = metrics["ci95"][key]
        assert lo <= metrics[key] <= hi
    assert metrics["split"] == "test" and metrics["n_records"] == 16
    assert metrics["bleu_4"] > 0.5  # the synthetic reports are learnable from the signal
    preds = pq.read_table(tiny_run / "predictions.parquet").to_pylist()
    conditions = {p["condition"] for p in preds}
    assert conditions == {"clean", "ecg=zeros", "ecg=shuffle", "meit:0.80", "snr:0dB"}
    assert all("<|" not in p["prediction"] and "</s>" not in p["prediction"] for p in preds)


def test_controls_show_the_signal_matters(tiny_run: Path, evaluated: dict):
    rows = {r["condition"]: r for r in json.loads((tiny_run / "controls.json").read_text())}
    assert rows["clean"]["bleu_4"] > rows["ecg=zeros"]["bleu_4"]
    assert rows["clean"]["bleu_4"] > rows["ecg=shuffle"]["bleu_4"]
    table = (tiny_run / "controls.md").read_text()
    assert "| ecg=shuffle |" in table and "paired 95 % interval" in table
    assert "clinical_f1_micro" in rows["clean"]["ci95"]


def test_metrics_say_whether_the_model_reads_its_input(tiny_run: Path, evaluated: dict):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    use = metrics["input_use"]
    assert use["distinct_references"] >= use["distinct_predictions"] >= 1
    assert 0 <= use["changed_by_shuffle"] <= metrics["n_records"]
    assert isinstance(use["warnings"], list)
    assert metrics["model"]["decoder"] == "builtin" and metrics["model"]["steps"] > 0
    assert metrics["majority_report"]["report"] and "clinical_f1_micro" in metrics["majority_report"]
    rows = {r["condition"]: r for r in json.loads((tiny_run / "controls.json").read_text())}
    diff = rows["ecg=shuffle"]["paired_difference_from_ecg"]["clinical_f1_micro"]
    assert diff["ci95"][0] <= diff["difference"] <= diff["ci95"][1]
    assert rows["majority report"]["kind"] == "baseline"
    html = (tiny_run / "report.html").read_text()
    assert 'id="run"' in html and "distinct generated reports" in html
    assert "BERTScore model: not computed" in html and "fusion: kv" in html


def test_robustness_outputs(tiny_run: Path, evaluated: dict):
    rows = json.loads((tiny_run / "robustness.json").read_text())
    assert [r["condition"] for r in rows] == ["clean", "meit:0.80", "snr:0dB"]
    png = (tiny_run / "robustness.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_shuffled_control_is_a_derangement():
    order = shuffled_order(17, seed=3)
    assert sorted(order) == list(range(17)) and all(order[i] != i for i in range(17))


def test_shuffled_questions_keep_their_number_of_ecgs():
    """ECG-QA: a comparison question gets another question's pair, a one-ECG question another
    one-ECG question's ECG (never a pair in one ECG's slots); a lone group keeps its own."""
    counts = [1, 2, 1, 1, 2, 2, 1, 2, 1, 1, 3]
    order = shuffled_order(len(counts), seed=5, groups=counts)
    assert sorted(order) == list(range(len(counts)))
    assert all(counts[order[i]] == counts[i] for i in range(len(counts)))
    assert all(order[i] != i for i in range(len(counts)) if counts.count(counts[i]) > 1)
    assert order[10] == 10


def test_zero_shot_transfer_to_another_config_and_rate(tiny_run: Path):
    """Trained on the 100 Hz config, scored on the 500 Hz one (resampled to the training rate)."""
    result = evaluate_run(
        EvalOptions(run=tiny_run, split="test", eval_config="mimic", meteor="none",
                    progress=False, limit=8)
    )  # fmt: skip
    out = Path(result["out_dir"])
    assert out == tiny_run / "eval" / "mimic-test"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"] == "mimic" and metrics["trained_on"] == "ptbxl"
    assert metrics["n_records"] == 8 and metrics["limit"] == 8


def test_cli_commands(tiny_dataset: Path, tmp_path: Path):
    app = typer.Typer()
    app.command("train-baseline")(train_baseline)
    app.command("evaluate")(evaluate)
    runner = CliRunner()
    run = tmp_path / "cli-run"
    args = ["train-baseline", "--data", str(tiny_dataset), "--out", str(run),
            "--max-steps", "3", "--d-model", "32", "--n-layer", "1", "--vocab-size", "150",
            "--no-progress"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 steps" in res.output and "loss" in res.output
    args = ["evaluate", "--run", str(run), "--limit", "4", "--meteor", "none",
            "--max-new-tokens", "5"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "bleu_4=" in res.output and (run / "metrics.json").exists()


def test_cli_user_errors_are_one_line_exit_2(tiny_dataset: Path, tmp_path: Path):
    app = typer.Typer()
    app.command("train-baseline")(train_baseline)
    app.command("evaluate")(evaluate)
    runner = CliRunner()
    res = runner.invoke(app, ["train-baseline", "--data", str(tiny_dataset), "--out",
                              str(tmp_path / "r"), "--config", "nope"])  # fmt: skip
    assert res.exit_code == 2 and res.output.startswith("error:") and "nope" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["evaluate", "--run", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "run.json" in res.output


def test_score_command_reproduces_evaluate(tiny_run: Path, tiny_dataset: Path, tmp_path: Path,
                                           evaluated: dict):  # fmt: skip
    """`score` on evaluate's own predictions, references looked up by id: the same numbers."""
    from ecg_instruct.evaluate.score_command import score_file

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    preds = pq.read_table(tiny_run / "predictions.parquet").to_pylist()
    clean = [{"id": p["id"], "prediction": p["prediction"]} for p in preds if p["condition"] == "clean"]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in clean))
    scored = score_file(path, data=tiny_dataset, config="ptbxl", split="test", meteor="none")
    for key in (*FLAT, "ci95", "n_records", "clinical_per_statement"):
        assert scored[key] == metrics[key], key
