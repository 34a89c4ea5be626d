"""The instruct stage: reproducible draws, skips, invariants of every example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from ecg_instruct.build.recipe import InstructConfig
from ecg_instruct.instruct.fields import statements_from_frame
from ecg_instruct.instruct.stage import run_instruct, run_instruct_tasks
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.sources.ptbxl import parse_scp_codes, read_statements

TASKS = {"report": 2, "diagnosis": 2, "rhythm": 1, "measurement": 2, "multi-turn": 1}


@pytest.fixture(scope="module")
def statements(real_ptbxl_dir: Path):
    return {"ptbxl": statements_from_frame(read_statements(real_ptbxl_dir))}


@pytest.fixture(scope="module")
def records(real_ptbxl_dir: Path) -> list[dict]:
    """300 real PTB-XL metadata rows + 100 MIMIC-shaped rows with machine measurements."""
    frame = pd.read_csv(real_ptbxl_dir / "ptbxl_database_excerpt.csv", dtype=str,
                        keep_default_na=False).head(300)
    rows = []
    for r in frame.to_dict("records"):
        rows.append({"id": f"ptbxl/{int(float(r['ecg_id'])):05d}", "source": "ptbxl",
                     "split": "train", "report": r["report"].strip() or "x",
                     "scp_codes": json.dumps(parse_scp_codes(r["scp_codes"])),
                     "age": float(r["age"]) if r["age"] else None,
                     "sex": {"0": "male", "1": "female"}.get(r["sex"].split(".")[0]),
                     "measurements": ""})
    for i in range(100):
        rr = 500.0 + 10 * i
        rows.append({"id": f"mimic/{40000000 + i}", "source": "mimic", "split": "test",
                     "report": "Sinus rhythm. Normal ECG.", "scp_codes": "{}", "age": None,
                     "sex": None,
                     "measurements": json.dumps({
                         "rr_interval": rr, "p_onset": 40.0 if i % 3 else None, "p_end": 148.0,
                         "qrs_onset": 200.0, "qrs_end": 290.0 + i, "t_end": 580.0,
                         "p_axis": 60.0, "qrs_axis": float(i - 30), "t_axis": 40.0,
                         "heart_rate": 60000 / rr})})
    return rows


def _run(records, statements, seed=0, **cfg):
    return run_instruct_tasks(records, TemplateLibrary(),
                              InstructConfig(tasks=dict(TASKS), **cfg), seed, statements)


def test_same_seed_same_examples_whatever_the_record_order(records, statements) -> None:
    first = _run(records, statements)
    shuffled = _run(list(reversed(records)), statements)
    key = ["example_id"]
    a = first.examples.sort_values(key).reset_index(drop=True)
    b = shuffled.examples.sort_values(key).reset_index(drop=True)
    assert a.to_json() == b.to_json()
    assert first.skips.to_json() == shuffled.skips.to_json()
    other = _run(records, statements, seed=1).examples.sort_values(key).reset_index(drop=True)
    assert len(other) == len(a)
    changed = (other["template_id"] != a["template_id"]).mean()
    assert changed > 0.5  # a different seed draws different templates


def test_every_example_is_well_formed(records, statements) -> None:
    result = _run(records, statements)
    examples = result.examples
    assert set(examples["task"]) == set(TASKS)
    by_id = {r["id"]: r for r in records}
    for row in examples.to_dict("records"):
        messages = row["messages"]
        roles = [m["role"] for m in messages]
        assert roles[:3] == ["system", "user", "assistant"]
        if row["task"] == "multi-turn":
            assert roles == ["system", "user", "assistant", "user", "assistant"]
            assert messages[2]["content"] == by_id[row["id"]]["report"].strip()
        else:
            assert len(messages) == 3
        text = " ".join(m["content"] for m in messages)
        assert text.count("<ecg>") == 1 and "<ecg>" in messages[1]["content"]
        assert not re.search(r"\b(None|nan)\b", text), row["example_id"]
        if row["task"] == "report":
            assert messages[2]["content"] == by_id[row["id"]]["report"].strip()
    # distinct templates within one record and task
    assert not examples.duplicated(["id", "task", "template_id"]).any()
    # the per-record row is the record's first report example
    first_report = examples[examples["example_id"].str.endswith("/report/0")]
    merged = result.records.merge(first_report, on="id", suffixes=("", "_ex"))
    assert len(merged) == len(records)
    assert (merged["template_id"] == merged["template_id_ex"]).all()


def test_missing_fields_skip_templates_and_are_counted(records, statements) -> None:
    result = _run(records, statements)
    examples = result.examples
    mimic = examples[examples["source"] == "mimic"]
    ptbxl = examples[examples["source"] == "ptbxl"]
    assert "diagnosis" not in set(mimic["task"])  # no SCP statements in MIMIC
    assert "measurement" not in set(ptbxl["task"])  # no machine measurements in PTB-XL
    skips = result.skips
    mimic_diag = skips[(skips["source"] == "mimic") & (skips["task"] == "diagnosis")]
    assert (mimic_diag["template_id"] == "(none applicable)").sum() == 1
    assert mimic_diag[mimic_diag["template_id"] == "(none applicable)"]["count"].item() == 100
    pr = skips[(skips["source"] == "mimic") & (skips["missing"] == "pr_interval")]
    assert set(pr["count"]) == {34}  # p_onset missing for i % 3 == 0: 34 of 100 records
    # measurement answers come from the record's own numbers
    facts = {r["id"]: json.loads(r["measurements"]) for r in records if r["source"] == "mimic"}
    for row in mimic[mimic["template_id"] == "measurement/measure-01"].to_dict("records"):
        m = facts[row["id"]]
        assert f"{round(m['qrs_end'] - m['qrs_onset'])} ms" in row["messages"][2]["content"]


def test_report_examples_vary_and_follow_the_requested_count(records, statements) -> None:
    result = _run(records, statements)
    report = result.examples[result.examples["task"] == "report"]
    assert (report.groupby("id").size() == 2).all()
    assert report["template_id"].nunique() >= 40  # the whole paraphrase pool is in use


def test_recipe_threshold_changes_what_counts_as_present(records, statements) -> None:
    strict = _run(records, statements, min_likelihood=100.0).examples
    lenient = _run(records, statements, min_likelihood=15.0).examples

    def yes_count(frame):
        diagnosis = frame[frame["template_id"].str.startswith("diagnosis/list")]
        return sum(len(m[2]["content"]) for m in diagnosis["messages"])

    assert yes_count(lenient) > yes_count(strict)


def test_record_rows_are_one_report_example_per_record(records, statements) -> None:
    rows = run_instruct(records, TemplateLibrary(), InstructConfig(), 0, statements)
    assert list(rows.columns) == ["id", "task", "template_id", "messages"]
    assert len(rows) == len(records) and set(rows["task"]) == {"report"}


def test_stage_files_are_identical_for_any_worker_count_and_chunking(
    records, statements, tmp_path: Path
) -> None:
    from ecg_instruct.instruct.stage import write_instruct_stage

    cfg = InstructConfig(tasks=dict(TASKS))
    outputs = []
    for name, workers, chunk in (("one", 1, 4096), ("two", 2, 64)):
        work = tmp_path / name
        work.mkdir()
        write_instruct_stage(records, TemplateLibrary(), cfg, 0, statements, work,
                             workers=workers, chunk_size=chunk)
        outputs.append({p.name: pd.read_parquet(p).to_json() for p in work.glob("*.parquet")})
    assert outputs[0].keys() == {"instruct.parquet", "instruct_examples.parquet",
                                 "instruct_skips.parquet", "instruct_rejects.parquet"}
    assert outputs[0] == outputs[1]


def test_a_failed_stage_leaves_no_partial_files(records, statements, tmp_path: Path,
                                                monkeypatch) -> None:
    """A chunk fails half-way (a full disk, a bug): the stage's partial `*.tmp-<pid>` files are
    removed by the stage itself, not left for the next run to clean up."""
    import ecg_instruct.instruct.stage as stage

    real, calls = stage._run_chunk, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(stage, "_run_chunk", failing)
    with pytest.raises(OSError, match="No space left"):
        stage.write_instruct_stage(records, TemplateLibrary(), InstructConfig(tasks=dict(TASKS)),
                                   0, statements, tmp_path, workers=1, chunk_size=8)
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []
