"""`ecg-instruct score --predictions FILE`: files, references by id, one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from typer.testing import CliRunner

from ecg_instruct.evaluate.score_command import score

APP = typer.Typer()
APP.command("score")(score)
APP.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _invoke(*args: str):
    return CliRunner().invoke(APP, ["score", *args, "--meteor", "none", "--bootstrap", "100"])


def test_identical_and_shuffled_predictions(real_reports, tmp_path: Path):
    rows = [r for r in real_reports if "sinus" in r["report"] or "fibrill" in r["report"]][:150]
    refs = [r["report"] for r in rows]
    same = _write_jsonl(tmp_path / "same.jsonl", [
        {"id": r["ecg_id"], "prediction": t, "reference": t} for r, t in zip(rows, refs, strict=True)
    ])  # fmt: skip
    res = _invoke("--predictions", str(same), "--out", str(tmp_path / "m.json"))
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    for key in ("bleu_1", "bleu_4", "rouge_l", "clinical_f1_micro", "clinical_f1_macro"):
        assert abs(metrics[key] - 1.0) < 1e-9, key
        assert key in metrics["ci95"]
    assert "clinical_f1_micro=1.0000" in res.output
    shuffled = refs[:]
    random.Random(0).shuffle(shuffled)
    table = pa.table({"id": [r["ecg_id"] for r in rows], "prediction": shuffled, "reference": refs})
    pq.write_table(table, tmp_path / "shuffled.parquet")
    res = _invoke("--predictions", str(tmp_path / "shuffled.parquet"), "--out", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s.json").read_text())["clinical_f1_micro"] < 0.5


def test_references_from_a_published_dataset(tmp_path: Path, monkeypatch):
    from ecg_instruct.evaluate import score_command

    refs = {"ptbxl/1": "sinus rhythm. normal ecg.", "ptbxl/2": "atrial fibrillation."}
    codes = {"ptbxl/1": {"NORM": 100.0, "SR": 0.0}, "ptbxl/2": {"AFIB": 0.0}}
    monkeypatch.setattr(score_command, "dataset_references", lambda *a: (refs, codes))
    preds = _write_jsonl(tmp_path / "p.jsonl", [
        {"id": "ptbxl/1", "prediction": "sinus rhythm. normal ecg."},
        {"id": "ptbxl/2", "prediction": None},
    ])  # fmt: skip
    result = score_command.score_file(preds, data=tmp_path, meteor="none", bootstrap=50)
    assert result["n_records"] == 2 and result["n_empty_predictions"] == 1
    assert result["clinical_scp_n_records"] == 2 and result["clinical_recall_micro"] < 1
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"id": "ptbxl/9", "prediction": "x"}])
    res = CliRunner().invoke(APP, ["score", "--predictions", str(bad), "--data", str(tmp_path)])
    assert res.exit_code == 2 and "not in ptbxl/test" in res.output and "ptbxl/9" in res.output


def test_one_line_errors(tmp_path: Path):
    cases = {
        "missing column": (_write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "pred": "x"}]),
                           "missing column(s) ['prediction']"),
        "no reference": (_write_jsonl(tmp_path / "b.jsonl", [{"id": 1, "prediction": "x"}]),
                         "no `reference` column"),
        "duplicate id": (_write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "prediction": "x",
                         "reference": "y"}] * 2), "duplicate id '1'"),
        "not json": ((tmp_path / "d.jsonl"), "line 1 is not JSON"),
        "format": ((tmp_path / "e.csv"), "unknown predictions format"),
    }  # fmt: skip
    (tmp_path / "d.jsonl").write_text("{oops\n")
    (tmp_path / "e.csv").write_text("id,prediction\n")
    for name, (path, message) in cases.items():
        res = _invoke("--predictions", str(path))
        assert res.exit_code == 2, name
        assert message in res.output and str(path) in res.output, (name, res.output)
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, name


def test_registered_in_the_cli():
    from ecg_instruct.cli import app

    assert "score" in [c.name for c in app.registered_commands]


def test_evaluates_own_predictions_with_controls_score_one_condition(tmp_path: Path):
    """`evaluate --controls` writes each id once per condition: score takes the real ECG's rows
    (`clean`) unless --condition names another, and records which in the JSON."""
    refs = ["sinus rhythm. normal ecg.", "atrial fibrillation. left axis deviation.",
            "sinus bradycardia. first degree av block.", "sinus rhythm. left bundle branch block."]
    ids = [f"ptbxl/{i:05d}" for i in range(1, 5)]
    conditions = {"clean": refs, "ecg=zeros": ["sinus rhythm."] * 4,
                  "ecg=shuffle": refs[1:] + refs[:1]}
    table = {"id": [], "condition": [], "reference": [], "prediction": []}
    for condition, predictions in conditions.items():
        table["id"] += ids
        table["condition"] += [condition] * 4
        table["reference"] += refs
        table["prediction"] += predictions
    path = tmp_path / "predictions.parquet"
    pq.write_table(pa.table(table), path)

    res = _invoke("--predictions", str(path), "--out", str(tmp_path / "clean.json"))
    assert res.exit_code == 0, res.output
    assert "4 records of condition clean" in res.output
    clean = json.loads((tmp_path / "clean.json").read_text())
    assert clean["condition"] == "clean" and abs(clean["bleu_4"] - 1.0) < 1e-9

    res = _invoke("--predictions", str(path), "--condition", "ecg=zeros",
                  "--out", str(tmp_path / "zeros.json"))
    assert res.exit_code == 0, res.output
    zeros = json.loads((tmp_path / "zeros.json").read_text())
    assert zeros["condition"] == "ecg=zeros" and zeros["bleu_1"] < clean["bleu_1"]

    res = _invoke("--predictions", str(path), "--condition", "noise")
    assert res.exit_code == 2
    assert "no rows of condition 'noise' (conditions: clean, ecg=shuffle, ecg=zeros)" in \
        " ".join(res.output.split())
