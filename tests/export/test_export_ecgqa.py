"""Exports carry ECG-QA questions, two-ECG ones with both ECG files in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_instruct.export.formats import export_dataset


@pytest.mark.parametrize("fmt", ["llava", "sharegpt", "openai-jsonl"])
def test_two_ecg_questions_name_both_ecgs_in_order(ecgqa_build, tmp_path: Path, fmt: str):
    _, data, _ = ecgqa_build
    out = tmp_path / fmt
    export_dataset(data, out, fmt, tasks=["ecgqa"], splits=["train"])
    name = "train.jsonl" if fmt == "openai-jsonl" else "train.json"
    text = (out / name).read_text()
    rows = [json.loads(line) for line in text.splitlines()] if fmt == "openai-jsonl" \
        else json.loads(text)
    questions = pd.concat([pd.read_parquet(p) for p in (data / "data" / "ecgqa").glob("train-*")])
    by_id = {row.id: list(row.ecg_ids) for row in questions.itertuples()}
    assert [r["id"] for r in rows] == questions["id"].tolist()
    pairs = [r for r in rows if isinstance(r["ecg"], list)]
    assert pairs and all(len(r["ecg"]) == 2 for r in pairs)
    records = pd.concat([pd.read_parquet(p, columns=["id", "signal"])
                         for p in sorted((data / "data").glob("*/train-*.parquet"))
                         if p.parent.name in ("ptbxl", "mimic")])
    signal_of = dict(zip(records["id"], records["signal"], strict=True))
    for row in pairs[:3]:
        assert row["ecg"] == [f"ecgs/{i}.npy" for i in by_id[row["id"]]]
        for path, record in zip(row["ecg"], by_id[row["id"]], strict=True):
            np.testing.assert_array_equal(np.load(out / path), np.stack(signal_of[record]))
        turns = row["messages"] if fmt == "openai-jsonl" else row["conversations"]
        user = next(t for t in turns if t.get("role", t.get("from")) in ("user", "human"))
        assert (user.get("content") or user.get("value")).count("<ecg>") == 2


def test_meit_export_leaves_the_questions_out(ecgqa_build, tmp_path: Path):
    _, data, _ = ecgqa_build
    summary = export_dataset(data, tmp_path / "meit", "meit")
    assert summary.files and not any("ecgqa" in name for name in summary.files)
