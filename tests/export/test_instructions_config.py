"""The published `instructions` config next to the per-record configs, and its layouts."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset

from tests.export.conftest import run_build


def _card_header(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


def test_instructions_config_is_declared_but_not_default(built) -> None:
    out, _ = built
    configs = {c["config_name"]: c for c in _card_header(out)["configs"]}
    assert "instructions" in configs and not configs["instructions"].get("default")
    assert configs["all"]["default"] is True
    assert _card_header(out)["ecg_instruct"] == {"ecg_token": "<ecg>",
                                                 "instructions_layout": "records"}
    default = load_dataset(str(out), split="train")
    assert "example_id" not in default.column_names  # record rows only
    for row in default.select(range(5)):
        assert row["task"] == "report"
        assert row["messages"][-1] == {"role": "assistant", "content": row["report"]}


def test_instruction_rows_reference_published_records(built) -> None:
    out, summary = built
    records = load_dataset(str(out), split="train").remove_columns("signal")
    examples = load_dataset(str(out), "instructions", split="train")
    assert examples.column_names == ["example_id", "id", "source", "split", "task",
                                     "template_id", "messages"]
    published = set(records["id"])
    assert set(examples["id"]) == published
    assert set(examples["task"]) == {"report", "diagnosis", "rhythm", "measurement", "multi-turn"}
    turns = {task: set() for task in set(examples["task"])}
    for row in examples:
        turns[row["task"]].add(len(row["messages"]))
    assert turns["multi-turn"] == {5} and turns["report"] == {3}
    # the record row's messages are its first report example
    first = {r["id"]: r["messages"] for r in examples if r["example_id"].endswith("/report/0")}
    for row in records:
        assert first[row["id"]] == row["messages"]
    # the build summary and the card agree with the files
    info = summary.instructions
    assert sum(info.counts["train"].values()) == examples.num_rows
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.count("```text") == 3
    assert "| multi-turn | 8 |" in card


def test_instructions_are_identical_whatever_the_worker_count(
    built, sample_mirror: Path, tmp_path: Path
) -> None:
    out, _ = built
    other = tmp_path / "meit"
    run_build(sample_mirror, other, workers=1)
    names = sorted(p.name for p in (out / "data" / "instructions").iterdir())
    assert names
    for name in names:
        a = (out / "data" / "instructions" / name).read_bytes()
        b = (other / "data" / "instructions" / name).read_bytes()
        assert a == b, name


def test_flat_layout_repeats_the_signal_and_costs_more_bytes(built, tmp_path: Path) -> None:
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.instruct.templates import TemplateLibrary
    from ecg_instruct.publish.instructions import publish_instructions
    from tests.export.conftest import RECIPE

    out, summary = built
    staging = tmp_path / "staging"
    shutil.copytree(out / "data", staging / "data")
    shutil.rmtree(staging / "data" / "instructions")
    work = next(p for p in out.with_name(out.name + ".work").iterdir()
                if (p / "instruct_examples.parquet").exists())
    recipe = load_recipe(RECIPE)
    flat = dataclasses.replace(recipe, instruct=dataclasses.replace(recipe.instruct, layout="flat"))
    ids = [i for path in sorted((out / "data").glob("[mp]*/*.parquet"))
           for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()]
    info = publish_instructions(staging, work, ids, flat, TemplateLibrary())
    table = pq.read_table(staging / "data" / "instructions" / "train-00000-of-00001.parquet")
    assert "signal" in table.column_names
    signals = {}
    for source in ("ptbxl", "mimic"):
        t = pq.read_table(out / "data" / source / "train-00000-of-00001.parquet",
                          columns=["id", "signal"])
        signals.update(zip(t.column("id").to_pylist(), t.column("signal").to_pylist(),
                           strict=True))
    for row in table.slice(0, 40).to_pylist():
        assert np.array_equal(np.asarray(row["signal"]), np.asarray(signals[row["id"]]))
    records_bytes = summary.instructions.total_bytes
    assert info.total_bytes > 5 * records_bytes
    print(f"\ninstructions config on the sample build: records layout {records_bytes} B, "
          f"flat layout {info.total_bytes} B (train+validation+test)")


@pytest.mark.parametrize("bad", [{"min_likelihood": 150.0}, {"tasks": {"report": -1}}])
def test_bad_instruct_settings_are_recipe_errors(tmp_path: Path, bad: dict) -> None:
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.errors import UserError
    from tests.export.conftest import RECIPE

    data = yaml.safe_load(RECIPE.read_text())
    data["instruct"].update(bad)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=str(path)):
        load_recipe(path)
