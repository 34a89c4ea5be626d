"""End to end: sample mirror -> build -> `datasets.load_dataset`, as a user does it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset

from ecg_instruct.build.pipeline import BuildOptions, build
from ecg_instruct.build.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
CANONICAL = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_default_config_mixes_sources_and_splits(built_dataset: Path) -> None:
    ds = load_dataset(str(built_dataset))
    assert set(ds) == {"train", "validation", "test"}
    assert set(ds["train"]["source"]) == {"ptbxl", "mimic"}
    for split in ds:
        assert set(ds[split]["split"]) == {split}


def test_notebook_example(built_dataset: Path) -> None:
    pt = load_dataset(str(built_dataset), "ptbxl", split="test")
    row = pt.with_format("numpy")[0]
    assert row["signal"].shape == (12, 5000)
    assert row["signal"].dtype == np.float32
    assert list(pt[0]["leads"]) == CANONICAL
    assert pt[0]["fs"] == 500
    # float32 millivolts quantised to PTB-XL's 1 uV ADC step
    assert np.allclose(row["signal"] * 1000, np.round(row["signal"] * 1000), atol=2e-3)


def test_rows_carry_messages_and_provenance(built_dataset: Path) -> None:
    rows = load_dataset(str(built_dataset), "mimic", split="train")
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert row["messages"][1]["content"].count("<ecg>") == 1
        assert row["messages"][2]["content"] == row["report"]
        assert row["report"] and row["report_original"]
        assert "Warning" not in row["report"] and "---" not in row["report"]
        assert row["task"] == "report" and row["template_id"].startswith("report/")
    assert any(r["measurements"]["heart_rate"] for r in rows)


def test_every_record_is_published_or_rejected(built_dataset: Path, sample_mirror: Path) -> None:
    import pandas as pd

    n_ptbxl = len(pd.read_csv(sample_mirror / "ptb-xl" / "ptbxl_database.csv"))
    n_mimic = len(pd.read_csv(sample_mirror / "mimic-iv-ecg" / "record_list.csv"))
    published = load_dataset(str(built_dataset))
    n_published = sum(len(published[s]) for s in published)
    rejects = pq.read_table(built_dataset / "rejects.parquet").to_pandas()
    assert n_published + len(rejects) == n_ptbxl + n_mimic
    ids = set(rejects["id"])
    for split in published:
        assert not ids & set(published[split]["id"])
    # the sample mirror's deliberately broken records, each with its reason
    reasons = dict(zip(rejects["id"], rejects["reason"], strict=True))
    assert reasons["ptbxl/00014"] == "truncated_dat"
    assert reasons["ptbxl/00010"] == "flat_lead"
    assert reasons["ptbxl/00006"] in {"nan_values", "nan_run"}
    assert "missing_file" in reasons.values() and "empty_report" in reasons.values()


def test_patients_never_cross_splits(built_dataset: Path) -> None:
    ds = load_dataset(str(built_dataset))
    seen: dict[str, str] = {}
    for split in ds:
        for source, patient in zip(ds[split]["source"], ds[split]["patient_id"], strict=True):
            assert seen.setdefault(f"{source}/{patient}", split) == split


def test_card_declares_configs_and_counts(built_dataset: Path) -> None:
    text = (built_dataset / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    names = [c["config_name"] for c in header["configs"]]
    assert names == ["all", "mimic", "ptbxl", "instructions"]  # instructions: every example
    assert [c.get("default", False) for c in header["configs"]] == [True, False, False, False]
    assert "records in =" in text and "CC BY 4.0" in text
    assert str(built_dataset.parent) not in text  # no machine-specific paths in the card
    # which quality checks ran, with thresholds, and which optional one did not
    assert "heart rate outside 20-300 bpm" in text and "peak-to-peak > 15 mV" in text
    assert "high-frequency noise: off (optional check)" in text


def test_split_filter_builds_only_that_split(sample_mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "only-test"
    summary = build(BuildOptions(raw_dir=sample_mirror, out=out,
                                 recipe=load_recipe("meit-100hz"),
                                 sources=["mimic"], splits=["test"], progress=False))
    assert sorted(p.relative_to(out / "data").as_posix()
                  for p in (out / "data").rglob("*.parquet")) == [
        "instructions/test-00000-of-00001.parquet", "mimic/test-00000-of-00001.parquet"]
    assert set(summary.counts["split"]) == {"test"}
    ds = load_dataset(str(out), "mimic", split="test").with_format("numpy")
    assert ds[0]["signal"].shape == (12, 1000)


@pytest.mark.parametrize("command", [["--help"], ["build", "--help"], ["sample", "--help"]])
def test_cli_help(command: list[str]) -> None:
    from typer.testing import CliRunner

    from ecg_instruct.cli import app

    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_cli_build_missing_source_is_one_line_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ecg_instruct.cli import app

    result = CliRunner().invoke(app, ["build", "--source", "mimic", "--raw-dir", str(tmp_path),
                                      "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "mimic-iv-ecg: no mimic-iv-ecg/ folder" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_card_reports_label_agreement_of_published_ptbxl(built_dataset: Path) -> None:
    import re

    text = (built_dataset / "README.md").read_text()
    match = re.search(r"Label agreement over (\d+) PTB-XL reports.*?cardiologists: ([\d.]+)% stated",
                      text, re.S)
    assert match, "the card states the label agreement"
    n_ptbxl = sum(len(load_dataset(str(built_dataset), "ptbxl", split=s))
                  for s in ("train", "validation", "test"))
    assert int(match.group(1)) == n_ptbxl
    assert 0 <= float(match.group(2)) <= 100
    assert "| AFIB | atrial fibrillation |" in text or "| SR | sinus rhythm |" in text


def test_cli_report_style_labels_composes_reports_from_scp_codes(
    sample_mirror: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from ecg_instruct.cli import app

    out = tmp_path / "labels"
    result = CliRunner().invoke(app, [
        "build", "--raw-dir", str(sample_mirror), "--out", str(out), "--source", "ptbxl",
        "--recipe", "meit-100hz", "--report-style", "labels",
        "--no-progress", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "composed from the SCP labels" in (out / "README.md").read_text()
    rows = load_dataset(str(out), "ptbxl", split="train")
    for row in rows:
        if "AFIB" in row["labels"]:
            assert "atrial fibrillation" in row["report"].lower()
    bad = CliRunner().invoke(app, ["build", "--raw-dir", str(sample_mirror), "--out",
                                   str(tmp_path / "x"), "--translator", "marian"])
    assert bad.exit_code == 2 and "--translator-model" in bad.output
