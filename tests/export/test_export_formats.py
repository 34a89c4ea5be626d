"""`ecg-instruct export`: the shapes trainers read, signals written once and exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ecg_instruct.cli import app
from ecg_instruct.errors import UserError
from ecg_instruct.export import export_dataset


def _signals(out: Path) -> dict[str, np.ndarray]:
    signals = {}
    for path in sorted((out / "data").glob("[mp]*/*.parquet")):
        table = pq.read_table(path, columns=["id", "signal"])
        for rid, signal in zip(table.column("id").to_pylist(), table.column("signal").to_pylist(),
                               strict=True):
            signals[rid] = np.asarray(signal, dtype=np.float32)
    return signals


def _examples(out: Path, split: str) -> list[dict]:
    return pq.read_table(out / "data" / "instructions" /
                         f"{split}-00000-of-00001.parquet").to_pylist()


def test_llava_shape_and_signals(built, tmp_path: Path) -> None:
    out, _ = built
    summary = export_dataset(out, tmp_path, "llava")
    rows = json.loads((tmp_path / "train.json").read_text())
    examples = _examples(out, "train")
    assert [r["id"] for r in rows] == [e["example_id"] for e in examples]
    for row, example in zip(rows, examples, strict=True):
        assert set(row) == {"id", "ecg", "conversations"}
        froms = [turn["from"] for turn in row["conversations"]]
        assert froms == ["human", "gpt"] * (len(froms) // 2)
        assert len(froms) == len(example["messages"]) - 1  # system prompt dropped
        assert (tmp_path / row["ecg"]).is_file()
        assert "<ecg>" in row["conversations"][0]["value"]
    # one file per record, however many examples use it, holding exactly the published signal
    signals = _signals(out)
    files = sorted((tmp_path / "ecgs").rglob("*.npy"))
    assert summary.n_signals == len(files) == len(signals)
    for path in files[:20]:
        record_id = f"{path.parent.name}/{path.stem}"
        array = np.load(path)
        assert array.dtype == np.float32 and array.shape == (12, 5000)
        assert np.array_equal(array, signals[record_id])


def test_llava_with_image_key_and_token(built, tmp_path: Path) -> None:
    out, _ = built
    export_dataset(out, tmp_path, "llava", splits=["test"], token="<image>", media_key="image")
    rows = json.loads((tmp_path / "test.json").read_text())
    assert not (tmp_path / "train.json").exists()
    assert all("image" in r and "<image>" in r["conversations"][0]["value"] for r in rows)
    assert not any("<ecg>" in t["value"] for r in rows for t in r["conversations"])


def test_sharegpt_keeps_the_system_prompt(built, tmp_path: Path) -> None:
    out, _ = built
    export_dataset(out, tmp_path, "sharegpt", tasks=["multi-turn"])
    rows = json.loads((tmp_path / "validation.json").read_text())
    assert rows and all(r["id"].split("/")[2] == "multi-turn" for r in rows)
    for row in rows:
        assert row["system"].startswith("You are")
        assert [t["from"] for t in row["conversations"]] == ["human", "gpt", "human", "gpt"]


def test_openai_jsonl_is_one_messages_object_per_line(built, tmp_path: Path) -> None:
    out, _ = built
    export_dataset(out, tmp_path, "openai-jsonl")
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    examples = _examples(out, "train")
    assert len(lines) == len(examples)
    for line, example in zip(lines, examples, strict=True):
        row = json.loads(line)
        assert row["messages"] == example["messages"]
        assert row["id"] == example["example_id"] and row["ecg"].endswith(".npy")


def test_meit_is_one_prompt_report_pair_per_record(built, tmp_path: Path) -> None:
    out, _ = built
    export_dataset(out, tmp_path, "meit")
    names = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert names == sorted(f"{s}_ecg_{p}.jsonl" for s in ("mimic", "ptbxl")
                           for p in ("train", "val", "test"))
    records = pq.read_table(out / "data" / "ptbxl" / "train-00000-of-00001.parquet",
                            columns=["id", "report"]).to_pylist()
    rows = [json.loads(line) for line in (tmp_path / "ptbxl_ecg_train.jsonl").read_text()
            .splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for row, record in zip(rows, records, strict=True):
        assert set(row) == {"dataset", "id", "ecg_path", "messages"}
        user, assistant = row["messages"]
        assert user["role"] == "user" and "<ecg>" not in user["content"] and user["content"]
        assert assistant == {"role": "assistant", "content": record["report"]}
        assert (tmp_path / row["ecg_path"]).is_file()


def test_export_is_deterministic(built, tmp_path: Path) -> None:
    out, _ = built
    export_dataset(out, tmp_path / "a", "sharegpt")
    export_dataset(out, tmp_path / "b", "sharegpt")
    for path in sorted((tmp_path / "a").rglob("*.*")):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_export_errors_are_one_line(built, tmp_path: Path) -> None:
    out, _ = built
    with pytest.raises(UserError, match="no README.md"):
        export_dataset(tmp_path, tmp_path / "x", "llava")
    with pytest.raises(UserError, match="nothing to export"):
        export_dataset(out, tmp_path / "x", "llava", tasks=["no-such-task"])
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--format", "llava", "--data", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "y")])
    assert result.exit_code == 2
    assert "no README.md" in result.output and "Traceback" not in result.output


def test_templates_check_cli_passes_bundled_and_names_a_broken_file(
    built, tmp_path: Path, sample_mirror: Path
) -> None:
    out, _ = built
    runner = CliRunner()
    ok = runner.invoke(app, ["templates", "check", "--data", str(out), "--raw-dir",
                             str(sample_mirror)])
    assert ok.exit_code == 0, ok.output
    assert "all OK" in ok.output
    bad = tmp_path / "tpl" / "rhythm" / "rate.j2"
    bad.parent.mkdir(parents=True)
    bad.write_text("{#---\nid: rhythm/mine\ntask: rhythm\n---#}\n{{ ecg }} Rate?\n"
                   "{#-- assistant --#}\n{{ heart_rate }} bpm\n")
    failed = runner.invoke(app, ["templates", "check", "--templates", str(tmp_path / "tpl"),
                                 "--data", str(out), "--raw-dir", str(sample_mirror)])
    assert failed.exit_code == 2
    assert str(bad) in failed.output.replace("\n", "") and "heart_rate" in failed.output
    listed = runner.invoke(app, ["templates", "list", "--templates", str(tmp_path / "tpl")])
    assert listed.exit_code == 0 and "rhythm/mine" in listed.output


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_export_into_the_dataset_is_refused_and_leaves_it_intact(built, tmp_path: Path) -> None:
    out, _ = built
    before = _tree(out)
    for target in (out, out / "exports", out.parent):
        with pytest.raises(UserError, match=r"export folder overlaps the dataset .* choose an "
                                            r"--out outside --data"):
            export_dataset(out, target, "llava")
    result = CliRunner().invoke(app, ["export", "--format", "meit", "--data", str(out),
                                      "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "overlaps the dataset" in result.output
    assert _tree(out) == before


def test_reexporting_one_split_leaves_nothing_of_the_previous_export(built, tmp_path: Path):
    out, _ = built
    target = tmp_path / "llava"
    export_dataset(out, target, "llava")
    assert {"train.json", "validation.json", "test.json", "export.json"} <= {
        p.name for p in target.iterdir()}
    export_dataset(out, target, "llava", splits=["test"])
    names = {p.name for p in target.iterdir()}
    assert names == {"test.json", "export.json", "ecgs"}
    rows = json.loads((target / "test.json").read_text())
    assert {str(p.relative_to(target)) for p in (target / "ecgs").rglob("*.npy")} == {
        r["ecg"] for r in rows}  # only the test split's ECGs
    manifest = json.loads((target / "export.json").read_text())
    assert manifest["format"] == "llava" and manifest["splits"] == ["test"]
    assert manifest["files"] == {"test.json": len(rows)}
    assert not target.with_name("llava.tmp").exists()


def test_export_never_replaces_a_folder_that_is_not_an_export(built, tmp_path: Path) -> None:
    out, _ = built
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"mine: exists and is not an export \(no export.json\)"):
        export_dataset(out, mine, "sharegpt")
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
