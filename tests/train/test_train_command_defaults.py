"""`ecg-instruct train-baseline` with no --data/--out: trains on out/meit into a new run folder
under runs/ and says which; an existing run is never written into."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from ecg_instruct.cli import app
from ecg_instruct.train.command import default_run_dir


def test_default_run_dir_never_reuses_a_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert default_run_dir("ptbxl", runs) == runs / "ptbxl"
    (runs / "ptbxl").mkdir(parents=True)
    (runs / "ptbxl-2").mkdir()
    assert default_run_dir("ptbxl", runs) == runs / "ptbxl-3"
    assert default_run_dir("mimic", runs) == runs / "mimic"


def test_bare_train_baseline_uses_out_meit_and_a_new_run_folder(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    shutil.copytree(tiny_dataset, tmp_path / "out" / "meit")
    monkeypatch.chdir(tmp_path)
    for expected in ("runs/ptbxl", "runs/ptbxl-2"):
        result = CliRunner().invoke(app, ["train-baseline", "--max-steps", "2", "--no-progress"],
                                    env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        assert f"Run folder: {expected}/ (choose one with --out)" in result.stderr
        assert (tmp_path / expected / "checkpoint.pt").is_file()
    first = (tmp_path / "runs" / "ptbxl" / "run.json").read_text()
    assert str((tmp_path / "out" / "meit").resolve()) in first  # trained on out/meit

    resumed = CliRunner().invoke(app, ["train-baseline", "--resume"], env={"COLUMNS": "400"})
    assert resumed.exit_code == 2 and "--resume needs --out" in resumed.stderr
