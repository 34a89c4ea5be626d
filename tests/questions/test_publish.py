"""The `ecgqa` files: rows in the order added, split by split, `-of-N` names, nothing partial."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ecg_instruct.questions.join import question_messages
from ecg_instruct.questions.publish import QuestionFiles, write_question_files


def _row(n: int, split: str) -> dict:
    return {"id": f"ecgqa/ptbxl/template/train/{n}", "source": "ptbxl", "split": split,
            "variant": "template", "release_split": "train", "sample_id": n,
            "messages": question_messages("Does this ECG show noise?", ["no"], 1),
            "question": "Does this ECG show noise?", "question_type": "single-verify",
            "attribute_type": "noise", "template_id": 1, "question_id": 2, "answer": ["no"],
            "attribute": None if n % 2 else ["noise"], "ecg_ids": [f"ptbxl/{n + 1:05d}"]}


def test_rows_stream_into_files_of_a_fixed_size(tmp_path: Path):
    rows = [_row(n, "test" if n % 5 == 0 else "train") for n in range(45)]
    files = QuestionFiles(tmp_path, rows_per_file=10)
    for start in range(0, len(rows), 7):  # batches that do not line up with the files
        files.add(rows[start:start + 7])
    sizes = files.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["test-00000-of-00001.parquet"] + [
        f"train-{n:05d}-of-00004.parquet" for n in range(4)]
    assert set(sizes) == {"train", "test"} and sizes["train"] > 0
    train = [i for n in range(4) for i in pq.read_table(
        tmp_path / f"train-{n:05d}-of-00004.parquet").column("id").to_pylist()]
    assert train == [r["id"] for r in rows if r["split"] == "train"]
    again = tmp_path / "again"
    write_question_files(rows, again, rows_per_file=10)
    assert all((again / name).read_bytes() == (tmp_path / name).read_bytes() for name in names)
