"""End to end on what a user gets: `sample` -> `build` (500 Hz MEIT recipe) -> train -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tiny_data import small_config  # noqa: E402

from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run  # noqa: E402
from ecg_instruct.train.trainer import train  # noqa: E402


@pytest.mark.slow
def test_train_and_evaluate_on_the_built_sample(built_dataset: Path, tmp_path: Path):
    run = tmp_path / "ptbxl"
    cfg = small_config(built_dataset, run, max_steps=40, signal_fs=100, eval_interval=20)
    summary = train(cfg, progress=False)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    assert summary["steps"] == 40 and "val_loss" in log[19]

    result = evaluate_run(EvalOptions(run=run, split="test", controls=True, meteor="none",
                                      progress=False))  # fmt: skip
    rows = {r["condition"]: r for r in result["rows"]}
    assert set(rows) == {"clean", "ecg=zeros", "ecg=shuffle", "majority report"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"] == "ptbxl" and metrics["n_records"] >= 1
    assert 0.0 <= metrics["bleu_4"] <= 1.0 and metrics["cider_d"] >= 0.0

    # zero-shot transfer to the other source of the same build
    transfer = evaluate_run(EvalOptions(run=run, split="test", eval_config="mimic", meteor="none",
                                        progress=False))  # fmt: skip
    assert Path(transfer["out_dir"]) == run / "eval" / "mimic-test"
